"""The evaluation report: one summary row per model and suite, written as eval_report.json, a markdown table
(eval_report.md) and a bar chart (eval_report.png)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ziglora.common.io import atomic_write_text, write_json
from ziglora.evaluate.harness import Outcome, Suite


def summarize(outcomes: list[Outcome], suites: list[Suite], skipped: dict[str, int], base: str | None) -> list[dict]:
    """The report's rows: per suite, one per row label (a model, or a variant such as its open-book row)."""
    rows = []
    for suite in suites:
        mine = [o for o in outcomes if o.suite == suite.name]
        by_label = {label: [o for o in mine if o.model == label] for label in dict.fromkeys(o.model for o in mine)}
        notes = suite.notes(by_label, base)
        for label, done in by_label.items():
            rows.append({"model": label, "suite": suite.name, "total": len(done), "skipped": skipped[suite.name],
                         "pass@1": sum(o.pass1 for o in done),
                         "pass@2": sum(o.passed for o in done) if suite.tries > 1 else None,
                         "note": notes.get(label, "")})
    return rows


def task_records(outcomes: list[Outcome]) -> list[dict]:
    """Every task's outcome, as the report's `tasks` lists them."""
    return [{"model": o.model, "suite": o.suite, "task": o.task, "passed": o.passed, "pass@1": o.pass1,
             "detail": o.detail, **({"metrics": o.metrics} if o.metrics else {})} for o in outcomes]


def _score(passed: int | None, total: int) -> str:
    if passed is None:
        return "–"
    return f"{passed}/{total} ({100 * passed / total:.1f}%)" if total else "n/a"


def markdown_table(rows: list[dict]) -> str:
    lines = ["| model | suite | pass@1 | pass@2 | skipped | note |", "| --- | --- | ---: | ---: | ---: | --- |"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['suite']} | {_score(r['pass@1'], r['total'])} | "
                     f"{_score(r['pass@2'], r['total'])} | {r['skipped']} | {r['note']} |")
    return "\n".join(lines) + "\n"


def bar_chart(rows: list[dict], path: Path, title: str) -> None:
    """pass@1 per suite and model; for two-try suites a lighter bar behind it reaches pass@2."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    suites = list(dict.fromkeys(r["suite"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(2 + 2.5 * len(suites), 4))
    for i, model in enumerate(models):
        color = f"C{i}"
        mine = [(j, r) for j, s in enumerate(suites) for r in rows if r["model"] == model and r["suite"] == s]
        xs = [j + (i - (len(models) - 1) / 2) * width for j, _ in mine]

        def pct(r: dict, key: str) -> float:
            return 100 * (r[key] or 0) / r["total"] if r["total"] else 0

        two = [(x, pct(r, "pass@2")) for x, (_, r) in zip(xs, mine, strict=True) if r["pass@2"] is not None]
        if two:
            bars = ax.bar([x for x, _ in two], [y for _, y in two], width, color=color, alpha=0.35, hatch="//")
            ax.bar_label(bars, fmt="%.0f%%", fontsize=7)
        bars = ax.bar(xs, [pct(r, "pass@1") for _, r in mine], width, color=color, label=model)
        ax.bar_label(bars, fmt="%.0f%%", fontsize=8, label_type="center")
    totals = {r["suite"]: r["total"] for r in rows}
    ax.set_xticks(range(len(suites)), [f"{s} (n={totals[s]})" for s in suites])
    ax.set_ylabel("passed (%): pass@1 solid, pass@2 hatched")
    ax.set_ylim(0, 110)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def write_reports(output: Path, report: dict, details: str = "") -> str:
    """eval_report.json, .md and .png in `output`; returns the markdown table, followed by `details` (the suites'
    own markdown sections) where there are any."""
    write_json(output / "eval_report.json", report)
    table = markdown_table(report["results"]) + (f"\n{details}" if details else "")
    where = ("a bubblewrap sandbox (no network, read-only filesystem but for its own folder, resource limits)"
             if report["sandbox"] == "bubblewrap"
             else "NO network or filesystem isolation (bubblewrap missing): limits only")
    zig_version = report["zig_version"]
    atomic_write_text(output / "eval_report.md",
                      f"# Zig {zig_version} evaluation\n\n{table}\nModel-written programs ran in {where}.\n")
    bar_chart(report["results"], output / "eval_report.png", f"Zig {zig_version}: passed per suite")
    return table
