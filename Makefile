# The README's commands. Everything runs inside .venv, created on demand.
PYTHON := .venv/bin/python
STAMP := .venv/.mmevit-installed
INSTALL_INPUTS := scripts/install.sh scripts/check_stack.py setup.py \
	requirements/runtime.txt requirements/tests.txt requirements/deploy.txt \
	requirements/analysis.txt

.PHONY: install test lint demo clean-demo

# Always runs the (idempotent) installer.
install:
	bash scripts/install.sh
	@touch $(STAMP)

# Installs only when missing or when an install input changed.
$(STAMP): $(INSTALL_INPUTS)
	bash scripts/install.sh
	@touch $(STAMP)

lint: $(STAMP)
	$(PYTHON) -m ruff check .

# One worker per core; a test file's tests share a worker (and its fixtures).
test: lint
	$(PYTHON) -m pytest -n auto --dist loadfile tests

demo: $(STAMP)
	bash scripts/demo.sh
