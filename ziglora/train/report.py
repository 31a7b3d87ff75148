"""What a run tells and leaves behind: log lines, the saved adapter with its report, loss curve and serve command,
and the summary a user reads at the end."""
from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path

from ziglora.common.io import atomic_write_text, usual_permissions, write_json
from ziglora.serve.contract import adapter_problems
from ziglora.train.settings import REPO, Settings


def is_main_process() -> bool:
    """Rank 0 under data parallel (or the only process): the one that logs and saves."""
    return int(os.environ.get("RANK", "0")) == 0


def log(msg: str) -> None:
    if is_main_process():
        print(msg, flush=True)


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


def in_bf16(weights: Path) -> None:
    """Rewrite the adapter's fp32 LoRA weights in bf16: half the file, and what vLLM computes in anyway (it casts an
    adapter to the served model's dtype when it loads it)."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(weights)
    save_file({k: v.to(torch.bfloat16) if v.dtype == torch.float32 else v for k, v in tensors.items()}, str(weights),
              metadata={"format": "pt"})


def save_adapter(s: Settings, model, tokenizer, report: dict) -> None:
    """Write the adapter dir next to itself, check it, then swap it in, so a crash never leaves half of one."""
    out = Path(s.output)
    work = out.with_name(f".{out.name}.partial")
    shutil.rmtree(work, ignore_errors=True)
    model.save_pretrained(work)
    in_bf16(work / "adapter_model.safetensors")
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
    peak = f", peak {report['peak_allocated_gib']} GiB of GPU memory" if "peak_allocated_gib" in report else ""
    lines = [f"steps {report['steps']} ({report['epochs']:g} epochs), train loss {report['train_loss']:.4f}, "
             f"eval loss {report['eval_loss']}, {report.get('tokens_per_s', '?')} tokens/s{peak}; adapter in "
             f"{s['output']}/"]
    facts = report.get("facts")
    if facts:
        lines += [facts["verdict"], f"stopped: {facts['stop_reason']}"]
    else:
        lines.append("facts not measured: no dev questions for this release (--facts-eval)")
    lines.append("serve it with:\n" + report["serve_command"])
    return "\n".join(lines)
