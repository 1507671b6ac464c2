# WBCBench bundle: every generated thing (venv, demo data, weights, zips) is
# rebuilt from here and ignored by git.

PYTHON_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SEED ?= 0

DEMO_RELEASE := build/demo_release
DEMO_RELEASE_STAMP := $(DEMO_RELEASE)/.complete
BUNDLE_DATA_STAMP := reference_data/.complete
STARTING_KIT_MODEL := starting_kit/classifier.joblib

.PHONY: all venv demo demo-release bundle-data starting-kit dry-run test bench clean

all: demo

## Environment ---------------------------------------------------------------
venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

## Demo data -----------------------------------------------------------------
demo-release: $(DEMO_RELEASE_STAMP)

$(DEMO_RELEASE_STAMP): $(STAMP) tools/make_demo_release.py tools/cells.py tools/degrade.py
	$(PY) tools/make_demo_release.py --out $(DEMO_RELEASE) --seed $(SEED)
	touch $@

bundle-data: $(BUNDLE_DATA_STAMP)

$(BUNDLE_DATA_STAMP): $(DEMO_RELEASE_STAMP) tools/prepare.py
	$(PY) tools/prepare.py $(DEMO_RELEASE) --out . --seed $(SEED) --demo
	touch $@

starting-kit: $(STARTING_KIT_MODEL)

$(STARTING_KIT_MODEL): $(DEMO_RELEASE_STAMP) starting_kit/train.py starting_kit/model.py
	$(PY) starting_kit/train.py $(DEMO_RELEASE)

## The main job: local dry run on the demo data --------------------------------
demo: $(BUNDLE_DATA_STAMP) $(STARTING_KIT_MODEL)
	$(PY) ingestion_program/ingestion.py
	$(PY) scoring_program/score.py

## Tests and benchmarks --------------------------------------------------------
test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) bench/ingestion_overhead.py
	$(PY) bench/scoring_scale.py

clean:
	rm -rf build dist output input_data reference_data $(STARTING_KIT_MODEL)
