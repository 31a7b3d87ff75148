"""Train a LoRA adapter that teaches a chat model one Zig release, measure while training that it learns the
release's facts, and save the best adapter the way vLLM loads it. `python train_lora.py --help` lists every setting,
grouped; `--config recipes/<name>.yaml` reads a recipe, which flags still override.

Steps (ziglora/train/recipe.py): release files -> model -> training set -> trainer -> train (+ facts probe) -> save.
Output (--output): adapter_config.json, adapter_model.safetensors, tokenizer files, train_report.json (token
table, losses, dev/retain curve, stop reason, tokens/s, memory, settings), loss_curve.png, serve_command.txt.
Exit status: 0 trained, 1 the adapter is not servable by vLLM, 2 a setting or input to fix (one `error:` line).
"""
from __future__ import annotations

import sys

from ziglora.train.backend import TrainingError
from ziglora.train.report import is_main_process, summary
from ziglora.train.settings import parse


def main(argv: list[str] | None = None) -> int:
    try:
        settings, recipe = parse(argv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from ziglora.train.run import run  # torch, transformers (and Unsloth) load only past parsing and --help

    try:
        report = run(settings, recipe)
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not is_main_process():
        return 0
    print(summary(report))
    if report["adapter_problems"]:
        print("ADAPTER NOT SERVABLE by vLLM: " + "; ".join(report["adapter_problems"]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
