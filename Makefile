# salbench: `make reproduce` and `make test` are the whole set-up. `make help` lists all targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= quick
TOLERANCE ?= 0
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED := 0
# Jupyter refuses to run as root without --allow-root (containers often run as root).
USER_ID ?= $(shell id -u)
JUPYTER_ROOT_FLAG := $(if $(filter 0,$(USER_ID)),--allow-root,)

.DEFAULT_GOAL := help
.PHONY: help setup reproduce test test-unit test-notebooks compare compare-numeric bench lab notebooks clean-cache clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

check-python:
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if v == (3, 11) else "salbench needs Python 3.11, but $(PYTHON) is Python %d.%d. Install 3.11 and run: make PYTHON=/path/to/python3.11 ..." % v)'

$(STAMP): pyproject.toml requirements-lock.txt
	@$(MAKE) --no-print-directory check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements-lock.txt -e ".[test]"
	@touch $@

setup: $(STAMP)  ## create .venv and install the pinned stack

# A publishing run ends with `report --check`: a statement of paper.md or the README that the
# new tables no longer support ends the run red, naming it.
reproduce: $(STAMP)  ## run every notebook on the quick profile (PROFILE=paper for the GPU run), then refresh and check paper.md
	$(BIN)/python -m salbench reproduce --profile $(PROFILE)
	@if $(BIN)/python -c "import sys; from salbench.config import load_profile; sys.exit(not load_profile('$(PROFILE)').publish)"; \
	then $(BIN)/python -m salbench claims && $(BIN)/python -m salbench report && $(BIN)/python -m salbench report --check; \
	else echo "profile $(PROFILE) does not publish tables/: paper.md left as it is"; fi

test: $(STAMP)  ## unit + reference tests, then nbval on the notebooks' smoke defaults
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-notebooks

test-unit: $(STAMP)  ## paper.md's and the README's generated numbers and statements, unit and reference tests (eager and graph mode)
	$(BIN)/python -m salbench report --check
	$(BIN)/python -m pytest -q tests
	SALBENCH_GRAPH_TESTS=1 $(BIN)/python -m pytest -q tests

test-notebooks: $(STAMP)  ## nbval (lax) on the committed notebooks' smoke defaults
	$(BIN)/python -m pytest -q --durations=8 --nbval-lax --sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider notebooks

# By conclusion by default: on any CPU but the one that made the committed tables the numbers
# differ (bf16, thread scheduling), so a numeric default would fail for nearly every user.
compare: $(STAMP)  ## do your tables/ reach the committed conclusions? (claims, verdicts, method rankings)
	$(BIN)/python -m salbench compare --claims

compare-numeric: $(STAMP)  ## compare tables/ with the committed ones row by row (TOLERANCE=0: same machine)
	$(BIN)/python -m salbench compare --numeric --tolerance $(TOLERANCE)

bench: $(STAMP)  ## timing and memory benchmarks (not tests)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lab: $(STAMP)  ## open the notebooks in JupyterLab
	$(BIN)/jupyter lab $(JUPYTER_ROOT_FLAG) notebooks

notebooks: $(STAMP)  ## re-run the notebooks on their smoke defaults and commit-ready clean them in place
	$(BIN)/python -m salbench.runner refresh

clean-cache:  ## delete cached data, models and maps (build/cache)
	rm -rf build/cache

clean:  ## delete build/ and .venv
	rm -rf build $(VENV)
