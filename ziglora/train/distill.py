"""Context distillation in the training step: the student (base + LoRA, the question alone) matches the teacher's
answer distribution (the base model with the section in its prompt, ziglora/train/teacher.py) on the answer tokens.

Loss over a batch's label tokens: cross-entropy on every label the teacher does not cover (documents, prompts, ...),
plus, on each covered answer token, KL(teacher || student) and `ce_weight` x its cross-entropy. The
teacher is known by its top-k log-probabilities; the rest of its mass is one "tail" bucket, so the KL is exact for
the coarsened distributions (zero when they agree, never negative) and the student is also pushed off tokens the
teacher gives little mass, which renormalising over the top k would not do (Snell et al. 2022, "Learning by
Distilling Context"; Padmanabhan et al. 2023).
"""
from __future__ import annotations

import os
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint
from transformers import Trainer

from ziglora.train.examples import IGNORE, NO_TEACHER

CHUNK = 512  # answer positions projected to the vocabulary at once: bounds the fp32 logits a step holds
MIN_TAIL = 1e-6  # the tail bucket's smallest probability, so its log stays finite


def topk_kl(student_logits: torch.Tensor, teacher_ids: torch.Tensor, teacher_logprobs: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) per position over the teacher's top-k tokens plus one bucket for the rest.
    student_logits [m, V]; teacher_ids [m, k] (int); teacher_logprobs [m, k]; returns [m] (fp32)."""
    student = F.log_softmax(student_logits.float(), dim=-1)
    return _kl_from_logprobs(student, teacher_ids.long(), teacher_logprobs.float())


def _kl_from_logprobs(student: torch.Tensor, teacher_ids: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    picked = student.gather(1, teacher_ids)
    head = (teacher.exp() * (teacher - picked)).sum(1)
    teacher_tail = (1 - torch.logsumexp(teacher, 1).exp()).clamp_min(MIN_TAIL)
    student_log_tail = torch.log1p(-torch.logsumexp(picked, 1).exp().clamp_max(1 - MIN_TAIL))
    return head + teacher_tail * (teacher_tail.log() - student_log_tail)


def _answer_losses(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, teacher_ids: torch.Tensor,
                   teacher_logprobs: torch.Tensor, ce_weight: float) -> torch.Tensor:
    """Summed KL + ce_weight x CE over one chunk of answer positions (hidden: the states predicting them)."""
    student = F.log_softmax((hidden.to(weight.dtype) @ weight.T).float(), dim=-1)
    total = _kl_from_logprobs(student, teacher_ids.long(), teacher_logprobs.float()).sum()
    if ce_weight:
        total = total - ce_weight * student.gather(1, labels[:, None]).sum()
    return total


@contextmanager
def unsloth_hidden_states():
    """Unsloth's CausalLM forward returns the final (normed) hidden states as `.logits` while this is set."""
    before = os.environ.get("UNSLOTH_RETURN_HIDDEN_STATES")
    os.environ["UNSLOTH_RETURN_HIDDEN_STATES"] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["UNSLOTH_RETURN_HIDDEN_STATES"]
        else:
            os.environ["UNSLOTH_RETURN_HIDDEN_STATES"] = before


def final_norm(model) -> torch.nn.Module:
    """The decoder's last norm: its output is what the LM head reads (Llama, Qwen3 and their kin)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder().norm


@contextmanager
def captured_output(module: torch.nn.Module):
    """A list that holds `module`'s output of the next forward inside the block."""
    seen: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _args, out: seen.append(out))
    try:
        yield seen
    finally:
        handle.remove()


def ce_and_hidden(model, inputs: dict, labels: torch.Tensor, n_items, unsloth: bool
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed cross-entropy over `labels` divided by n_items, the final hidden states [B, T, H]) from one forward.
    The library computes the cross-entropy as it would without distillation (Unsloth: its fused chunked loss)."""
    if unsloth:
        from unsloth_zoo.fused_losses.cross_entropy_loss import unsloth_fused_ce_loss

        with unsloth_hidden_states():
            hidden = model(**inputs).logits
        ce = unsloth_fused_ce_loss(None, hidden, model.get_output_embeddings().weight, None, labels, n_items=n_items)
        return ce, hidden
    with captured_output(final_norm(model)) as seen:
        ce = model(**inputs, labels=labels, num_items_in_batch=n_items).loss
    return ce, seen[-1]


class DistillTrainer(Trainer):
    """transformers' Trainer whose loss adds the teacher's top-k KL on the answer tokens it covers (teacher_row in
    each batch: the row of the teacher table per token, NO_TEACHER elsewhere)."""

    def __init__(self, *args, teacher_ids: torch.Tensor, teacher_logprobs: torch.Tensor, ce_weight: float,
                 unsloth: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher_ids, self.teacher_logprobs = teacher_ids, teacher_logprobs
        self.ce_weight, self.unsloth = ce_weight, unsloth

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        rows = inputs.pop("teacher_row")
        covered = rows != NO_TEACHER
        if return_outputs or not covered.any():
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels")
        n_items = num_items_in_batch if num_items_in_batch is not None else (labels[:, 1:] != IGNORE).sum()
        ce, hidden = ce_and_hidden(model, inputs, labels.masked_fill(covered, IGNORE), n_items, self.unsloth)
        # the state at position t - 1 predicts the token at t: covered answer tokens never start a sequence
        predicts = torch.zeros_like(covered)
        predicts[:, :-1] = covered[:, 1:]
        states, targets = hidden[predicts], labels[covered]
        table_rows = rows[covered].to(self.teacher_ids.device)
        ids = self.teacher_ids[table_rows].to(hidden.device)
        logprobs = self.teacher_logprobs[table_rows].to(hidden.device)
        weight = model.get_output_embeddings().weight
        answers = hidden.new_zeros((), dtype=torch.float32)
        for i in range(0, len(states), CHUNK):
            part = slice(i, i + CHUNK)
            answers = answers + checkpoint(_answer_losses, states[part], weight, targets[part], ids[part],
                                           logprobs[part], self.ce_weight, use_reentrant=False)
        loss = ce + answers / n_items
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # as Trainer scales its own token-averaged loss
        return loss


def collate_with_teacher_rows(collate, padding_free: bool):
    """`collate` (the run's batch collator) that also carries each packed sequence's teacher_row column, laid out as
    its input_ids: one flattened row (padding_free), or rows right-padded with NO_TEACHER."""
    def with_rows(examples: list[dict]) -> dict:
        rows = [e["teacher_row"] for e in examples]
        batch = collate([{k: v for k, v in e.items() if k != "teacher_row"} for e in examples])
        if padding_free:
            batch["teacher_row"] = torch.tensor([[r for row in rows for r in row]], dtype=torch.long)
        else:
            width = batch["input_ids"].shape[1]
            batch["teacher_row"] = torch.tensor([row + [NO_TEACHER] * (width - len(row)) for row in rows],
                                                dtype=torch.long)
        return batch

    return with_rows
