# One command per job; each target sets up what it needs (virtual env, packages, data).
#   make test            the test suite
#   make clean-corpus    demo corpus -> data/clean/$(PRESET)   (INPUT=... to clean your own files)
#   make pretrain        teacher (or TEACHER=...) -> truncated student -> runs/student
#   make ablation        does cleaning help? -> runs/ablation/report.md
#   make bench           speed / memory / quality benchmarks, each beside its baseline

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DATA   ?= data
RUNS   ?= runs
SHARED ?= ../shared

.PHONY: venv test clean-corpus demo-corpus teacher pretrain ablation compare kd-finetune bench

venv: $(STAMP)
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: venv
	$(PY) -m pytest -q tests

# ---------------------------------------------------------------- corpus
PRESET  ?= full
DEMO    ?= $(DATA)/demo
INPUT   ?=
WORKERS ?= 2
CLEAN_OUT ?= $(DATA)/clean/$(PRESET)

demo-corpus: venv
	$(PY) -m corpus.demo_corpus --out $(DEMO)

clean-corpus: venv
ifeq ($(strip $(INPUT)),)
	$(PY) -m corpus.demo_corpus --out $(DEMO)
	$(VENV)/bin/corpus-clean --input $(DEMO)/jsonl --output $(CLEAN_OUT) --preset $(PRESET) --workers $(WORKERS)
else
	$(VENV)/bin/corpus-clean --input $(INPUT) --output $(CLEAN_OUT) --preset $(PRESET) --workers $(WORKERS)
endif

# ---------------------------------------------------------------- train

# ---------------------------------------------------------------- eval

# ---------------------------------------------------------------- bench
bench: venv
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m bench
