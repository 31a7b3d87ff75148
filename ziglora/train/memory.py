"""A run's GPU memory, planned from numbers instead of found by running out: the cap (--gpu-memory-cap-gib), how many
prompts each batched generation takes, and how many decoder layers keep their activations (--kept-layers).

The plans are arithmetic on the model's shape (Shape) and the card's numbers (CardMemory), so CPU tests check them
with a made-up card; read_card, set_cap and PeakMeter are the only places that ask torch.cuda.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from ziglora.train.backend import TrainingError

GIB = 2**30
# Most prompts in one generate call: decode steps, not prompts, set a generation's time, so one large batch asks
# everything in the fewest steps (docs/BENCHMARKS.md).
GENERATE_BATCH = 256
# Every plan leaves this share of the memory it may use free, and at least PLAN_MIN_GIB: what the estimates miss,
# the allocator's rounding and fragmentation.
PLAN_SHARE, PLAN_MIN_GIB = 0.10, 2.0
# `auto` leaves this much of the card's free memory to what grows outside torch's allocator after the start:
# compiled kernels, cuBLAS and NCCL buffers, a desktop.
AUTO_MARGIN_GIB = 1.0
# Rows Unsloth's decode cache holds past the prompt, whatever max_new_tokens is (its KV_CACHE_INCREMENT), where the
# run cannot size it to the answer (ziglora/train/model.py unsloth_decode_rows).
UNSLOTH_ROWS_AHEAD = 512
# LoRA bytes per trainable parameter while training: fp32 weight and gradient, 8-bit Adam's two moments.
LORA_TRAIN_BYTES = 4 + 4 + 2
# A margin on a kept layer's bytes: measured, a layer holds up to a few percent more than the tensors named in
# keep_bytes_per_token (docs/BENCHMARKS.md).
KEEP_SLACK = 1.1


@dataclass(frozen=True)
class Shape:
    """The parts of a decoder-only model's config the plans need."""

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int

    @classmethod
    def from_config(cls, config) -> Shape:
        """From a transformers config or its dict (config.json); head_dim defaults to hidden / heads."""
        c = config if isinstance(config, dict) else config.to_dict()
        hidden, heads = c["hidden_size"], c["num_attention_heads"]
        return cls(c["num_hidden_layers"], hidden, c.get("intermediate_size") or 4 * hidden, heads,
                   c.get("num_key_value_heads") or heads, c.get("head_dim") or hidden // heads, c["vocab_size"])

    def kv_bytes_per_token(self, dtype_bytes: int) -> int:
        """K and V of every layer for one token: layers x kv_heads x head_dim x 2 x dtype."""
        return 2 * self.layers * self.kv_heads * self.head_dim * dtype_bytes

    def lora_params(self, rank: int, targets: Sequence[str]) -> int:
        """Trainable parameters of LoRA of `rank` on the named projections of every layer."""
        h, i, q, kv = self.hidden, self.intermediate, self.heads * self.head_dim, self.kv_heads * self.head_dim
        sides = {"q_proj": h + q, "k_proj": h + kv, "v_proj": h + kv, "o_proj": q + h, "gate_proj": h + i,
                 "up_proj": h + i, "down_proj": i + h}
        return self.layers * rank * sum(sides[t] for t in targets)

    def keep_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        """What autograd keeps of one decoder layer per token when it is not checkpointed (Unsloth's fused kernels):
        the two norms' inputs and the residual sum with a normed copy (4 h), Q before and after its norm and the
        attention output (3 q: its head reshape is a view), K before and after its norm and V (3 kv), the MLP's gate
        and up outputs (2 i)."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return dtype_bytes * (4 * self.hidden + 3 * q + 3 * kv + 2 * self.intermediate)

    def step_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        """The working set of a fully checkpointed step per token: one layer recomputed with its gradients, and the
        hidden-size tensors around the loss and the offloaded checkpoints' staging."""
        return 2 * self.keep_bytes_per_token(dtype_bytes) + 4 * self.hidden * dtype_bytes


def plan_ceiling(limit: int) -> int:
    """The most any plan lets this process allocate under `limit` bytes."""
    return limit - max(int(PLAN_MIN_GIB * GIB), int(PLAN_SHARE * limit))


@dataclass(frozen=True)
class CardMemory:
    """One GPU's memory as this process sees it, in bytes."""

    total: int  # the card (its MIG slice)
    free: int  # free on the card: what other processes hold is counted, the cap is not
    reserved: int  # held by this process's allocator, in use or cached
    allocated: int  # in use by this process's tensors
    limit: int  # the cap on `reserved`: per-process memory fraction x total (the card without a cap)

    @property
    def others(self) -> int:
        """Held outside this process's allocator: other processes, and CUDA contexts (this one's too)."""
        return max(0, self.total - self.free - self.reserved)

    @property
    def room(self) -> int:
        """The most a plan lets this process allocate: under the cap, and under what the card can still give it."""
        return min(plan_ceiling(self.limit), plan_ceiling(self.free + self.reserved))


def read_card(device: int) -> CardMemory:
    free, total = torch.cuda.mem_get_info(device)
    return CardMemory(total, free, torch.cuda.memory_reserved(device), torch.cuda.memory_allocated(device),
                      int(torch.cuda.get_per_process_memory_fraction(device) * total))


def _gib(n: float) -> str:
    return f"{n / GIB:.2f}"


def resolve_cap(setting: str, card: CardMemory, margin_gib: float = AUTO_MARGIN_GIB) -> tuple[int, str]:
    """(bytes this process may reserve, 0 for no cap; the line that says how) for --gpu-memory-cap-gib: auto is the
    card's memory less what others hold less a margin, read after CUDA started and before the model loads (so free
    plus reserved is what this process could ever own); a number of GiB wins."""
    if setting == "auto":
        cap = card.free + card.reserved - int(margin_gib * GIB)
        if cap <= 0:
            raise TrainingError(f"GPU memory cap: auto found no free memory on the GPU (card {_gib(card.total)} GiB, "
                                f"others {_gib(card.others)}): free it, or pass --gpu-memory-cap-gib")
        return cap, (f"GPU memory cap: auto = {_gib(cap)} GiB (card {_gib(card.total)}, others {_gib(card.others)}, "
                     f"margin {margin_gib:.2f})")
    cap = min(int(float(setting) * GIB), card.total)
    if not cap:
        return 0, f"GPU memory cap: none (--gpu-memory-cap-gib 0; card {_gib(card.total)} GiB)"
    return cap, f"GPU memory cap: {_gib(cap)} GiB (--gpu-memory-cap-gib {setting}; card {_gib(card.total)})"


def set_cap(setting: str, device: int) -> tuple[int, str]:
    """Resolve --gpu-memory-cap-gib on `device` and cap this process's allocator there (see resolve_cap)."""
    card = read_card(device)
    cap, line = resolve_cap(setting, card)
    if cap:
        torch.cuda.set_per_process_memory_fraction(min(1.0, cap / card.total), device)
    return cap, line


# ---------------------------------------------------------------------------------------------- generation

def prompt_bytes(s: Shape, prompt: int, new: int, dtype_bytes: int, rows_ahead: int | None) -> int:
    """Device bytes one prompt of a batched greedy generate holds at its peak (`prompt`: padded prompt tokens, `new`:
    max_new_tokens). rows_ahead: Unsloth's decode cache rows past the prompt; None: transformers' cache, which
    grows to prompt + new."""
    kv = s.kv_bytes_per_token(dtype_bytes)
    cache = kv * (prompt + (rows_ahead + 1 if rows_ahead is not None else new))  # the decode KV cache, all layers
    prefill_cache = kv * prompt  # the prefill's K/V, until the first decode step copies them
    scores = 0 if rows_ahead is None else s.layers * s.heads * (prompt + rows_ahead + 8) * dtype_bytes  # Unsloth's
    expand = 2 * s.heads * s.head_dim * (prompt + new) * dtype_bytes  # one layer's K/V repeated to every head
    prefill_act = prompt * (4 * s.hidden + 3 * s.intermediate) * dtype_bytes  # one layer's prefill activations
    logits = s.vocab * (dtype_bytes + 4 + 4)  # the last position's: model dtype, fp32 copy, processed scores
    mask = prompt * prompt * (dtype_bytes + 1)  # the prefill's padding mask and its bool copy
    return cache + prefill_cache + scores + max(expand, prefill_act) + logits + mask


def plan_batches(s: Shape, budget: int, prompts: Sequence[int], new: int, dtype_bytes: int, rows_ahead: int | None,
                 most: int = GENERATE_BATCH) -> list[int]:
    """Batch sizes for `prompts` (token counts, in asking order): each batch the most of the next prompts (at most
    `most`) whose batch, padded to its longest prompt, fits `budget` bytes. Stops short of the end where not even one
    prompt fits."""
    sizes: list[int] = []
    start = 0
    while start < len(prompts):
        n = longest = 0
        for p in prompts[start:start + most]:
            longest = max(longest, p)
            if (n + 1) * prompt_bytes(s, longest, new, dtype_bytes, rows_ahead) > budget:
                break
            n += 1
        if not n:
            break
        sizes.append(n)
        start += n
    return sizes


class Plan(NamedTuple):
    sizes: list[int]  # prompts per batch, in asking order
    note: str  # what the log line says about how they were chosen


class PeakMeter:
    """Peak GPU memory per phase of a run (load, general_answers, training, facts_probe, ...): where a phase ends its
    peak is read and torch's peak counters reset, so one phase's peak does not hide another's."""

    def __init__(self, device: int):
        self.device = device
        self.phase = "load"  # what runs between generations: the load, then (from the Trainer's start) training
        self.peaks: dict[str, tuple[int, int]] = {}  # phase: (allocated, reserved)

    def close(self, phase: str | None = None) -> None:
        """The peak since the last close is `phase`'s (default: the phase between generations)."""
        phase = phase or self.phase
        allocated, reserved = self.peaks.get(phase, (0, 0))
        self.peaks[phase] = (max(allocated, torch.cuda.max_memory_allocated(self.device)),
                             max(reserved, torch.cuda.max_memory_reserved(self.device)))
        torch.cuda.reset_peak_memory_stats(self.device)

    def enter(self, phase: str) -> None:
        """What ran until now belongs to the phase before; what runs between generations from now on to `phase`."""
        self.close()
        self.phase = phase

    def report(self) -> dict:
        self.close()
        return {"peak_allocated_gib": round(max(a for a, _ in self.peaks.values()) / GIB, 2),
                "peak_reserved_gib": round(max(r for _, r in self.peaks.values()) / GIB, 2),
                "phases": {p: {"peak_allocated_gib": round(a / GIB, 2), "peak_reserved_gib": round(r / GIB, 2)}
                           for p, (a, r) in self.peaks.items()}}


@dataclass
class GenerationPlanner:
    """Sizes every batched greedy generation of a run from the memory it has, and hands that memory back after each
    batch: what training holds is what is allocated when the generation starts (weights, LoRA, optimizer state)."""

    shape: Shape
    dtype_bytes: int
    card: Callable[[], CardMemory]  # read once per generate call
    # new tokens -> a context in which the decode cache has that many rows past the prompt (yields the rows; None:
    # transformers' cache)
    decode_rows: Callable[[int], AbstractContextManager[int | None]]
    release: Callable[[object], None]  # frees what a generation left on the model (Unsloth's decode buffers)
    meter: PeakMeter | None = None
    calls: list[dict] = field(default_factory=list)  # one per generate call, for the report

    @contextmanager
    def plan(self, purpose: str, prompts: Sequence[int], new_tokens: int) -> Iterator[Plan]:
        """The batches for `prompts` (token counts), planned in the block where the decode cache is sized;
        TrainingError where not even one answer fits."""
        if self.meter:
            self.meter.close()
        with self.decode_rows(new_tokens) as rows_ahead:
            budget = max(0, (card := self.card()).room - card.allocated)
            sizes = plan_batches(self.shape, budget, prompts, new_tokens, self.dtype_bytes, rows_ahead)
            if sum(sizes) < len(prompts):
                raise TrainingError(
                    f"{purpose.replace('_', ' ')}: not even one answer of {new_tokens} new tokens fits the "
                    f"{_gib(budget)} GiB of GPU memory a plan leaves beside training ({_gib(card.allocated)} GiB held, "
                    f"at most {_gib(card.room)} planned): raise --gpu-memory-cap-gib, lower --facts-eval-tokens, or "
                    "train without them (--facts-eval none, --general-prompts none)")
            planned, start = 0, 0
            for n in sizes:
                longest = max(prompts[start:start + n])
                planned = max(planned, n * prompt_bytes(self.shape, longest, new_tokens, self.dtype_bytes, rows_ahead))
                start += n
            self.calls.append({"purpose": purpose, "prompts": len(prompts), "new_tokens": new_tokens,
                               "rows_ahead": rows_ahead, "batches": sizes, "planned_gib": round(planned / GIB, 2),
                               "budget_gib": round(budget / GIB, 2)})
            yield Plan(sizes, f"planned {_gib(planned)} of {_gib(budget)} GiB free")
        if self.meter:
            self.meter.close(purpose)


# ---------------------------------------------------------------------------------------------- kept layers

def resident_bytes(s: Shape, allocated: int, lora_rank: int, targets: Sequence[str]) -> int:
    """What training holds between steps: what the loaded model allocates, and LoRA's weights, gradients and
    optimizer state."""
    return allocated + s.lora_params(lora_rank, targets) * LORA_TRAIN_BYTES


def training_peak(s: Shape, resident: int, tokens: int, kept: int, dtype_bytes: int = 2) -> int:
    """A training step's planned peak: resident bytes, a fully checkpointed step of `tokens`, and `kept` layers'
    activations."""
    return int(resident + tokens * s.step_bytes_per_token(dtype_bytes)
               + kept * tokens * s.keep_bytes_per_token(dtype_bytes) * KEEP_SLACK)


def kept_layers(s: Shape, room: int, resident: int, tokens: int, dtype_bytes: int = 2) -> int:
    """Decoder layers whose activations stay on the GPU (no recompute in the backward pass): as many as fit in `room`
    beside the resident bytes and a fully checkpointed step of `tokens` (one micro-step's)."""
    spare = room - training_peak(s, resident, tokens, 0, dtype_bytes)
    per_layer = tokens * s.keep_bytes_per_token(dtype_bytes) * KEEP_SLACK
    return max(0, min(s.layers, int(spare // per_layer)))


# ---------------------------------------------------------------------------------------------- the run's

@dataclass
class RunMemory:
    """What a run decided about its GPU's memory, and what it measured; empty on CPU."""

    cap_gib: float | None = None  # 0: no cap
    cap_line: str = ""
    kept_layers: int | None = None  # None: every layer checkpointed by the backend, or no checkpointing
    layers: int | None = None
    planner: GenerationPlanner | None = None
    meter: PeakMeter | None = None

    def report(self) -> dict:
        """The report's peak_allocated_gib / peak_reserved_gib (the whole run's) and its `memory` part."""
        if self.meter is None:
            return {}
        peaks = self.meter.report()
        return {"peak_allocated_gib": peaks.pop("peak_allocated_gib"),
                "peak_reserved_gib": peaks.pop("peak_reserved_gib"),
                "memory": {"cap_gib": self.cap_gib, "cap": self.cap_line, "kept_layers": self.kept_layers,
                           "layers": self.layers, **peaks,
                           "generation": self.planner.calls if self.planner else []}}
