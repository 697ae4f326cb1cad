# KomInn developer entry points. `make chat` and `make test` are the README's Quick start.
# Installs the locked versions (requirements.lock, with hashes) and then KomInn itself without
# resolving anything again, so a fresh machine runs what CI ran. `make lock` refreshes the lock
# after a change to the dependencies in pyproject.toml.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)

.PHONY: chat test lint setup lock

$(STAMP): pyproject.toml requirements.lock
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q --require-hashes -r requirements.lock
	$(VENV)/bin/pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)

chat: $(STAMP)
	$(VENV)/bin/kominn chat

test: $(STAMP)
	scripts/test.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# pip-tools in a throw-away venv: the lock covers the runtime and the `test` extra.
lock:
	test -x $(VENV)/tools/bin/pip-compile || \
		($(PYTHON) -m venv $(VENV)/tools && $(VENV)/tools/bin/pip install -q 'pip-tools>=7.4,<8')
	$(VENV)/tools/bin/pip-compile -q --generate-hashes --extra test --strip-extras \
		--allow-unsafe --no-emit-index-url --no-emit-find-links \
		--output-file requirements.lock pyproject.toml
