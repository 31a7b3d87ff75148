"""Measure models behind an OpenAI-compatible endpoint (vLLM) on what Zig knowledge the adapter should add.

Suites, every model in one run so they see the same tasks under the same settings:
- facts: held-out questions (`{"q", "accept"}` JSONL, never trained on); an answer passes when the
  case-insensitive regex `accept` is found in it.
- exercism: the exercism/zig practice exercises at the commit written for the release. The model gets
  the instructions and the stub; its Zig block is compiled and tested with `zig test test_<name>.zig`
  by the release's compiler in a temporary directory, under a time limit (pass@1, greedy).

`--answers reference|stub` replaces the models with the tasks' own answers (exercism: `.meta/example.zig`
or the unchanged stub; facts: the reference answer or an empty one). That checks the harness itself:
references must pass, stubs must fail.

Outputs in --output: eval_report.json, eval_report.md (table), eval_report.png (bar chart) and
logs/<model>/<suite>/<task>.log (prompt, answer, compiler output).
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script without installing the package

from ziglora.archive import read_text_members  # noqa: E402
from ziglora.facts import FactTask, fact_passes, fact_prompt, load_facts, strip_think  # noqa: E402
from ziglora.io import atomic_write_text, write_json  # noqa: E402
from ziglora.net import DownloadError, download  # noqa: E402
from ziglora.progress import Progress  # noqa: E402
from ziglora.site import resolve_version  # noqa: E402
from ziglora.versions import DEFAULT_VERSION, exercism_url, resolve_pin  # noqa: E402
from ziglora.zig import Zig, ensure_zig  # noqa: E402

SUITES = ("facts", "exercism")
# Same as training (DESIGN.md): Qwen3 answers without a <think> block.
CHAT_TEMPLATE_KWARGS = {"enable_thinking": False}


class EndpointDown(RuntimeError):
    pass


class RequestRejected(RuntimeError):
    """A 4xx for one request (e.g. a prompt longer than the served context): that task fails, the run goes on."""


# ---------------------------------------------------------------- tasks


@dataclass(frozen=True)
class Exercise:
    slug: str  # the folder name, with hyphens: armstrong-numbers
    instructions: str
    stub: str
    test: str
    example: str

    @property
    def module(self) -> str:
        """The stub's file stem: Zig files use underscores (armstrong_numbers.zig, test_armstrong_numbers.zig)."""
        return self.slug.replace("-", "_")


def exercises_from_members(members: dict[str, bytes]) -> tuple[list[Exercise], list[str]]:
    """Group archive members into exercises. Returns (complete exercises, slugs missing a file)."""
    root = "exercises/practice/"
    slugs = sorted({p[len(root):].split("/", 1)[0] for p in members if p.startswith(root) and p.count("/") >= 3})
    complete, incomplete = [], []
    for slug in slugs:
        base = f"{root}{slug}/"
        module = slug.replace("-", "_")
        names = [f"{module}.zig", f"test_{module}.zig", ".docs/instructions.md", ".meta/example.zig"]
        files = [members.get(base + n) for n in names]
        if any(f is None for f in files):
            incomplete.append(slug)
            continue
        stub, test, instructions, example = (f.decode("utf-8", "replace") for f in files)
        # the track's Zig-specific notes (error sets, allocators to use) belong to the task
        append = members.get(base + ".docs/instructions.append.md")
        if append is not None:
            instructions = instructions.rstrip() + "\n\n" + append.decode("utf-8", "replace")
        complete.append(Exercise(slug, instructions, stub, test, example))
    return complete, incomplete


def exercise_prompt(ex: Exercise, zig_version: str) -> str:
    return (
        f"Solve this Exercism exercise in Zig {zig_version}.\n\n{ex.instructions.strip()}\n\n"
        f"Complete the file `{ex.module}.zig`; it is tested with `zig test test_{ex.module}.zig`.\n\n"
        f"```zig\n{ex.stub.rstrip()}\n```\n\n"
        f"Reply with the whole completed `{ex.module}.zig` in one ```zig code block."
    )


_FENCE = re.compile(r"```([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.S)


def extract_zig(answer: str) -> str | None:
    """The Zig file in a chat answer: the longest ```zig block, else the longest unlabeled one.

    Longest, because models often add a short usage snippet next to the full file.
    """
    blocks = [(lang.lower(), code) for lang, code in _FENCE.findall(strip_think(answer))]
    for wanted in ("zig", ""):
        codes = [code for lang, code in blocks if lang == wanted]
        if codes:
            return max(codes, key=len)
    return None


# ---------------------------------------------------------------- running generated code


@dataclass(frozen=True)
class RunResult:
    status: str  # passed | failed | timeout
    output: str
    seconds: float


def run_zig_test(zig: Zig, files: dict[str, str], test_file: str, time_limit: float) -> RunResult:
    """Write `files` into a fresh temporary directory and run `zig test test_file` there.

    The compiler and the test binary it spawns run in their own process group, which is killed as a
    whole when the time limit passes: an endless loop in generated code must not outlive the run.
    """
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ziglora-eval-") as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")
        proc = subprocess.Popen(
            [str(zig.exe), "test", test_file], cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace", start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=time_limit)
            status = "passed" if proc.returncode == 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            out += f"\n[killed: time limit of {time_limit:g} s reached]\n"
            status = "timeout"
    return RunResult(status, out, time.monotonic() - start)


# ---------------------------------------------------------------- the endpoint


class Client:
    """A minimal OpenAI-compatible chat client: greedy, thinking off, retries on 5xx and connection errors."""

    def __init__(self, base_url: str, timeout: float, max_tokens: int, retries: int = 3, backoff_s: float = 2.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.retries = retries
        self.backoff_s = backoff_s

    def models(self) -> list[str]:
        try:
            resp = requests.get(f"{self.base_url}/models", timeout=30)
            resp.raise_for_status()
        except requests.RequestException as e:
            raise EndpointDown(
                f"no OpenAI-compatible server answers at {self.base_url} ({e.__class__.__name__}).\n"
                "Start one with `make serve ADAPTER=<adapter dir>` (or pass --base-url), then re-run."
            ) from None
        return [m["id"] for m in resp.json().get("data", [])]

    def chat(self, model: str, prompt: str) -> str:
        body = {
            "model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0.0,
            "max_tokens": self.max_tokens, "chat_template_kwargs": CHAT_TEMPLATE_KWARGS,
        }
        for attempt in range(self.retries + 1):
            try:
                resp = requests.post(f"{self.base_url}/chat/completions", json=body, timeout=self.timeout)
                if 400 <= resp.status_code < 500:  # this request is wrong: retrying will not help
                    raise RequestRejected(f"HTTP {resp.status_code}: {resp.text[:500]}")
                if resp.status_code < 400:
                    return resp.json()["choices"][0]["message"].get("content") or ""
                error: Exception = requests.HTTPError(f"{resp.status_code}: {resp.text[:300]}")
            except (requests.ConnectionError, requests.Timeout) as e:
                error = e
            if attempt < self.retries:
                time.sleep(self.backoff_s * 2**attempt)
        raise EndpointDown(f"{self.base_url}: chat request for {model!r} failed {self.retries + 1} times: {error}")


# ---------------------------------------------------------------- one task, one model


@dataclass
class Outcome:
    model: str
    suite: str
    task: str
    passed: bool
    detail: str  # what the log holds beyond the answer: the compiler output or the regex


def answer_for(answers: str, client: Client | None, model: str, prompt: str, own: str, stub: str) -> str:
    if answers == "reference":
        return own
    if answers == "stub":
        return stub
    assert client is not None
    return client.chat(model, prompt)


def eval_fact(task: FactTask, model: str, ask: Callable[[str], str], zig_version: str) -> tuple[Outcome, str]:
    prompt = fact_prompt(task, zig_version)
    try:
        answer = ask(prompt)
    except RequestRejected as e:
        return Outcome(model, "facts", task.id, False, str(e)), f"# question\n{task.q}\n\n# request rejected\n{e}\n"
    ok = fact_passes(task, answer)
    log = f"# question\n{task.q}\n\n# answer\n{answer}\n\n# accept /{task.accept}/i: {'PASS' if ok else 'FAIL'}\n"
    return Outcome(model, "facts", task.id, ok, task.accept), log


def eval_exercise(
    ex: Exercise, model: str, ask: Callable[[str], str], zig: Zig, zig_version: str, time_limit: float,
    compile_slots: threading.Semaphore,
) -> tuple[Outcome, str]:
    prompt = exercise_prompt(ex, zig_version)
    try:
        answer = ask(prompt)
    except RequestRejected as e:
        return Outcome(model, "exercism", ex.slug, False, str(e)), f"# prompt\n{prompt}\n\n# request rejected\n{e}\n"
    code = extract_zig(answer)
    if code is None:
        run = RunResult("failed", "[no Zig code block in the answer]", 0.0)
    else:
        with compile_slots:  # compiling is CPU-bound: at most --jobs at once, however many requests are in flight
            test_file = f"test_{ex.module}.zig"
            run = run_zig_test(zig, {f"{ex.module}.zig": code, test_file: ex.test}, test_file, time_limit)
    log = (f"# prompt\n{prompt}\n\n# answer\n{answer}\n\n# zig test test_{ex.module}.zig: {run.status} "
           f"({run.seconds:.1f} s)\n{run.output}\n")
    return Outcome(model, "exercism", ex.slug, run.status == "passed", run.status), log


# ---------------------------------------------------------------- reports


def summarize(outcomes: list[Outcome], models: list[str], suites: list[str], skipped: dict[str, int]) -> list[dict]:
    rows = []
    for model in models:
        for suite in suites:
            mine = [o for o in outcomes if o.model == model and o.suite == suite]
            rows.append({"model": model, "suite": suite, "passed": sum(o.passed for o in mine), "total": len(mine),
                         "skipped": skipped.get(suite, 0)})
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = ["| model | suite | passed | total | score | skipped |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        score = f"{100 * r['passed'] / r['total']:.1f}%" if r["total"] else "n/a"
        lines.append(f"| {r['model']} | {r['suite']} | {r['passed']} | {r['total']} | {score} | {r['skipped']} |")
    return "\n".join(lines) + "\n"


def bar_chart(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    suites = list(dict.fromkeys(r["suite"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(2 + 2.5 * len(suites), 4))
    for i, model in enumerate(models):
        xs, ys = [], []
        for j, suite in enumerate(suites):
            r = next(r for r in rows if r["model"] == model and r["suite"] == suite)
            xs.append(j + (i - (len(models) - 1) / 2) * width)
            ys.append(100 * r["passed"] / r["total"] if r["total"] else 0)
        bars = ax.bar(xs, ys, width, label=model)
        ax.bar_label(bars, fmt="%.0f%%", fontsize=8)
    ax.set_xticks(range(len(suites)), [f"{s} (n={next(r['total'] for r in rows if r['suite'] == s)})" for s in suites])
    ax.set_ylabel("passed (%)")
    ax.set_ylim(0, 110)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--zig-version", default=DEFAULT_VERSION,
                   help="Zig release to evaluate, or `latest` (the newest on the site) (default %(default)s)")
    p.add_argument("--base-url", default="http://127.0.0.1:8000/v1",
                   help="OpenAI-compatible endpoint, up to /v1 (default %(default)s: `make serve`)")
    p.add_argument("--models", default="",
                   help="comma-separated model names, e.g. Qwen/Qwen3-8B,ziglora (default: every model the endpoint "
                        "lists, which for `make serve` is the base model and the adapter)")
    p.add_argument("--suites", default=",".join(SUITES), help="comma-separated, of: " + ", ".join(SUITES))
    p.add_argument("--answers", choices=["model", "reference", "stub"], default="model",
                   help="model: ask the endpoint (default); reference/stub: check the harness with the tasks' own "
                        "reference answers / unchanged stubs, no endpoint needed")
    p.add_argument("--facts", type=Path, help="facts JSONL (default raw_data/zig-<ver>/qa_heldout.jsonl)")
    p.add_argument("--exercism-archive", type=Path,
                   help="exercism/zig .tar.gz to use instead of downloading the release's commit "
                        "(default: downloaded once to raw_data/zig-<ver>/sources/)")
    p.add_argument("--exercism-ref", help="exercism/zig commit or branch to download (default: $ZIGLORA_EXERCISM_REF, "
                   "else the commit ziglora/versions.py verified for the release, else the track's main branch)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N tasks of each suite (0: all)")
    p.add_argument("--output", type=Path, default=Path("out/eval"), help="report directory (default %(default)s)")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight at once (default %(default)s)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="zig compilations at once (default: CPU count, %(default)s)")
    p.add_argument("--request-timeout", type=float, default=600, help="seconds per chat request (default %(default)s)")
    p.add_argument("--test-timeout", type=float, default=120,
                   help="seconds for compiling and running one exercise's tests before it is killed "
                        "(default %(default)s)")
    p.add_argument("--max-tokens", type=int, default=2048, help="answer length limit (default %(default)s)")
    args = p.parse_args(argv)
    args.zig_version = resolve_version(args.zig_version)
    return args


def load_exercises(args: argparse.Namespace, data_dir: Path) -> tuple[list[Exercise], list[str]]:
    archive = args.exercism_archive
    if archive is None:
        ref = resolve_pin(args.zig_version, "exercism_commit", args.exercism_ref)
        print(f"Zig {args.zig_version}: {ref}")
        archive = data_dir / "sources" / f"exercism-zig-{ref.value}.tar.gz"
        try:
            download(exercism_url(ref.value), archive)  # cached: a whole file, fetched once
        except DownloadError as e:
            raise SystemExit(f"{e}\nPass a local copy of the track with --exercism-archive FILE.") from None
    exercises, incomplete = exercises_from_members(read_text_members(str(archive), (".zig", ".md")))
    if not exercises:
        raise SystemExit(f"{archive}: no exercism exercise found (expected exercises/practice/<slug>/...)")
    return exercises, incomplete


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    suites = [s.strip() for s in args.suites.split(",") if s.strip()]
    unknown = [s for s in suites if s not in SUITES]
    if unknown or not suites:
        raise SystemExit(f"unknown suite(s) {unknown}: choose from {', '.join(SUITES)}")
    data_dir = Path("raw_data") / f"zig-{args.zig_version}"

    client = None
    if args.answers == "model":
        client = Client(args.base_url, args.request_timeout, args.max_tokens)
        try:
            served = client.models()
        except EndpointDown as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        models = [m.strip() for m in args.models.split(",") if m.strip()] or served
        missing = [m for m in models if m not in served]
        if missing:
            print(f"error: {args.base_url} does not serve {missing}; it serves {served}. "
                  "Pass --models with names from that list.", file=sys.stderr)
            return 2
    else:
        models = [args.answers]

    facts: list[FactTask] = []
    exercises: list[Exercise] = []
    skipped: dict[str, int] = {}
    zig = None
    if "facts" in suites:
        path = args.facts or data_dir / "qa_heldout.jsonl"
        if not path.is_file():
            raise SystemExit(f"{path}: no facts file; build it with scripts/build_qa.py (make data) or pass --facts")
        facts = load_facts(path)[: args.limit or None]
    if "exercism" in suites:
        exercises, incomplete = load_exercises(args, data_dir)
        exercises = exercises[: args.limit or None]
        skipped["exercism"] = len(incomplete)
        zig = ensure_zig(args.zig_version)

    compile_slots = threading.Semaphore(max(args.jobs, 1))
    logs_dir = args.output / "logs"

    def job(model: str, suite: str, task: FactTask | Exercise) -> Outcome:
        if isinstance(task, FactTask):
            def ask(prompt: str) -> str:
                return answer_for(args.answers, client, model, prompt, task.answer, "")
            outcome, log = eval_fact(task, model, ask, args.zig_version)
        else:
            def ask(prompt: str) -> str:
                return answer_for(args.answers, client, model, prompt, f"```zig\n{task.example}```",
                                  f"```zig\n{task.stub}```")
            outcome, log = eval_exercise(task, model, ask, zig, args.zig_version, args.test_timeout, compile_slots)
        atomic_write_text(logs_dir / safe_name(model) / suite / f"{safe_name(outcome.task)}.log", log)
        return outcome

    work = [(m, "facts", t) for m in models for t in facts] + [(m, "exercism", e) for m in models for e in exercises]
    outcomes: list[Outcome] = []
    try:
        with ThreadPoolExecutor(max_workers=max(args.concurrency, 1)) as pool:
            futures = [pool.submit(job, *w) for w in work]
            with Progress("evaluating", total=len(futures), unit="tasks") as progress:
                for fut in as_completed(futures):
                    outcomes.append(fut.result())
                    progress.update()
    except EndpointDown as e:
        print(f"error: {e}\nIs the server still running? No report was written.", file=sys.stderr)
        return 2

    outcomes.sort(key=lambda o: (o.model, o.suite, o.task))
    rows = summarize(outcomes, models, suites, skipped)
    report = {
        "zig_version": args.zig_version, "base_url": args.base_url if client else None, "answers": args.answers,
        "settings": {"temperature": 0.0, "max_tokens": args.max_tokens, "chat_template_kwargs": CHAT_TEMPLATE_KWARGS,
                     "test_timeout_s": args.test_timeout},
        "results": rows,
        "tasks": [{"model": o.model, "suite": o.suite, "task": o.task, "passed": o.passed, "detail": o.detail}
                  for o in outcomes],
    }
    write_json(args.output / "eval_report.json", report)
    table = markdown_table(rows)
    atomic_write_text(args.output / "eval_report.md", f"# Zig {args.zig_version} evaluation\n\n{table}")
    bar_chart(rows, args.output / "eval_report.png", f"Zig {args.zig_version}: passed per suite")
    print(table, end="")
    print(f"report: {args.output / 'eval_report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
