"""Button payloads: `<token>:<action>` for buttons of one dialog step, `g:<action>` for buttons
that stay valid (menus, language). Kept short: Telegram allows 64 bytes."""

from __future__ import annotations

from dialogs.core import State
from dialogs.types import Choice

GLOBAL = "g"


def step_choice(state: State, label: str, action: str) -> Choice:
    return Choice(label=label, payload=f"{state.token}:{action}")


def global_choice(label: str, action: str) -> Choice:
    return Choice(label=label, payload=f"{GLOBAL}:{action}")


def split(payload: str) -> tuple[str, str]:
    """`"7:area:2"` → ("7", "area:2"); a payload without a token is treated as expired."""
    token, _, action = payload.partition(":")
    return token, action


def match_typed(text: str, choices: tuple[Choice, ...]) -> Choice | None:
    """A typed answer to buttons: the number shown in the terminal, or the label itself."""
    typed = text.strip().casefold()
    if typed.isdigit() and 1 <= int(typed) <= len(choices):
        return choices[int(typed) - 1]
    for choice in choices:
        if choice.label.casefold() == typed:
            return choice
    return None
