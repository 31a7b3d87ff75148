"""Every setting of a training run, its defaults by model size, and how a command line and a recipe file set it.

Light on imports (no torch): `train_lora.py --help` and bench scripts read it before anything heavy loads.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field, replace
from pathlib import Path

from ziglora.common.flags import parse_settings
from ziglora.release.versions import DEFAULT_VERSION
from ziglora.serve.contract import LORA_PROJECTIONS, VLLM_LORA_RANKS

REPO = Path(__file__).resolve().parents[2]  # the checkout: default prompts and questions, the serve command's paths
SMALL_MODEL_PARAMS = 1e9  # below this a model trains on a bf16 base with the "small" defaults


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


SIZE_DEFAULTS = {
    # SmolLM2-135M: the sources, rate and epoch bound that taught it the most facts (docs/RESULTS.md); a bf16 base
    # because vLLM serves a small model unquantized, so training and serving see the same weights.
    "small": SizeDefaults(5e-4, 20, "none", 2048, 4, 1, False, "release-notes,qa-facts,qa,prompts,general", "none"),
    # Qwen3-8B: 4-bit QLoRA that fits a 24 GiB GPU, one window a micro-step so that the memory a cap leaves keeps
    # more layers' activations (docs/BENCHMARKS.md), the QLoRA paper's rate, every source with the facts repeated;
    # not measured at 8B here, so the facts probe tells a user whether their run learned.
    "large": SizeDefaults(2e-4, 4, "4bit", 4096, 1, 8, True, "all", "qa-facts=0.35,qa=0.15,prompts=0.1,general=0.05"),
}
DISTILLED = ("facts", "general")  # what --distill can name
CPU_SHAPE = (2048, 1, 1)  # (window, batch, accumulation) without CUDA: keeps a step of a small model to seconds

# --help lists the settings under these titles, in this order.
GROUPS = {
    "model": "model (the base model and its LoRA adapter)",
    "data": "data (what the model trains on)",
    "training": "training (the optimizer and the length of the run)",
    "distillation": "distillation (the base model teaches: reading the fact's section, or as it answered)",
    "probe": "probe (questions asked while training: they decide when to stop and which adapter is saved)",
    "output": "output (where the adapter, checkpoints and logs go)",
    "experimental": "experimental (levers kept for benchmarks; their defaults are the measured choice)",
}
SMALL, LARGE = SIZE_DEFAULTS["small"], SIZE_DEFAULTS["large"]


def _by_size(small: object, large: object, cpu: object = None) -> str:
    """How a default chosen at start reads in --help."""
    return f"Default: {small} under 1B parameters, {large} above" + (f", {cpu} on CPU." if cpu is not None else ".")


def setting(group: str, default: object, help_text: str, **metadata: object):
    """A Settings field: its --help group, default and one-line help (metadata: its choices)."""
    return field(default=default, metadata={"group": group, "help": help_text, **metadata})


@dataclass(frozen=True)
class Settings:
    """Every knob of a run; each field is a command-line flag (--max-seq-len for max_seq_len, ...). A default of
    None is chosen at start from the model's size and the device (resolve) and recorded in the report."""

    # ------------------------------------------------------------------ model
    model: str = setting("model", "Qwen/Qwen3-8B", "A hub id, a local directory, or smollm2-135m (built in, "
                         "converted once into the ziglora cache).")
    quantize: str = setting("model", "auto", "Base weights on CUDA: 4bit (QLoRA) or none (bf16); auto: 4bit "
                            "from 1B parameters.", choices=("auto", "4bit", "none"))
    lora_rank: int = setting("model", 16, f"LoRA rank; one of vLLM's {VLLM_LORA_RANKS}.")
    lora_alpha: int = setting("model", 32, "LoRA alpha (scale = alpha / rank).")
    lora_targets: str = setting("model", ",".join(LORA_PROJECTIONS), "Linear projections that get LoRA, "
                                "comma-separated.", default_text="all seven that vLLM serves")
    # ------------------------------------------------------------------ data
    data: str = setting("data", f"raw_data/zig-{DEFAULT_VERSION}", "Release directory built by `make data`.")
    sources: str | None = setting("data", None, "Sources to train on, comma-separated, as the token table names "
                                  "them; all: every one. " + _by_size(SMALL.sources, LARGE.sources))
    oversample: str | None = setting("data", None, "SOURCE=SHARE,...: repeat these sources to that share of the "
                                     "training tokens (at least one pass); none: each once. "
                                     + _by_size(SMALL.oversample, LARGE.oversample))
    prompts: str | None = setting("data", None, "Hand-written prompts JSONL. Default: prompts/zig-<release>.jsonl; "
                                  "none: without.")
    general_prompts: str = setting("data", "auto", "Prompts whose base-model answers train as source `general`; "
                                   "auto: prompts/general.jsonl; none.")
    focus_sections: int = setting("data", 0, "Only the N release-notes sections most dev questions ask about, "
                                  "trained and asked; 0: all.")
    stdlib_tokens: int = setting("data", 500_000, "Std lib token budget.")
    eval_share: float = setting("data", 0.02, "Share held out for the eval loss.")
    # ------------------------------------------------------------------ training
    max_seq_len: int | None = setting("training", None, "Tokens per packed sequence (a longer chat record is left "
                                      "out, never cut). "
                                      + _by_size(SMALL.max_seq_len, LARGE.max_seq_len, CPU_SHAPE[0]))
    batch_size: int | None = setting("training", None, "Packed sequences per device per micro-step. "
                                     + _by_size(SMALL.batch_size, LARGE.batch_size, CPU_SHAPE[1]))
    grad_accum: int | None = setting("training", None, "Micro-steps per optimizer step. "
                                     + _by_size(SMALL.grad_accum, LARGE.grad_accum, CPU_SHAPE[2]))
    learning_rate: float | None = setting("training", None, "Peak learning rate, cosine decay. "
                                          + _by_size(f"{SMALL.learning_rate:g}", f"{LARGE.learning_rate:g}"))
    max_epochs: float | None = setting("training", None, "Most passes over the training set. "
                                       + _by_size(f"{SMALL.max_epochs:g}", f"{LARGE.max_epochs:g}"))
    max_steps: int = setting("training", -1, "Optimizer steps; -1: until it stops.")
    gradient_checkpointing: bool | None = setting("training", None, "Recompute activations in backward. Default: "
                                                  "on from 1B parameters.")
    eval_steps: int = setting("training", 50, "Eval loss, checkpoint every N steps.")
    resume: bool = setting("training", False, "Continue from the last checkpoint in --checkpoints.")
    seed: int = setting("training", 3407, "Seed of the mix, the eval split, LoRA init and shuffling.")
    # ------------------------------------------------------------------ distillation
    distill: str = setting("distillation", "none", "Learn the teacher's top-k on: facts (it reads the section), "
                           "general (its own answers), both, or none.")
    distill_answers: str = setting("distillation", "reference", "Fact answers distilled: the data's, or the "
                                   "teacher's own.", choices=("reference", "teacher"))
    teacher_top_k: int = setting("distillation", 16, "Teacher log-probs kept per token.")
    distill_ce_weight: float = setting("distillation", 0.0, "Cross-entropy weight on distilled tokens (KL: 1).")
    # ------------------------------------------------------------------ probe
    facts_eval: str = setting("probe", "auto", "Facts JSONL whose dev split is asked; auto: "
                              "evals/zig-<release>/natural.jsonl if any; none: no probe.")
    retain_eval: str = setting("probe", "auto", "Questions it should keep answering; auto: evals/retain.jsonl; "
                               "none.")
    facts_eval_steps: int = setting("probe", 0, "Ask every N steps; 0: every epoch.")
    until_facts: float = setting("probe", 0.9, "Stop once this share of the dev questions is answered; 0: never.")
    facts_patience: int = setting("probe", 3, "Stop after N evaluations without a better dev score (counted once "
                                  "half the trained facts are recalled).")
    facts_eval_tokens: int = setting("probe", 128, "New tokens per probe answer.")
    # ------------------------------------------------------------------ output
    output: str = setting("output", "qwen3-zig-lora", "Adapter directory, with train_report.json.")
    checkpoints: str | None = setting("output", None, "Checkpoint directory. Default: <output>-checkpoints.")
    save_total_limit: int = setting("output", 2, "Checkpoints kept (oldest deleted).")
    logging_steps: int = setting("output", 5, "Log the loss every N steps.")
    report_to: str = setting("output", "none", "Experiment logger (its package installed).",
                             choices=("none", "tensorboard", "wandb"))
    # ------------------------------------------------------------------ experimental
    packing: str = setting("experimental", "auto", "padding_free: a packed sequence sees only itself; rows: its "
                           "bin; auto: rows only for 4-bit CUDA without flash_attn.",
                           choices=("auto", "padding_free", "rows"))
    gpu_memory_cap_gib: str = setting("experimental", "auto", "GPU memory (GiB) a run plans under; auto: what "
                                      "is free less a margin; 0: no cap.")
    warmup_steps_excluded: int = setting("experimental", 2, "First optimizer steps left out of tokens/s.")
    kept_layers: str = setting("experimental", "auto", "Decoder layers not recomputed in backward "
                               "(Unsloth); auto: as many as fit the cap.")

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
        if not set(self.distilled()) <= set(DISTILLED):
            raise ValueError(f"--distill {self.distill}: name some of {', '.join(DISTILLED)}, or none")
        if self.teacher_top_k < 1 or self.distill_ce_weight < 0:
            raise ValueError("--teacher-top-k must be at least 1 and --distill-ce-weight not negative")
        if self.gpu_memory_cap_gib != "auto" and not _number(self.gpu_memory_cap_gib, float):
            raise ValueError(f"--gpu-memory-cap-gib {self.gpu_memory_cap_gib}: auto or GiB (0: no cap)")
        if self.kept_layers != "auto" and not _number(self.kept_layers, int):
            raise ValueError(f"--kept-layers {self.kept_layers}: auto or a number of layers")

    def distilled(self) -> tuple[str, ...]:
        """--distill as the parts distilled (none: ())."""
        return () if self.distill == "none" else tuple(part.strip() for part in self.distill.split(","))

    def trains_on(self, source: str) -> bool:
        """Whether --sources takes `source` (`all` takes every one)."""
        return self.sources == "all" or source in self.sources.split(",")

    def oversample_shares(self) -> dict[str, float]:
        """--oversample as {source: share} (`none`: {})."""
        shares = {}
        for item in ([] if self.oversample == "none" else self.oversample.split(",")):
            source, _, share = item.partition("=")
            try:
                shares[source.strip()] = float(share)
            except ValueError:
                raise ValueError(f"--oversample {self.oversample}: {item!r} is not SOURCE=SHARE") from None
        if any(not 0 < v < 1 for v in shares.values()) or sum(shares.values()) >= 1:
            raise ValueError(f"--oversample {self.oversample}: each share must be in (0, 1) and all below 1 together")
        return shares

    def resolve(self, params: float, cuda: bool) -> Settings:
        """These settings with every default left open filled in from the model's parameter count and the device:
        what a run uses and its report records."""
        size = SIZE_DEFAULTS["small" if params < SMALL_MODEL_PARAMS else "large"]
        quantize = size.quantize if self.quantize == "auto" else self.quantize
        window, batch, accum = (size.max_seq_len, size.batch_size, size.grad_accum) if cuda else CPU_SHAPE
        sources = self.sources
        if sources is None:  # the size's sources, less those this run turned off
            off = {"prompts": self.prompts == "none", "general": self.general_prompts == "none"}
            sources = ",".join(src for src in size.sources.split(",") if not off.get(src))
        packing = self.packing
        if packing == "auto":  # the mask from position_ids is not verified on Unsloth's path without flash_attn
            unverified = cuda and quantize == "4bit" and not importlib.util.find_spec("flash_attn")
            packing = "rows" if unverified else "padding_free"
        return replace(
            self, quantize=quantize, sources=sources, packing=packing,
            max_seq_len=self.max_seq_len or window, batch_size=self.batch_size or batch,
            grad_accum=self.grad_accum or accum, learning_rate=self.learning_rate or size.learning_rate,
            max_epochs=self.max_epochs or size.max_epochs, oversample=self.oversample or size.oversample,
            gradient_checkpointing=(size.gradient_checkpointing if self.gradient_checkpointing is None
                                    else self.gradient_checkpointing),
            checkpoints=self.checkpoints or f"{self.output.rstrip('/')}-checkpoints")


def _number(text: str, kind: type) -> bool:
    """Whether `text` is a number of `kind` (int or float) of at least 0."""
    try:
        return kind(text) >= 0
    except ValueError:
        return False


DESCRIPTION = """\
Train a LoRA adapter that teaches a chat model one Zig release. Each epoch it answers the release's dev questions
(a user's words, never trained on) and retain questions (what it knew); it stops when the dev answers stop
improving and saves the best adapter. Open defaults follow the model's size (docs/RESULTS.md).

  python train_lora.py --model smollm2-135m --data raw_data/zig-<ver>   # the built-in 135M model, CPU or GPU
  python train_lora.py --data raw_data/zig-<ver>                        # Qwen3-8B, 4-bit QLoRA on a CUDA GPU
  python train_lora.py --config recipes/focused.yaml                    # a recipe file; flags still win"""


def parse(argv: list[str] | None = None) -> tuple[Settings, Path | None]:
    """(settings from defaults < recipe file < flags, the recipe file or None); ValueError names a bad setting."""
    try:
        return parse_settings(Settings, argv, DESCRIPTION, GROUPS)
    except TypeError as e:  # a recipe value of the wrong kind, as Settings(...) reports it
        raise ValueError(str(e)) from None
