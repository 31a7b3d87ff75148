"""Trainer callbacks of every run: real tokens/s, a progress line for logs, a clean stop on a signal, and the peak
GPU memory of the training steps apart from the load's."""
from __future__ import annotations

import signal
import sys
import threading
import time

import torch
from transformers import TrainerCallback

from ziglora.train.memory import PeakMeter
from ziglora.train.report import log

PROGRESS_EVERY_S = 30.0  # a progress line at least this often when stdout is a log, not a terminal


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


class MemoryPhases(TrainerCallback):
    """What ran before the Trainer was built is the `load` phase of the PeakMeter; from then on, what runs between
    generations is `training` (the generations measure themselves: ziglora/train/memory.py GenerationPlanner)."""

    def __init__(self, meter: PeakMeter):
        self.meter = meter

    def on_init_end(self, args, state, control, **kwargs):
        self.meter.enter("training")
