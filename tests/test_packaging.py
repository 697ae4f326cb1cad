"""Packaging hygiene: every third-party package the code imports is declared in pyproject.toml
(the runtime's in `dependencies`, the tests' and benchmarks' at least in an extra: `test`, or
`measure` for a measurement that is not run by the suite), and requirements.lock pins every
package of the runtime and the `test` extra with hashes — so a fresh machine installs what CI
ran, and nothing works only because another package happened to pull it in."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = {"bot", "dialogs", "storage", "adapters", "tests", "benchmarks"}
RUNTIME_TREES = ("bot", "dialogs", "storage", "adapters")
DEV_TREES = ("tests", "benchmarks", "scripts")


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    test = {_name(r) for r in project["optional-dependencies"]["test"]}
    return runtime, test


def _measure() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_name(r) for r in project["optional-dependencies"].get("measure", [])}


def _imports(trees: tuple[str, ...]) -> set[str]:
    found: set[str] = set()
    for tree in trees:
        for path in (ROOT / tree).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module.split(".")[0])
    return found - OURS - set(sys.stdlib_module_names) - {"__future__"}


def _distributions(modules: set[str]) -> dict[str, set[str]]:
    """The distributions that install each module; one not installed here (a `measure`
    extra's) is known by its own name."""
    owners = packages_distributions()
    return {m: {d.lower().replace("_", "-") for d in owners.get(m, [m])} for m in modules}


def test_every_runtime_import_is_a_declared_dependency() -> None:
    runtime, _ = _declared()
    missing = {m: d for m, d in _distributions(_imports(RUNTIME_TREES)).items()
               if not d & runtime}
    assert not missing, f"imported but not in [project].dependencies: {missing}"


def test_every_test_and_benchmark_import_is_declared() -> None:
    runtime, test = _declared()
    missing = {m: d for m, d in _distributions(_imports(DEV_TREES)).items()
               if not d & (runtime | test | _measure())}
    assert not missing, f"imported but not declared (dependencies or the test extra): {missing}"


def test_the_lock_pins_every_declared_package_with_hashes() -> None:
    lock = (ROOT / "requirements.lock").read_text()
    pinned = {m.group(1).lower().replace("_", "-")
              for m in re.finditer(r"^([A-Za-z0-9_.-]+)==\S+ \\$", lock, re.M)}
    runtime, test = _declared()
    assert (runtime | test) - pinned == set()
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n\n", 1)[-1])
    for entry in entries:
        if "==" in entry:
            assert "--hash=sha256:" in entry, entry.splitlines()[0]
