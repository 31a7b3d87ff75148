"""The Trainer of a run: its arguments, how packed sequences become batches, and the training call itself.

Not TRL's SFTTrainer: version 1.15 always computes the loss with its Triton kernels, which do not exist on CPU; our
data is already tokenized and labelled, so transformers' Trainer is all we need. TRL packs the sequences.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint
from trl import pack_dataset
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from ziglora.train.backend import Backend, TrainingError
from ziglora.train.distill import DistillTrainer, collate_with_teacher_rows
from ziglora.train.report import log
from ziglora.train.settings import Settings
from ziglora.train.teacher import TeacherTable
from ziglora.train.trainset import TrainingSet


@dataclass(frozen=True)
class Fit:
    """What training left: the final losses, the checkpoint it resumed from, the seconds it took."""

    train_loss: float
    eval_loss: float | None
    resumed_from: str | None
    seconds: float


def training_arguments(s: Settings, be: Backend, evaluates: bool) -> TrainingArguments:
    return one_gpu_per_process(TrainingArguments(
        output_dir=s.checkpoints,
        per_device_train_batch_size=s.batch_size, per_device_eval_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum, max_steps=s.max_steps, num_train_epochs=s.max_epochs,
        learning_rate=s.learning_rate, lr_scheduler_type="cosine", warmup_steps=0.03, weight_decay=0.0,
        optim="adamw_8bit" if be.cuda else "adamw_torch",
        # Autocast only for the PEFT path (bf16 or 4-bit base, fp32 LoRA). Unsloth's model and kernels already run
        # in bf16 and cast LoRA weights themselves; autocast on top slows its steps (docs/BENCHMARKS.md).
        bf16=be.cuda and not be.unsloth,
        use_cpu=not be.cuda,  # also what makes several CPU processes (torchrun) data parallel over gloo
        # Unsloth brings its own (offloaded) gradient checkpointing; the PEFT path asks the Trainer for it.
        gradient_checkpointing=be.cuda and not be.unsloth and s.gradient_checkpointing,
        # Non-reentrant checkpointing gives LoRA its gradients even where the frozen embeddings' outputs do not
        # require grad (the bf16 path skips prepare_model_for_kbit_training, which would arrange that).
        gradient_checkpointing_kwargs={"use_reentrant": False},
        logging_steps=s.logging_steps, eval_strategy="steps" if evaluates else "no", eval_steps=s.eval_steps,
        save_strategy="steps", save_steps=s.eval_steps, save_total_limit=s.save_total_limit,
        # Both off because each is a host sync per micro-batch; Throughput counts tokens without one, and a NaN
        # loss is better seen in the log than averaged away.
        include_num_input_tokens_seen="no", logging_nan_inf_filter=False,
        report_to=s.report_to, seed=s.seed, data_seed=s.seed,
        remove_unused_columns=False,  # the collator needs the packing's seq_lengths column
        ddp_find_unused_parameters=False, dataloader_pin_memory=be.cuda, disable_tqdm=False,
    ))


def one_gpu_per_process(args: TrainingArguments) -> TrainingArguments:
    """A process that sees several GPUs still trains on one: the Trainer would multiply the micro-batch by the GPU
    count (and wrap a bf16 model in nn.DataParallel) while the model and its memory plan sit on cuda:0. Several GPUs
    train through `accelerate launch`, one process each (docs/TRAINING.md)."""
    if args.n_gpu > 1:
        log(f"{args.n_gpu} GPUs visible to one process: training on {args.device}; to train on all of them run "
            f"`accelerate launch --num_processes {args.n_gpu} --multi_gpu train_lora.py ...`")
        args._n_gpu = 1  # n_gpu is a read-only property over this attribute; Unsloth sets it the same way
    return args


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


def build_trainer(s: Settings, be: Backend, model, tokenizer, data: TrainingSet, teacher: TeacherTable | None,
                  callbacks: Sequence[TrainerCallback]) -> Trainer:
    """A Trainer over the training set packed best-fit-decreasing into bins of --max-seq-len (every sequence
    already fits one, so none is cut); with a teacher table, one whose loss distils it (ziglora/train/distill.py)."""
    train = pack_dataset(data.train, s.max_seq_len, "bfd")
    evals = pack_dataset(data.eval, s.max_seq_len, "bfd") if data.eval is not None else None
    collate = batch_collator(s.packing, tokenizer.pad_token_id)
    common = {"model": model, "args": training_arguments(s, be, evals is not None), "train_dataset": train,
              "eval_dataset": evals, "processing_class": tokenizer, "callbacks": list(callbacks)}
    if teacher is None:
        return Trainer(data_collator=collate, **common)
    device = "cuda" if be.cuda else "cpu"  # the table is looked up every step: keep it beside the model
    return DistillTrainer(data_collator=collate_with_teacher_rows(collate, s.packing == "padding_free"),
                          teacher_ids=teacher.ids.to(device), teacher_logprobs=teacher.logprobs.to(device),
                          ce_weight=s.distill_ce_weight, unsloth=be.unsloth, **common)


def padding_share(trainer: Trainer, batch_size: int) -> float:
    """Pad positions / all positions over the packed train set, batched and collated exactly as training does."""
    packed = trainer.train_dataset
    real = total = 0
    for start in range(0, len(packed), batch_size):
        rows = [packed[i] for i in range(start, min(start + batch_size, len(packed)))]
        real += sum(len(r["input_ids"]) for r in rows)
        total += trainer.data_collator(rows)["input_ids"].numel()
    return 1 - real / total if total else 0.0


def packing_stats(trainer: Trainer, s: Settings, train_tokens: int) -> dict:
    """How the packed train set fills its batches. packing_fill: with padding-free batches a bin's empty rest costs
    nothing, but it shows how well the windows pack (a half-empty bin would be padding under a padded collator)."""
    packed = len(trainer.train_dataset)
    return {"packed_train_sequences": packed, "padding_share": round(padding_share(trainer, s.batch_size), 4),
            "packing_fill": round(train_tokens / (packed * s.max_seq_len), 4)}


def fit(trainer: Trainer, s: Settings, be: Backend) -> Fit:
    """Train (from the last checkpoint with --resume), then measure the final weights' eval loss."""
    resume_from = get_last_checkpoint(s.checkpoints) if s.resume and Path(s.checkpoints).is_dir() else None
    if s.resume and resume_from is None:
        log(f"--resume: no checkpoint in {s.checkpoints}, starting from step 0")
    if be.cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    try:
        result = trainer.train(resume_from_checkpoint=resume_from)
    except torch.OutOfMemoryError:
        raise TrainingError(
            f"CUDA out of memory at --max-seq-len {s.max_seq_len} --batch-size {s.batch_size}: lower --batch-size "
            "(keep tokens per step by raising --grad-accum), then --max-seq-len, or use a smaller --lora-rank"
        ) from None
    seconds = time.perf_counter() - t0
    evals = [e for e in trainer.state.log_history if "eval_loss" in e]
    if trainer.eval_dataset is not None and (not evals or evals[-1]["step"] != trainer.state.global_step):
        evals.append(trainer.evaluate())  # the final weights' eval loss, unless the last step just measured it
    return Fit(result.training_loss, evals[-1]["eval_loss"] if evals else None, resume_from, seconds)
