"""The training recipe behind train_lora.py: model -> data -> train (with the facts probe) -> save + report.

The libraries do the work: Unsloth (4-bit on CUDA) or transformers + PEFT load the model and add LoRA, TRL packs
the pre-tokenized sequences (best-fit decreasing), transformers' Trainer trains; ziglora/train/examples.py decides what
the tokens and labels are, ziglora/train/probe.py asks the facts. Not TRL's SFTTrainer: version 1.15 always computes the
loss with its Triton kernels, which do not exist on CPU; our data is already tokenized and labelled, so Trainer is all
we need. Import this only after ziglora.train.backend.prepare() (Unsloth must be imported before transformers).
"""
from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import torch
from datasets import Dataset
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint
from trl import pack_dataset
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from ziglora.common.io import atomic_write_text, read_jsonl, usual_permissions, write_json
from ziglora.evaluate.questions import FactTask, load_facts
from ziglora.serve.contract import THINKING_OFF, adapter_problems
from ziglora.train import examples as ds
from ziglora.train.backend import Backend, TrainingError
from ziglora.train.mix import format_table, mix, split_eval, token_table
from ziglora.train.probe import FactsProbe, generate, rank_slices

REPO = Path(__file__).resolve().parents[2]
PROGRESS_EVERY_S = 30.0  # a progress line at least this often when stdout is a log, not a terminal


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def log(msg: str) -> None:
    if is_main_process():
        print(msg, flush=True)


# ---------------------------------------------------------------------------------------------- model


def load_model(s, be: Backend):
    """(model with LoRA on --lora-targets, tokenizer). Over a bf16 base PEFT keeps the LoRA weights in fp32
    (autocast_adapter_dtype), so small updates are not rounded away."""
    targets = s.lora_targets.split(",")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))  # one model per process/GPU under `accelerate launch`
    if be.cuda and s.gpu_memory_cap_gib:
        total = torch.cuda.get_device_properties(local_rank).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, s.gpu_memory_cap_gib * 2**30 / total), local_rank)
    try:
        if be.unsloth:
            from unsloth import FastLanguageModel

            model, tok = FastLanguageModel.from_pretrained(be.model_path, max_seq_length=s.max_seq_len,
                                                           load_in_4bit=True, dtype=torch.bfloat16,
                                                           device_map={"": local_rank})
            model = FastLanguageModel.get_peft_model(
                model, r=s.lora_rank, lora_alpha=s.lora_alpha, lora_dropout=0, bias="none", target_modules=targets,
                use_gradient_checkpointing="unsloth", random_state=s.seed)
            return model, tok
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

        tok = AutoTokenizer.from_pretrained(be.model_path)
        if be.four_bit:
            quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                       bnb_4bit_compute_dtype=torch.bfloat16)
            model = AutoModelForCausalLM.from_pretrained(be.model_path, quantization_config=quant,
                                                         dtype=torch.bfloat16, device_map={"": local_rank})
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
        elif be.cuda:
            model = AutoModelForCausalLM.from_pretrained(be.model_path, dtype=torch.bfloat16,
                                                         device_map={"": local_rank})
        else:
            model = AutoModelForCausalLM.from_pretrained(be.model_path, dtype=torch.float32)
    except OSError as e:
        raise TrainingError(f"cannot load model {be.model_path!r}: {e}") from None
    # A training forward never reads a KV cache, and with one (the config's default) transformers does not turn
    # the reset position_ids of --packing padding_free into a block-diagonal mask: packed records then attended to
    # each other with restarted positions (SmolLM2 under SDPA: logits off by 26 against the record alone; 0 without).
    model.config.use_cache = False
    lora = LoraConfig(r=s.lora_rank, lora_alpha=s.lora_alpha, lora_dropout=0.0, bias="none", target_modules=targets,
                      task_type="CAUSAL_LM")
    return get_peft_model(model, lora), tok


def inference_modes(be: Backend):
    """How the facts probe switches the model to generation and back."""
    if be.unsloth:
        from unsloth import FastLanguageModel

        return FastLanguageModel.for_inference, FastLanguageModel.for_training
    return (lambda m: m.eval()), (lambda m: m.train())


# ---------------------------------------------------------------------------------------------- data


def read_release(s) -> tuple[dict, list[dict], str | None]:
    """(verified manifest, prompt records, prompts path): read once, before the model loads, so bad data fails
    fast."""
    try:
        manifest = ds.load_manifest(Path(s.data))
    except ds.DataError as e:
        raise TrainingError(f"training data: {e}") from None
    prompts_path = s.prompts or str(REPO / "prompts" / f"zig-{manifest['zig_version']}.jsonl")
    if prompts_path == "none":
        return manifest, [], None
    if not Path(prompts_path).is_file():
        raise TrainingError(f"prompts file {prompts_path} not found: pass --prompts FILE, or --prompts none")
    return manifest, list(read_jsonl(Path(prompts_path))), prompts_path


# The base model's answers to the general prompts are cut at this many tokens, and a cut answer is left out: an
# answer that stops mid-sentence would teach stopping there. SmolLM2-135M on an H200 finished 114-120 of the 140
# within 384 tokens, in 69 s with ten runs sharing the GPU (issue 11's second sweep, docs/RESULTS.md).
GENERAL_TOKENS = 384


def general_prompts(s) -> tuple[list[str], str | None]:
    """(prompts, file) the base model answers for the `general` source; none with --general-prompts none or when
    --sources leaves the source out (the answers would cost a minute for nothing)."""
    if s.general_prompts == "none" or not s.trains_on("general"):
        return [], None
    path = REPO / "prompts" / "general.jsonl" if s.general_prompts == "auto" else Path(s.general_prompts)
    if not path.is_file():
        raise TrainingError(f"--general-prompts {path}: no such file (`none` trains without general answers)")
    return [r["prompt"] for r in read_jsonl(path)], str(path)


def general_answers(model, tokenizer, prompts: list[str], be: Backend) -> tuple[list[dict], dict]:
    """The base model's own greedy answers to `prompts`, as {prompt, completion} records: trained beside the
    release, they pull the adapter back towards what the model said before on everything that is not Zig
    (self-distillation, Yang et al. 2024, "Self-Distillation Bridges Distribution Gap in Language Model
    Fine-Tuning"). Asked before the first step, while the LoRA weights are still zero: the base model's answers.
    Under data parallel each rank answers its slice and every rank gets all answers (the same training set)."""
    t0 = time.perf_counter()
    to_inference, to_training = inference_modes(be)
    was_training = model.training
    to_inference(model)
    try:
        said = rank_slices(lambda mine: generate(model, tokenizer, mine, GENERAL_TOKENS), prompts)
    finally:
        if was_training:
            to_training(model)
    records = [{"prompt": p, "completion": text.strip()} for p, (text, finished) in zip(prompts, said, strict=True)
               if finished and text.strip()]
    return records, {"prompts": len(prompts), "answers_kept": len(records),
                     "answers_cut": sum(1 for _, finished in said if not finished),
                     "seconds": round(time.perf_counter() - t0, 1)}


def load_training_set(s, tokenizer, release: tuple[dict, list[dict], str | None], general: list[dict] = ()
                      ) -> tuple[Dataset, Dataset | None, dict]:
    """Train and eval datasets of pre-tokenized sequences, plus the data part of the report, in one pass:
    release (+ the base model's general answers) -> examples (dataset.build_examples) -> chosen sources -> eval
    split -> oversampled mix."""
    manifest, prompts, prompts_path = release
    root, version = Path(s.data), manifest["zig_version"]
    by_kind = {kind: ds.outputs_of_kind(root, manifest, kind) for kind in ("doc_sections", "examples", "stdlib",
                                                                           "chat")}
    examples, stats = ds.build_examples(version, by_kind, prompts, tokenizer, s.max_seq_len, s.stdlib_tokens,
                                        THINKING_OFF, general)
    if s.sources != "all":
        # A source this release lacks (no cookbook after `make data SKIP=build_cookbook`) is said and skipped; a
        # name no release has is a mistake.
        wanted, present = set(s.sources.split(",")), {e["source"] for e in examples}
        unknown = wanted - present - set(ds.SOURCES)
        if unknown or not wanted & present:
            raise TrainingError(f"--sources {s.sources}: no {', '.join(sorted(unknown or wanted))} in this release; "
                                f"it has {', '.join(sorted(present))}")
        if wanted - present:
            log(f"--sources: this release has no {', '.join(sorted(wanted - present))}; training on the others")
        examples = [e for e in examples if e["source"] in wanted]
    train, evals = split_eval(examples, s.eval_share, s.seed)
    train = mix(train, s.oversample_shares(), s.seed)
    table = token_table(train, stats, s.max_seq_len)

    def to_dataset(rows: list[dict]) -> Dataset:
        return Dataset.from_dict({"input_ids": [r["input_ids"] for r in rows], "labels": [r["labels"] for r in rows]})

    info = {"zig_version": version, "release_dir": str(root), "prompts_file": prompts_path,
            "train_sequences": len(train), "eval_sequences": len(evals), "token_table": table,
            "train_tokens": sum(r["tokens"] for r in table), "truncated_tokens": sum(r["truncated"] for r in table),
            "dropped": {src: {"failed_validation": st.failed_validation, "too_long": st.too_long}
                        for src, st in stats.items() if (st.failed_validation or st.too_long) and s.trains_on(src)}}
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


def probe_questions(s, version: str) -> tuple[list, list, str | None]:
    """(dev facts, retain questions, dev file) for the facts probe; none when --facts-eval none or no file."""
    if s.facts_eval == "none":
        return [], [], None
    path = Path(s.facts_eval) if s.facts_eval != "auto" else REPO / "evals" / f"zig-{version}" / "natural.jsonl"
    if not path.is_file():
        if s.facts_eval != "auto":
            raise TrainingError(f"--facts-eval {path}: no such file")
        log(f"no dev questions for Zig {version} ({path}): training without the facts probe")
        return [], [], None
    dev = load_facts(path, split="dev")
    if not dev:
        raise TrainingError(f"--facts-eval {path}: no questions with split dev")
    retain_path = REPO / "evals" / "retain.jsonl" if s.retain_eval == "auto" else Path(s.retain_eval)
    retain = [] if s.retain_eval == "none" or not retain_path.is_file() else load_facts(retain_path)
    return dev, retain, str(path)


# Trained cloze questions the facts probe asks back (their value, at least 3 characters so a stray "1" or "S" in an
# answer does not count): 64 share the probe's one batch with 58 dev and 80 retain questions (PROBE_BATCH 256).
TRAINED_PROBE = 64


def trained_questions(s, release: tuple[dict, list[dict], str | None], tokenizer) -> list[FactTask]:
    """A seeded sample of the fact Q&A's cloze records this run trains on (those the data builder keeps,
    ds.trainable_chat), each judged by whether the answer names the value the cloze asks for."""
    if not s.trains_on("qa-facts"):
        return []
    manifest = release[0]
    records = [r for _, recs in ds.outputs_of_kind(Path(s.data), manifest, "chat") for r in recs
               if r.get("source") == "qa-facts" and r.get("kind") == "cloze" and len(r.get("term", "")) >= 3]
    rng = random.Random(s.seed)
    chosen = []
    for r in rng.sample(records, len(records)):
        if len(chosen) == TRAINED_PROBE:
            break
        if ds.trainable_chat(r, tokenizer, THINKING_OFF, s.max_seq_len).left_out is None:
            chosen.append(FactTask(id=r["id"], q=r["messages"][0]["content"],
                                   accept=rf"(?<![\w]){re.escape(r['term'])}(?![\w])"))
    return chosen


# ---------------------------------------------------------------------------------------------- train


class Throughput(TrainerCallback):
    """Real (non-pad) tokens/s of the optimizer steps after the warm-up ones (compilation, allocator growth).

    Timed from each step's begin to its end, so evaluation, the facts probe and checkpoint saves between steps do
    not count. Real tokens are summed by a forward pre-hook into a tensor on the model's device and read only at
    step ends, where the step is synchronized for timing anyway. Trainer's own count (include_num_input_tokens_seen)
    would do a host-device round trip (`.item()`) after every micro-batch's backward, leaving the GPU idle while
    the optimizer's kernels are launched. The hook counts only while a step runs, so the probe's generation is not
    counted as training tokens."""

    def __init__(self, skip: int, pad_token_id: int):
        self.skip, self.pad_token_id = skip, pad_token_id
        self.real_tokens: torch.Tensor | None = None
        self.in_step = False
        self.begin = (0.0, 0)
        self.seconds, self.tokens, self.steps = 0.0, 0, 0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.real_tokens = torch.zeros((), dtype=torch.int64, device=args.device)

        def count(_module, _args, inputs):
            if self.in_step:
                self.real_tokens += (inputs["input_ids"] != self.pad_token_id).sum()

        model.register_forward_pre_hook(count, with_kwargs=True)

    def _now(self) -> tuple[float, int]:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter(), int(self.real_tokens)

    def on_step_begin(self, args, state, control, **kwargs):
        self.in_step = True
        self.begin = self._now()

    def on_step_end(self, args, state, control, **kwargs):
        end = self._now()
        self.in_step = False
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


class ProgressLine(TrainerCallback):
    """When stdout is a log file (the progress bar draws only on a terminal), a line at least every 30 s."""

    def __init__(self, every_s: float = PROGRESS_EVERY_S):
        self.every_s, self.last, self.start = every_s, 0.0, 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = self.last = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        now = time.monotonic()
        if now - self.last < self.every_s or not state.is_world_process_zero or sys.stdout.isatty():
            return
        self.last = now
        losses = [e["loss"] for e in state.log_history if "loss" in e]
        done = state.global_step / max(1, state.max_steps)
        eta = (now - self.start) / done * (1 - done) if done else 0
        print(f"step {state.global_step}/{state.max_steps} ({done:.0%}), epoch {state.epoch or 0:.2f}"
              + (f", loss {losses[-1]:.4f}" if losses else "") + f", {now - self.start:.0f}s elapsed, "
              f"~{eta:.0f}s left at most", flush=True)


class StopOnSignal(TrainerCallback):
    """Ctrl-C or SIGTERM (a scheduler's, a sweep's deadline) ends training after the current optimizer step, and the
    run is saved as if it had ended there: the best evaluation's adapter (the facts probe restores it), the report,
    the plot. A second signal acts at once. Under data parallel the ranks agree on stopping with one small
    all-reduce per step, so no rank waits for a step the others skip."""

    def __init__(self):
        self.reason = ""
        self.previous: dict = {}

    def _handle(self, signum, _frame) -> None:
        self.reason = f"interrupted by {signal.Signals(signum).name}"
        log(f"{self.reason}: stopping after this step and saving the best adapter (again to stop at once)")
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def on_train_begin(self, args, state, control, **kwargs):
        if threading.current_thread() is threading.main_thread():
            self.previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def on_step_end(self, args, state, control, **kwargs):
        stop = bool(self.reason)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor(int(stop), device=args.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            if flag.item() and not stop:
                stop, self.reason = True, "interrupted on another rank"
        if stop:
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}


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


def train(s, be: Backend, recipe: Path | None = None, extra_callbacks: tuple = ()) -> dict:
    """The whole run; returns the report (also written to <output>/train_report.json by the main process)."""
    release = read_release(s)
    version = release[0]["zig_version"]
    dev, retain, dev_file = probe_questions(s, version)
    t0 = time.perf_counter()
    model, tokenizer = load_model(s, be)
    load_s = time.perf_counter() - t0
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    log(f"model {be.model_path} ({be.params / 1e9:.2f}B parameters) via {be.name}, loaded in {load_s:.1f}s; "
        f"lr {s.learning_rate:g}, at most {s.max_epochs:g} epochs, {s.max_seq_len} x {s.batch_size} x {s.grad_accum}")

    prompts, general_file = general_prompts(s)
    general, general_info = general_answers(model, tokenizer, prompts, be) if prompts else ([], {})
    if prompts:
        log(f"general answers of the base model ({general_file}): {general_info['answers_kept']} of "
            f"{general_info['prompts']} kept ({general_info['answers_cut']} cut at {GENERAL_TOKENS} tokens) "
            f"[{general_info['seconds']}s]")
    train_ds, eval_ds, data_info = load_training_set(s, tokenizer, release, general)
    data_info["general"] = {"file": general_file, **general_info}
    # Best-fit-decreasing packing: whole sequences into bins of max_seq_len (ours already fit, so none is cut).
    train_ds = pack_dataset(train_ds, s.max_seq_len, "bfd")
    eval_ds = pack_dataset(eval_ds, s.max_seq_len, "bfd") if eval_ds is not None else None
    collator = batch_collator(s.packing, tokenizer.pad_token_id)
    config = TrainingArguments(
        output_dir=s.checkpoints,
        per_device_train_batch_size=s.batch_size, per_device_eval_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum, max_steps=s.max_steps, num_train_epochs=s.max_epochs,
        learning_rate=s.learning_rate, lr_scheduler_type="cosine", warmup_steps=0.03, weight_decay=0.0,
        optim="adamw_8bit" if be.cuda else "adamw_torch",
        # Autocast only for the PEFT path (bf16 or 4-bit base, fp32 LoRA). Unsloth's model and kernels already run
        # in bf16 and cast LoRA weights themselves; autocast on top adds dispatch work to every op of a step that
        # is partly CPU-bound: on an H200 at 2048 x 2 it cost 5-18 % of the raw loop's speed (docs/BENCHMARKS.md).
        bf16=be.cuda and not be.unsloth,
        use_cpu=not be.cuda,  # also what makes several CPU processes (torchrun) data parallel over gloo
        # Unsloth brings its own (offloaded) gradient checkpointing; the PEFT path asks the Trainer for it.
        gradient_checkpointing=be.cuda and not be.unsloth and s.gradient_checkpointing,
        # Non-reentrant checkpointing gives LoRA its gradients even where the frozen embeddings' outputs do not
        # require grad (the bf16 path skips prepare_model_for_kbit_training, which would arrange that).
        gradient_checkpointing_kwargs={"use_reentrant": False},
        logging_steps=s.logging_steps, eval_strategy="steps" if eval_ds is not None else "no", eval_steps=s.eval_steps,
        save_strategy="steps", save_steps=s.eval_steps, save_total_limit=s.save_total_limit,
        # Both off because each is a host sync per micro-batch; Throughput counts tokens without one, and a NaN
        # loss is better seen in the log than averaged away.
        include_num_input_tokens_seen="no", logging_nan_inf_filter=False,
        report_to=s.report_to, seed=s.seed, data_seed=s.seed,
        remove_unused_columns=False,  # the collator needs the packing's seq_lengths column
        ddp_find_unused_parameters=False, dataloader_pin_memory=be.cuda, disable_tqdm=False,
    )
    throughput = Throughput(s.warmup_steps_excluded, tokenizer.pad_token_id)
    stopper = StopOnSignal()
    callbacks: list[TrainerCallback] = [throughput, ProgressLine(), stopper]
    probe = None
    if dev:
        probe = FactsProbe(dev, retain, tokenizer, version, every_steps=s.facts_eval_steps, target=s.until_facts,
                           patience=s.facts_patience, max_new_tokens=s.facts_eval_tokens, modes=inference_modes(be),
                           trained=trained_questions(s, release, tokenizer))
        callbacks.append(probe)
    trainer = Trainer(model=model, args=config, train_dataset=train_ds, eval_dataset=eval_ds, data_collator=collator,
                      processing_class=tokenizer, callbacks=[*callbacks, *extra_callbacks])
    data_info["packed_train_sequences"] = len(trainer.train_dataset)
    data_info["padding_share"] = round(padding_share(trainer, s.batch_size), 4)
    # How full the packed bins are: with padding-free batches the empty rest costs nothing, but it shows how well
    # the windows pack (a half-empty bin would mean padding under a padded collator).
    data_info["packing_fill"] = round(data_info["train_tokens"] / (len(train_ds) * s.max_seq_len), 4)
    log(format_table(data_info["token_table"], data_info["padding_share"]))
    for source, dropped in data_info["dropped"].items():
        log(f"left out of {source}: {dropped['failed_validation']} records that failed compile validation, "
            f"{dropped['too_long']} chat records longer than --max-seq-len {s.max_seq_len}")

    resume_from = get_last_checkpoint(s.checkpoints) if s.resume and Path(s.checkpoints).is_dir() else None
    if s.resume and resume_from is None:
        log(f"--resume: no checkpoint in {s.checkpoints}, starting from step 0")
    if be.cuda:
        torch.cuda.reset_peak_memory_stats()
    t1 = time.perf_counter()
    try:
        result = trainer.train(resume_from_checkpoint=resume_from)
    except torch.OutOfMemoryError:
        raise TrainingError(
            f"CUDA out of memory at --max-seq-len {s.max_seq_len} --batch-size {s.batch_size}: lower --batch-size "
            "(keep tokens per step by raising --grad-accum), then --max-seq-len, or use a smaller --lora-rank"
        ) from None
    train_s = time.perf_counter() - t1
    evals = [e for e in trainer.state.log_history if "eval_loss" in e]
    if eval_ds is not None and (not evals or evals[-1]["step"] != trainer.state.global_step):
        evals.append(trainer.evaluate())  # the final weights' eval loss, unless the last step just measured it
    eval_loss = evals[-1]["eval_loss"] if evals else None

    report = {
        "settings": asdict(s), "recipe": str(recipe) if recipe else None, "model_path": be.model_path,
        "model_params": be.params, "backend": be.name,
        "unsloth": "used" if be.unsloth else f"not used ({be.note})",
        "world_size": trainer.args.world_size, "data": data_info,
        "steps": trainer.state.global_step, "max_steps": trainer.state.max_steps,
        "epochs": round(trainer.state.epoch or 0.0, 3),
        "resumed_from": resume_from, "train_loss": result.training_loss, "eval_loss": eval_loss,
        "loss_log": [{k: v for k, v in e.items() if k in ("step", "loss", "eval_loss", "learning_rate")}
                     for e in trainer.state.log_history if "loss" in e or "eval_loss" in e],
        "load_s": round(load_s, 1), "train_s": round(train_s, 1), **throughput.result(trainer.args.world_size),
    }
    if stopper.reason:
        report["interrupted"] = f"{stopper.reason} at step {trainer.state.global_step}"
    if probe is not None:
        probe.stop_reason = report.get("interrupted") or probe.stop_reason
        report["facts"] = {"dev_file": dev_file, **probe.report(),
                           "share_of_train_time": round(probe.seconds / train_s, 4) if train_s else None}
    if be.cuda:
        report["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        report["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    if trainer.is_world_process_zero():
        save_adapter(s, trainer.model, tokenizer, report)
    return report


# ---------------------------------------------------------------------------------------------- save


def serve_command(adapter: Path) -> str:
    """How to serve `adapter` on this machine: scripts/serve.py picks `vllm serve` on a GPU and vLLM's CPU build
    elsewhere, and fills in the base model, LoRA rank, context length and thinking-off template."""
    path = adapter.resolve()
    in_repo = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    return (f"make serve ADAPTER={shlex.quote(str(in_repo))}\n"
            f"# or, from any directory: python {shlex.quote(str(REPO / 'scripts' / 'serve.py'))} "
            f"{shlex.quote(str(path))}\n"
            "# The OpenAI-compatible API answers at http://127.0.0.1:8000/v1 as model `ziglora` (the adapter) "
            "beside the base model;\n# thinking is off, as in training. `make eval` compares the two.\n")


def loss_curve(report: dict, path: Path) -> None:
    """Training (and eval) loss by step; dev-fact accuracy on a second axis when the probe ran. A run of fewer
    than 50 steps is titled a smoke run, so its few noisy points are not read as training that got worse."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("loss", "train loss"), ("eval_loss", "eval loss")):
        points = [(e["step"], e[key]) for e in report["loss_log"] if key in e]
        if points:
            ax.plot(*zip(*points, strict=True), marker="." if key == "loss" else "o", label=label)
    ax.set(xlabel="optimizer step", ylabel="loss")
    handles = ax.lines[:]
    facts = report.get("facts")
    if facts and facts["history"]:
        acc = ax.twinx()
        rows = [facts["before"], *facts["history"]]
        handles += acc.plot([r["step"] for r in rows], [r["dev_accuracy"] for r in rows], "s-", color="tab:green",
                            label="dev facts answered")
        if facts.get("trained_questions"):  # memorized vs carried over to the user's words (ziglora/train/probe.py)
            handles += acc.plot([r["step"] for r in rows], [r["trained_passed"] / facts["trained_questions"]
                                                            for r in rows], "^--", color="tab:olive",
                                label="trained facts recalled")
        acc.set(ylabel="share of questions answered", ylim=(0, 1))
    smoke = "smoke run: " if report["steps"] < 50 else ""
    ax.set_title(f"ziglora LoRA training — {smoke}{report['steps']} steps")
    if handles:  # a run shorter than --logging-steps logs no loss
        ax.legend(handles=handles, loc="center right")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_adapter(s, model, tokenizer, report: dict) -> None:
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
    report["serve_command"] = serve_command(out)
    report["adapter_problems"] = adapter_problems(work)
    atomic_write_text(work / "serve_command.txt", report["serve_command"])
    loss_curve(report, work / "loss_curve.png")
    write_json(work / "train_report.json", report)
    usual_permissions(work)  # safetensors writes adapter_model.safetensors 0600
    shutil.rmtree(out, ignore_errors=True)
    os.replace(work, out)


def summary(report: dict) -> str:
    """What a user reads at the end: how long, what it learned, where the adapter is and how to serve it."""
    s = report["settings"]
    lines = [f"steps {report['steps']} ({report['epochs']:g} epochs), train loss {report['train_loss']:.4f}, "
             f"eval loss {report['eval_loss']}, {report.get('tokens_per_s', '?')} tokens/s; adapter in {s['output']}/"]
    facts = report.get("facts")
    if facts:
        lines += [facts["verdict"], f"stopped: {facts['stop_reason']}"]
    else:
        lines.append("facts not measured: no dev questions for this release (--facts-eval)")
    lines.append("serve it with:\n" + report["serve_command"])
    return "\n".join(lines)
