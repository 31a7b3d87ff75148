"""Batched greedy generation for the answers asked during a run (the facts probe, the base model's general answers),
shared out over the data-parallel ranks."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from ziglora.serve.contract import THINKING_OFF
from ziglora.train.backend import TrainingError

# Decode steps, not prompts, set the time: one large batch asks everything in the fewest steps, and a batch that
# does not fit beside training is asked again in halves (docs/BENCHMARKS.md).
GENERATE_BATCH = 256


def generate(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int = GENERATE_BATCH
             ) -> list[tuple[str, bool]]:
    """(answer, finished) per prompt: one chat answer, greedy, in left-padded batches (answers are independent of
    batching up to numerics); `finished` is False for an answer cut at max_new_tokens."""
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                           add_generation_prompt=True, **THINKING_OFF) for p in prompts]
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    device = next(p.device for p in model.parameters())
    answers: list[tuple[str, bool]] = []
    try:
        while len(answers) < len(texts):
            enc = tokenizer(texts[len(answers):len(answers) + batch_size], return_tensors="pt", padding=True,
                            add_special_tokens=False).to(device)
            try:
                with torch.no_grad():
                    out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            except torch.OutOfMemoryError:
                # the batch's KV cache does not fit beside training: the same prompts in halves, same greedy answers
                if batch_size == 1:  # say what ran out, or train_lora.py would blame --batch-size
                    raise TrainingError(
                        f"CUDA out of memory generating one answer of {max_new_tokens} new tokens (the facts probe "
                        "or the general answers): lower --facts-eval-tokens, or train without them "
                        "(--facts-eval none, --general-prompts none)") from None
                del enc
                torch.cuda.empty_cache()
                batch_size //= 2
                continue
            new = out[:, enc["input_ids"].shape[1]:]
            ended = (new == tokenizer.eos_token_id).any(dim=1).tolist()
            answers += zip(tokenizer.batch_decode(new, skip_special_tokens=True), ended, strict=True)
    finally:
        tokenizer.padding_side = side
    return answers


def greedy_answers(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int = GENERATE_BATCH
                   ) -> list[str]:
    """One greedy chat answer per prompt (see generate)."""
    return [text for text, _ in generate(model, tokenizer, prompts, max_new_tokens, batch_size)]


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
