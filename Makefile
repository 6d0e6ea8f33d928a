# The README's commands. Everything runs inside a virtual environment created
# on demand: .venv for the newest stack (the default), .venv-STACK for
# another one (make test STACK=torch2.1). requirements/stacks/ lists them.
STACK ?= newest
STACK_FILE := requirements/stacks/$(STACK).txt
ifeq ($(wildcard $(STACK_FILE)),)
$(error STACK=$(STACK) is unknown; choose one of: $(basename $(notdir $(wildcard requirements/stacks/*.txt))))
endif
VENV := $(if $(filter newest,$(STACK)),.venv,.venv-$(STACK))
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.mmevit-installed
INSTALL_INPUTS := scripts/install.sh scripts/check_stack.py setup.py $(STACK_FILE) \
	requirements/runtime.txt requirements/tests.txt requirements/deploy.txt \
	requirements/analysis.txt
INSTALL := VENV=$(CURDIR)/$(VENV) STACK_FILE=$(CURDIR)/$(STACK_FILE) bash scripts/install.sh

.PHONY: install test test-faults lint demo

# Always runs the (idempotent) installer.
install:
	$(INSTALL)
	@touch $(STAMP)

# Installs only when missing or when an install input changed.
$(STAMP): $(INSTALL_INPUTS)
	$(INSTALL)
	@touch $(STAMP)

lint: $(STAMP)
	$(PYTHON) -m ruff check .

# One worker per core; a test file's tests share a worker (and its fixtures).
# The long fault runs (real trainings killed, preempted and resumed on two
# ranks) are marked slow_fault and run by `make test-faults`; CI runs both.
test: lint
	$(PYTHON) -m pytest -n auto --dist loadfile -m "not slow_fault" --durations=15 tests

test-faults: $(STAMP)
	$(PYTHON) -m pytest -n auto --dist loadfile -m slow_fault tests

demo: $(STAMP)
	bash scripts/demo.sh
