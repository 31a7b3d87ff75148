"""Fold the raw-loop results and train_lora.py reports of one bench/h200.sh run into one JSON.

    python bench/summarize.py DIR > bench.json

DIR holds bench_unsloth_<seq>x<batch>.json (raw_qlora_loop.py) and train_<seq>x<batch>.json (train_lora.py's
train_report.json); bench/memory.sh's runs are run_<name>.json, each against every raw loop that ran, a variant
run_<name>_<variant>.json (run_defaults_keep0.json) of as many steps has its loss compared step by step with
run_<name>.json, and run_gpu2.json (data parallel on two GPUs) is compared with run_gpu1.json (one). Real
tokens/s counts non-pad tokens only: the raw loop trains on full random rows (no padding), train_lora.py on packed
corpus windows.

The raw loop reports tokens/s from its median step; train_lora.py from the mean over its measured steps (all
tokens / all step time). `train_lora_vs_raw` compares like with like: the raw loop's mean, read from the step
times in its log (raw_<seq>x<batch>.log, warm-up steps excluded as the loop does), against ours.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def ours(report: dict) -> dict:
    data = report.get("data", {})
    return {
        "real_tokens_per_s": report.get("tokens_per_s"),
        "padding_share": data.get("padding_share"),
        "packing_fill": data.get("packing_fill"),
        "truncated_tokens": data.get("truncated_tokens"),
        "peak_allocated_gib": report.get("peak_allocated_gib"),
        "peak_reserved_gib": report.get("peak_reserved_gib"),
        "load_s": report.get("load_s"),
        "measured_steps": report.get("measured_steps"),
        "backend": report.get("backend"),
        "world_size": report.get("world_size"),
        **{k: report.get("memory", {}).get(k) for k in ("cap_gib", "kept_layers", "phases")},
    }


RAW_WARMUP_STEPS = 3  # raw_qlora_loop.py's WARM: steps it runs before timing
RAW_STEP = re.compile(r"step (\d+) loss \S+ s ([\d.]+)")


def raw_mean_tokens_per_s(log: Path, tokens_per_step: int) -> float | None:
    if not log.is_file():
        return None
    times = [float(t) for i, t in RAW_STEP.findall(log.read_text()) if int(i) >= RAW_WARMUP_STEPS]
    return round(tokens_per_step * len(times) / sum(times), 1) if times else None


def baseline(raw: dict, log: Path) -> dict:
    return {
        "real_tokens_per_s": raw_mean_tokens_per_s(log, raw["seq"] * raw["batch"]),
        "real_tokens_per_s_median_step": raw.get("tokens_per_s"),
        "padding_share": 0.0,
        "peak_allocated_gib": raw.get("peak_gib"),
        "peak_reserved_gib": raw.get("peak_reserved_gib"),
        "load_s": raw.get("load_s"),
        "step_s_median": raw.get("step_s_median"),
    }


def losses(report: dict, steps: int) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in report.get("loss_log", []) if "loss" in e and e["step"] <= steps}


def runs(directory: Path, loss_steps: int = 30) -> dict:
    """bench/memory.sh's train_lora.py runs: each against every raw loop that ran, and the loss of a variant
    run_<name>_<variant> against run_<name>'s over the first `loss_steps` steps where both ran as many steps."""
    out = {}
    reports = {p.stem.removeprefix("run_"): json.loads(p.read_text()) for p in sorted(directory.glob("run_*.json"))}
    raws = {}
    for raw in sorted(directory.glob("bench_unsloth_*x*.json")):
        shape = raw.stem.removeprefix("bench_unsloth_")
        raws[shape] = baseline(json.loads(raw.read_text()), directory / f"raw_{shape}.log")["real_tokens_per_s"]
    for name, report in reports.items():
        row = ours(report)
        for shape, base in raws.items():
            if base and row["real_tokens_per_s"]:
                row[f"vs_raw_{shape}"] = round(row["real_tokens_per_s"] / base, 3)
        parent = name.rpartition("_")[0]  # the schedule follows --max-steps: only runs of equal length compare
        if parent in reports and report["max_steps"] == reports[parent]["max_steps"]:
            mine, theirs = losses(report, loss_steps), losses(reports[parent], loss_steps)
            both = sorted(set(mine) & set(theirs))
            row[f"loss_vs_{parent}"] = {"steps": len(both), "max_relative_difference": round(max(
                (abs(mine[s] - theirs[s]) / abs(theirs[s]) for s in both), default=0.0), 5)}
        out[name] = row
    return out


def summarize(directory: Path) -> dict:
    shapes = []
    for raw_path in sorted(directory.glob("bench_unsloth_*x*.json")):
        seq, batch = map(int, re.findall(r"(\d+)x(\d+)", raw_path.name)[0])
        raw = json.loads(raw_path.read_text())
        row = {"seq": seq, "batch": batch, "raw_loop": baseline(raw, directory / f"raw_{seq}x{batch}.log")}
        report = directory / f"train_{seq}x{batch}.json"
        if report.is_file():
            row["train_lora"] = ours(json.loads(report.read_text()))
            base, mine = row["raw_loop"]["real_tokens_per_s"], row["train_lora"]["real_tokens_per_s"]
            if base and mine:
                row["train_lora_vs_raw"] = round(mine / base, 3)
        shapes.append(row)
    result: dict = {"shapes": shapes}
    single, multi = directory / "run_gpu1.json", directory / "run_gpu2.json"
    if single.is_file() and multi.is_file():
        one, two = ours(json.loads(single.read_text())), ours(json.loads(multi.read_text()))
        entry = {"shape": "train_lora.py defaults", "single_gpu": one, "two_gpus": two}
        if one["real_tokens_per_s"] and two["real_tokens_per_s"]:
            entry["speedup"] = round(two["real_tokens_per_s"] / one["real_tokens_per_s"], 3)
        result["data_parallel"] = entry
    if any(directory.glob("run_*.json")):
        result["runs"] = runs(directory)
    return result


if __name__ == "__main__":
    print(json.dumps(summarize(Path(sys.argv[1])), indent=2))
