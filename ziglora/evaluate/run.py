"""One evaluation run: choose the suites and the models, ask every task one served model at a time, write the report.

Every suite runs every model, so they see the same tasks under the same settings. Under --answers reference|stub
the tasks' own answers stand in for the models: a check of the harness itself.
"""
from __future__ import annotations

import argparse
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from ziglora.common.io import atomic_write_text
from ziglora.common.progress import Progress
from ziglora.evaluate.harness import Client, Context, EndpointDown, EvalInputError, Outcome, Suite
from ziglora.evaluate.report import summarize, task_records, write_reports
from ziglora.evaluate.sandbox import isolation
from ziglora.evaluate.suites import registry
from ziglora.serve.contract import THINKING_OFF

SUITES = registry()


def chosen_suites(names: str) -> list[Suite]:
    """The suites a comma-separated --suites names, in that order."""
    wanted = [s.strip() for s in names.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SUITES]
    if unknown or not wanted:
        raise EvalInputError(f"unknown suite(s) {unknown}: choose from {', '.join(SUITES)}")
    return [SUITES[n] for n in wanted]


def served_models(client: Client, requested: str, base_model: str | None) -> tuple[list[str], str | None]:
    """(the models to ask: those of comma-separated `requested`, or every model the server lists; the base model:
    `base_model`, or the parent the server lists for an adapter, where the adapter or that parent is asked)."""
    listed = client.model_list()
    served = [m["id"] for m in listed]
    models = [m.strip() for m in requested.split(",") if m.strip()] or served
    missing = [m for m in models if m not in served]
    if missing:
        raise EvalInputError(f"{client.base_url} does not serve {missing}; it serves {served}. "
                             "Pass --models with names from that list.")
    # vLLM lists a LoRA adapter with its base model as `parent`
    asked = set(models)
    return models, base_model or next((m["parent"] for m in listed
                                       if m.get("parent") and {m["id"], m["parent"]} & asked), None)


def ask_all(ctx: Context, suites: list[Suite], models: list[str], work: list[tuple[Suite, str, object]],
            concurrency: int) -> list[Outcome]:
    """Every (suite, model, task) of `work`, --concurrency at once, each task's log written as it ends."""

    def job(suite: Suite, model: str, task: object) -> Outcome:
        outcome, log = suite.run(ctx, model, task)
        atomic_write_text(ctx.log_dir(outcome.model, suite.name) / f"{outcome.task}.log", log)
        return outcome

    outcomes: list[Outcome] = []
    try:
        for suite in suites:
            suite.start(ctx, models)
        # One served model at a time: vLLM's CPU build let the adapter answer base-model requests batched beside
        # adapter requests (docs/RESULTS.md), so requests for two models are never in flight together.
        with Progress("evaluating", total=len(work), unit="tasks") as progress:
            for model in models:
                with ThreadPoolExecutor(max_workers=max(concurrency, 1)) as pool:
                    for fut in as_completed([pool.submit(job, *w) for w in work if w[1] == model]):
                        outcomes.append(fut.result())
                        progress.update()
    except EndpointDown as e:
        raise EndpointDown(f"{e}\nIs the server still running? No report was written.") from None
    finally:
        for suite in suites:
            suite.stop()
    return outcomes


def evaluate(args: argparse.Namespace) -> str:
    """Run the suites of `args` (evaluate.py's options) and write the report to args.output; returns its markdown
    table. Raises EndpointDown or EvalInputError, before any report is written."""
    suites = chosen_suites(args.suites)
    client = None
    base = args.base_model or None
    if args.answers == "model":
        client = Client(args.base_url, args.request_timeout, args.max_tokens)
        models, base = served_models(client, args.models, base)
    else:
        models = [args.answers]

    ctx = Context(args=args, zig_version=args.zig_version, data_dir=Path("raw_data") / f"zig-{args.zig_version}",
                  answers=args.answers, client=client, logs_dir=args.output / "logs",
                  compile_slots=threading.Semaphore(max(args.jobs, 1)), base_model=base)
    work, skipped = [], {}
    for suite in suites:
        tasks, skipped[suite.name] = suite.load(ctx)
        work += [(suite, m, t) for m, t in suite.work(ctx, models, tasks[: args.limit or None])]
    outcomes = ask_all(ctx, suites, models, work, args.concurrency)

    outcomes.sort(key=lambda o: (o.suite, o.model, o.task))
    details = {suite.name: suite.details([o for o in outcomes if o.suite == suite.name]) for suite in suites}
    report = {
        "zig_version": args.zig_version, "base_url": args.base_url if client else None, "answers": args.answers,
        "base_model": base, "sandbox": isolation(),
        "settings": {"temperature": 0.0, "max_tokens": args.max_tokens, "chat_template_kwargs": THINKING_OFF,
                     "test_timeout_s": args.test_timeout,
                     **{k: v for suite in suites for k, v in suite.settings(args).items()}},
        "results": summarize(outcomes, suites, skipped, base),
        "details": {name: data for name, (data, _) in details.items() if data},
        "tasks": task_records(outcomes),
    }
    return write_reports(args.output, report, "\n".join(text for _, text in details.values() if text))
