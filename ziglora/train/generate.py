"""Batched greedy generation for the answers asked during a run (the facts probe, the base model's general answers),
shared out over the data-parallel ranks."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from ziglora.serve.contract import THINKING_OFF
from ziglora.train.backend import TrainingError
from ziglora.train.memory import GENERATE_BATCH, GenerationPlanner, Plan
from ziglora.train.report import log


def generate(model, tokenizer, prompts: list[str], max_new_tokens: int, planner: GenerationPlanner | None = None,
             purpose: str = "answers") -> list[tuple[str, bool]]:
    """(answer, finished) per prompt: one chat answer, greedy, in left-padded batches (answers are independent of
    batching up to numerics); `finished` is False for an answer cut at max_new_tokens. With a planner (on a GPU) the
    batches are sized from the memory the run has; without, at most GENERATE_BATCH prompts a batch. One log line per
    call; `purpose` names it there and in the report (general_answers, facts_probe, ...)."""
    if not prompts:  # a data-parallel rank's empty share
        return []
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                           add_generation_prompt=True, **THINKING_OFF) for p in prompts]
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    device = next(p.device for p in model.parameters())
    answers: list[tuple[str, bool]] = []
    try:
        with planner.plan(purpose, lengths, max_new_tokens) if planner else _unplanned(lengths) as plan:
            what = purpose.replace("_", " ")
            log(f"{what}: {len(texts)} prompts in {len(plan.sizes)} batch{'es' * (len(plan.sizes) > 1)} "
                f"of {', '.join(map(str, plan.sizes))} ({plan.note})")
            sizes = list(plan.sizes)
            while sizes:
                size = sizes.pop(0)
                enc = tokenizer(texts[len(answers):len(answers) + size], return_tensors="pt", padding=True,
                                add_special_tokens=False).to(device)
                try:
                    with torch.no_grad():
                        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
                except torch.OutOfMemoryError:
                    if size == 1:  # say what ran out, or train_lora.py would blame --batch-size
                        raise TrainingError(
                            f"CUDA out of memory generating one answer of {max_new_tokens} new tokens ({what}): "
                            "lower --facts-eval-tokens, or train without them (--facts-eval none, "
                            "--general-prompts none)") from None
                    # the last resort where a plan was wrong: the same prompts in halves, the same greedy answers
                    log(f"{what}: out of memory at a batch of {size} ({plan.note}): retrying it in halves")
                    del enc
                    if planner:
                        planner.release(model)
                    torch.cuda.empty_cache()
                    sizes[:0] = [size - size // 2, size // 2]
                    continue
                new = out[:, enc["input_ids"].shape[1]:]
                ended = (new == tokenizer.eos_token_id).any(dim=1).tolist()
                answers += zip(tokenizer.batch_decode(new, skip_special_tokens=True), ended, strict=True)
                del enc, out, new
                if planner:  # the decode cache it left would otherwise still be held in the next training step
                    planner.release(model)
    finally:
        tokenizer.padding_side = side
    return answers


@contextmanager
def _unplanned(lengths: list[int]) -> Iterator[Plan]:
    yield Plan([min(GENERATE_BATCH, len(lengths) - i) for i in range(0, len(lengths), GENERATE_BATCH)],
               f"unplanned: at most {GENERATE_BATCH} a batch")


def greedy_answers(model, tokenizer, prompts: list[str], max_new_tokens: int,
                   planner: GenerationPlanner | None = None, purpose: str = "answers") -> list[str]:
    """One greedy chat answer per prompt (see generate)."""
    return [text for text, _ in generate(model, tokenizer, prompts, max_new_tokens, planner, purpose)]


def rank_slices(answer: Callable[[list], list], items: list) -> list:
    """answer(items) with the work shared by the data-parallel ranks: each answers every world-th item and all
    ranks get every answer, in order (one process: answer(items))."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return answer(items)
    world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
    parts: list = [None] * world
    torch.distributed.all_gather_object(parts, answer(items[rank::world]))
    out = [None] * len(items)
    for r, part in enumerate(parts):
        out[r::world] = part
    return out


@contextmanager
def generating(model, modes: tuple[Callable, Callable]) -> Iterator[None]:
    """The model switched to generation for the block and back to training after, if it was training: `modes` is
    (to inference, to training), each called with the model (model.inference_modes)."""
    to_inference, to_training = modes
    was_training = model.training
    to_inference(model)
    try:
        yield
    finally:
        if was_training:
            to_training(model)
