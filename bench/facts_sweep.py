"""What SmolLM2-135M learns, recipe by recipe: train one adapter per run with train_lora.py, then (unless --no-score)
ask every adapter, the base model and the base model with the docs pasted in (open book) the same questions:

- natural test / dev: evals/zig-<ver>/natural.jsonl, facts of the release notes asked the way a user asks
  (test is never used for a choice; dev is what the trainer's facts probe watches);
- template held-out: build_qa.py's qa_heldout.jsonl (phrasings never trained on, section title in the question);
- retain: evals/retain.jsonl, kept = answered by the adapter of those the base model answers.

Runs where a CUDA GPU is (bench/facts_sweep.sh stages it on the device machine): the runs train side by side on
one GPU, then scoring uses the trainer's own batched greedy generate (ziglora/train/generate.py) with evaluate.py's
prompt and pass rule (ziglora/evaluate/questions.py). The figures docs/RESULTS.md states come from evaluate.py
through vLLM on the adapters; this ranks recipes and draws their curves.

    python bench/facts_sweep.py --data-root raw_data --work /tmp/facts [--runs default,distill,...]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ziglora.common.io import read_jsonl, write_json
from ziglora.common.models import SMOLLM2
from ziglora.data.stages import output_entry
from ziglora.evaluate.questions import FactTask, fact_passes, fact_prompt, load_facts, provenance
from ziglora.release.versions import DEFAULT_VERSION

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Run:
    flags: tuple[str, ...] = ()  # train_lora.py flags beyond --model smollm2-135m --data --output
    qa_flags: tuple[str, ...] = ()  # build_qa.py flags the fact Q&A is rebuilt with (none: the release's own)
    release: str = DEFAULT_VERSION


DISTILL = ("--distill", "facts,general")
FOCUSED_SHAPE = ("--max-seq-len", "2048", "--batch-size", "1", "--grad-accum", "1")  # the recipe's on a CPU
RELEASES = ("0.14.0", "0.15.2")
RUNS: dict[str, Run] = {
    # exactly `make train MODEL=smollm2-135m` (on the release named)
    **{f"default-{release}": Run(release=release) for release in RELEASES},
    # context distillation (ziglora/train/distill.py): KL to the base model reading the fact's section, and to the
    # base model's own general answers; the ways docs/RESULTS.md compares, on both releases
    **{f"distill{variant}-{release}": Run(flags, release=release)
       for release in RELEASES
       for variant, flags in (("", DISTILL), ("-ce", (*DISTILL, "--distill-ce-weight", "1")),
                              ("-teacher", (*DISTILL, "--distill-answers", "teacher")),
                              ("-facts", ("--distill", "facts")), ("-general", ("--distill", "general")))},
    # the large models' sources and mix on the small model
    "all-sources": Run(("--sources", "all", "--oversample", "qa-facts=0.35,qa=0.15,prompts=0.1,general=0.05")),
    "lr2e-4": Run(("--learning-rate", "2e-4")),
    "no-general": Run(("--general-prompts", "none")),
    # the phrasing curve: N question forms per fact and term beside the default's other sources (the release's own
    # is N = 8)
    **{f"phr-{n}": Run(qa_flags=("--phrasings", str(n))) for n in (2, 4, 16)},
    # `make all`'s CPU recipe at its CPU shape (one 2048-token window a step), on a GPU in a minute instead of a CPU's
    # quarter hour: N focused sections (the recipe: 3), more epochs, other rates, rank, the section-level Q&A; the
    # probe never stops them early (docs/RESULTS.md, "The CPU run of `make all`")
    **{f"focused{name}": Run(("--config", "recipes/focused.yaml", *FOCUSED_SHAPE, "--facts-patience", "9", *flags))
       for name, flags in (
        ("", ()), ("-e6", ("--max-epochs", "6")), ("-2", ("--focus-sections", "2", "--max-epochs", "7")),
        ("-5", ("--focus-sections", "5", "--max-epochs", "5")),
        ("-lr1e-3", ("--learning-rate", "1e-3", "--max-epochs", "7")),
        ("-lr4e-3", ("--learning-rate", "4e-3", "--max-epochs", "5")),
        ("-r64", ("--lora-rank", "64", "--lora-alpha", "128", "--max-epochs", "6")),
        ("-qa", ("--sources", "release-notes,qa-facts,qa", "--max-epochs", "6")))},
}
# One process trains on a 135M model's few large kernels at a time; more CPU threads per process only contend.
THREADS_PER_RUN = "2"


def qa_release(data: Path, name: str, flags: tuple[str, ...], work: Path) -> Path:
    """A release dir with the notes and build_qa.py's Q&A built with `flags`, listed in a manifest of its own. Built
    by `--prepare` where the data scripts run (the device machine lacks their packages) and carried along."""
    out_root = work / f"data-{name}"
    rel = out_root / data.name
    if (rel / "manifest.json").is_file():
        return rel
    rel.mkdir(parents=True, exist_ok=True)
    shutil.copy(data / "release_notes_sections.jsonl", rel)
    manifest = json.loads((data / "manifest.json").read_text())
    subprocess.run([sys.executable, str(REPO / "scripts" / "build_qa.py"), "--zig-version", manifest["zig_version"],
                    "--out-root", str(out_root), *flags], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    outputs = [output_entry(rel, rel / "release_notes_sections.jsonl", "doc_sections", None),
               output_entry(rel, rel / "qa_train.jsonl", "chat", None)]
    write_json(rel / "manifest.json", {**manifest, "outputs": outputs})
    return rel


def train(name: str, data_root: Path, work: Path, env: dict, extra: list[str]) -> subprocess.Popen:
    run = RUNS[name]
    data = data_root / f"zig-{run.release}"
    release = qa_release(data, name, run.qa_flags, work) if run.qa_flags else data
    cmd = [sys.executable, str(REPO / "train_lora.py"), "--model", SMOLLM2, "--data", str(release),
           "--output", str(work / name), *run.flags, *extra]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=open(work / f"{name}.log", "w"), stderr=subprocess.STDOUT)


def sections_of(data: Path) -> dict[tuple[str, ...], dict]:
    """The release's release-notes sections by title path."""
    return {tuple(r["title_path"]): r for r in read_jsonl(data / "release_notes_sections.jsonl")}


def open_book(tasks: list[FactTask], sections: dict[tuple[str, ...], dict]) -> dict[str, str]:
    """The release-notes section each question comes from, by task id: what pasting the docs into a chat gives."""
    return {t.id: sections[t.section]["text"] for t in tasks if t.section in sections}


def provenance_lines(tasks: list[FactTask], sections: dict[tuple[str, ...], dict], version: str) -> dict[str, str]:
    """The line a trained answer from each question's own section ends with, by task id."""
    return {t.id: provenance(version, t.section[-1], sections[t.section]["level"]) for t in tasks
            if t.section in sections}


def score(adapter: Path | None, sets: dict[str, list[FactTask]], version: str, max_new_tokens: int,
          lines: dict[str, str], context: dict[str, str] | None = None) -> dict:
    from ziglora.common.models import answering_model
    from ziglora.train.generate import greedy_answers

    model, tok = answering_model(adapter)
    result = {}
    for name, tasks in sets.items():
        prompts = [fact_prompt(t, version, (context or {}).get(t.id)) for t in tasks]
        said = greedy_answers(model, tok, prompts, max_new_tokens)
        passed = [fact_passes(t, a) for t, a in zip(tasks, said, strict=True)]
        # where an answer went wrong: finding the question's section (the trained answer names it) or stating it
        found = [t.id in lines and lines[t.id] in a for t, a in zip(tasks, said, strict=True)]
        result[name] = {"passed": sum(passed), "total": len(tasks), "section_named": sum(found),
                        "section_named_passed": sum(f and ok for f, ok in zip(found, passed, strict=True)),
                        "by_id": {t.id: ok for t, ok in zip(tasks, passed, strict=True)},
                        "samples": [{"q": t.q, "passed": ok, "answer": a[:300]}
                                    for t, a, ok in list(zip(tasks, said, passed, strict=True))[:8]]}
    return result


def question_sets(data: Path, version: str) -> dict[str, list[FactTask]]:
    natural = REPO / "evals" / f"zig-{version}" / "natural.jsonl"
    return {"natural_test": load_facts(natural, "test"), "natural_dev": load_facts(natural, "dev"),
            "template_heldout": load_facts(data / "qa_heldout.jsonl"),
            "retain": load_facts(REPO / "evals" / "retain.jsonl")}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", type=Path, required=True, help="the folder of the zig-<ver> release dirs (make data)")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated of {', '.join(RUNS)}")
    p.add_argument("--extra", default="", help="train_lora.py flags every run gets, e.g. '--max-epochs 8'")
    p.add_argument("--max-new-tokens", type=int, default=384)
    p.add_argument("--deadline-s", type=float, default=0, help=(
        "SIGTERM a run still training this many seconds after its start: it then saves its best adapter so far "
        "(train_lora.py stops after the step) and is scored; 0: no deadline"))
    p.add_argument("--parallel", type=int, default=8, help="runs training at once; the others wait for a free place")
    p.add_argument("--no-score", dest="score", action="store_false", help=(
        "train only (the adapters are scored elsewhere, e.g. evaluate.py through vLLM)"))
    p.add_argument("--prepare", action="store_true", help="only build the runs' own Q&A data (qa_flags) into --work")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    runs = args.runs.split(",")
    if args.prepare:
        for name in runs:
            if RUNS[name].qa_flags:
                print(qa_release(args.data_root / f"zig-{RUNS[name].release}", name, RUNS[name].qa_flags, args.work))
        return 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": THREADS_PER_RUN,
           "MKL_NUM_THREADS": THREADS_PER_RUN}
    t0 = time.perf_counter()
    from ziglora.common.models import smollm2_dir

    smollm2_dir()  # converted once here, before the runs start side by side
    waiting, procs, started = list(runs), {}, {}

    def schedule() -> None:
        """Start waiting runs while fewer than --parallel train (side by side on one GPU); stop those past the
        deadline."""
        now = time.perf_counter()
        for name, proc in procs.items():
            if args.deadline_s and proc.poll() is None and now - started[name] > args.deadline_s:
                print(f"deadline: stopping {name}", flush=True)
                proc.send_signal(signal.SIGTERM)
                started[name] = float("inf")  # signalled once
        while waiting and sum(proc.poll() is None for proc in procs.values()) < args.parallel:
            name = waiting.pop(0)
            procs[name], started[name] = train(name, args.data_root, args.work, env, args.extra.split()), now

    schedule()
    results: dict = {}
    sets: dict[str, dict[str, list[FactTask]]] = {}
    lines: dict[str, dict[str, str]] = {}  # by release: the provenance line of each question's section
    for release in dict.fromkeys(RUNS[name].release for name in runs) if args.score else ():
        data = args.data_root / f"zig-{release}"
        sets[release] = question_sets(data, release)
        natural = {k: sets[release][k] for k in ("natural_test", "natural_dev")}
        sections = sections_of(data)
        lines[release] = provenance_lines([t for tasks in natural.values() for t in tasks], sections, release)
        results[f"base {release}"] = score(None, sets[release], release, args.max_new_tokens, lines[release])
        results[f"base {release} (open book)"] = score(None, natural, release, args.max_new_tokens, lines[release],
                                                       open_book(natural["natural_test"] + natural["natural_dev"],
                                                                 sections))
    write_json(args.work / "sweep.json", results)
    for name in runs:
        while name not in procs or procs[name].poll() is None:
            schedule()
            time.sleep(5)
        rc = procs[name].returncode
        run = RUNS[name]
        entry: dict = {"args": list(run.flags), "qa_flags": list(run.qa_flags), "release": run.release}
        if rc != 0:
            entry["error"] = f"train_lora.py exit {rc}, see {name}.log"
        else:
            report = json.loads((args.work / name / "train_report.json").read_text())
            entry.update({k: report.get(k) for k in ("steps", "epochs", "train_loss", "tokens_per_s", "train_s",
                                                     "backend", "interrupted")})
            entry["train_tokens"] = report["data"]["train_tokens"]
            entry["facts_probe"] = report.get("facts")
            entry["teacher"] = report["data"].get("teacher")
        if rc == 0 and args.score:
            entry.update(score(args.work / name, sets[run.release], run.release, args.max_new_tokens,
                               lines[run.release]))
            base_ok = results[f"base {run.release}"]["retain"]["by_id"]
            entry["retain"]["kept"] = sum(1 for i, ok in entry["retain"]["by_id"].items() if ok and base_ok[i])
            entry["retain"]["base_passed"] = sum(base_ok.values())
        results[name] = entry
        write_json(args.work / "sweep.json", results)
        print(name, {k: (v["passed"], v["total"]) for k, v in entry.items() if isinstance(v, dict) and "passed" in v},
              f"{time.perf_counter() - t0:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
