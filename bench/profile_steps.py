"""Profile a few optimizer steps of train_lora.py with torch.profiler: where a step's time goes (CPU vs GPU).

    python bench/profile_steps.py --trace trace.json [--first 8 --steps 3] -- <train_lora.py flags>

Prints the ops by CPU and by GPU time and writes a Chrome trace (open it in https://ui.perfetto.dev). The
2048 x 2 trace of docs/BENCHMARKS.md came from this, with `--model <random Qwen3-8B> --max-seq-len 2048
--batch-size 2 --grad-accum 1 --max-steps 14 --eval-share 0`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from ziglora.train import backend
from ziglora.train.settings import parse


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trace", type=Path, required=True, help="Chrome trace file to write")
    p.add_argument("--first", type=int, default=8, help="first optimizer step profiled (after warm-up)")
    p.add_argument("--steps", type=int, default=3, help="optimizer steps profiled")
    args, train_argv = p.parse_known_args()
    if train_argv[:1] == ["--"]:
        train_argv = train_argv[1:]
    settings, _ = parse(train_argv)
    if 0 <= settings.max_steps <= args.first + args.steps:
        p.error(f"--max-steps must exceed --first + --steps ({args.first + args.steps})")
    resolved, chosen = backend.prepare(settings)  # imports Unsloth where it is used, before transformers
    from transformers import TrainerCallback

    from ziglora.train import recipe

    class ProfileSteps(TrainerCallback):
        def __init__(self, first: int, steps: int, trace: Path):
            self.first, self.last, self.trace = first, first + steps, trace
            self.profiler: torch.profiler.profile | None = None

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == self.first:
                activities = [torch.profiler.ProfilerActivity.CPU]
                if torch.cuda.is_available():
                    activities.append(torch.profiler.ProfilerActivity.CUDA)
                self.profiler = torch.profiler.profile(activities=activities)
                self.profiler.__enter__()

        def on_step_end(self, args, state, control, **kwargs):
            if self.profiler is not None and state.global_step == self.last:
                self.profiler.__exit__(None, None, None)
                table = self.profiler.key_averages()
                print(table.table(sort_by="cpu_time_total", row_limit=40))
                if torch.cuda.is_available():
                    print(table.table(sort_by="cuda_time_total", row_limit=25))
                self.profiler.export_chrome_trace(str(self.trace))
                self.profiler = None

    recipe.train(resolved, chosen, extra_callbacks=(ProfileSteps(args.first, args.steps, args.trace),))
    return 0


if __name__ == "__main__":
    sys.exit(main())
