"""What SmolLM2-135M learns, recipe by recipe (issue 11): train one adapter per run with train_lora.py, then ask
every adapter, the base model and the base model with the docs pasted in (open book) the same questions:

- natural test / dev: evals/zig-<ver>/natural.jsonl, facts of the release notes asked the way a user asks
  (test is never used for a choice; dev is what the trainer's facts probe watches);
- template held-out: build_qa.py's qa_heldout.jsonl (phrasings never trained on, section title in the question);
- retain: evals/retain.jsonl, kept = answered by the adapter of those the base model answers.

Runs where a CUDA GPU is (bench/facts_sweep.sh stages it on the device machine): the runs train side by side on
one GPU (a 135M model leaves it mostly idle), then scoring uses the trainer's own batched greedy generate
(ziglora/probe.py) with evaluate.py's prompt and pass rule (ziglora/facts.py). docs/RESULTS.md's headline figures
come from vLLM on CPU + evaluate.py on the committed adapter; this ranks recipes and draws the phrasing curve.

    python bench/facts_sweep.py --data raw_data/zig-0.14.0 --work /tmp/facts [--runs default,phr-2,...]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ziglora.facts import FactTask, fact_passes, fact_prompt, load_facts
from ziglora.io import read_jsonl, write_json
from ziglora.models import SMOLLM2
from ziglora.stage import output_entry

REPO = Path(__file__).resolve().parents[1]

# name -> (train_lora.py flags beyond `--model smollm2-135m`, phrasings of the fact Q&A or None for the release's)
RUNS: dict[str, tuple[list[str], int | None]] = {
    "default": ([], None),  # exactly `make train MODEL=smollm2-135m`
    # The phrasing curve: the fact Q&A with N question forms per fact and term, beside the notes themselves.
    **{f"phr-{n}": (["--sources", "qa-facts,release-notes", "--oversample", "qa-facts=0.7"], n) for n in (2, 4, 8, 16)},
    # The previous default's data: everything but the fact Q&A (what the template-only Q&A teaches).
    "no-facts": (["--sources", "langref,langref-examples,release-notes,release-notes-examples,stdlib,cookbook,qa,"
                  "prompts", "--oversample", "qa=0.3,prompts=0.15"], None),
}


def phrasing_release(data: Path, n: int, work: Path) -> Path:
    """A release dir with the notes and build_qa.py's Q&A at `n` phrasings, listed in a manifest of its own. Built
    by `--prepare` where the data scripts run (the device machine lacks their packages) and carried along."""
    out_root = work / f"data-phr-{n}"
    rel = out_root / data.name
    if (rel / "manifest.json").is_file():
        return rel
    rel.mkdir(parents=True, exist_ok=True)
    shutil.copy(data / "release_notes_sections.jsonl", rel)
    subprocess.run([sys.executable, str(REPO / "scripts" / "build_qa.py"), "--zig-version",
                    json.loads((data / "manifest.json").read_text())["zig_version"], "--out-root", str(out_root),
                    "--phrasings", str(n)], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    outputs = [output_entry(rel, rel / "release_notes_sections.jsonl", "doc_sections", None),
               output_entry(rel, rel / "qa_train.jsonl", "chat", None)]
    manifest = json.loads((data / "manifest.json").read_text())
    write_json(rel / "manifest.json", {**manifest, "outputs": outputs})
    return rel


def train(name: str, data: Path, work: Path, env: dict) -> subprocess.Popen:
    flags, phrasings = RUNS[name]
    release = phrasing_release(data, phrasings, work) if phrasings else data
    cmd = [sys.executable, str(REPO / "train_lora.py"), "--model", SMOLLM2, "--data", str(release),
           "--output", str(work / name), *flags]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=open(work / f"{name}.log", "w"), stderr=subprocess.STDOUT)


def open_book(tasks: list[FactTask], data: Path) -> dict[str, str]:
    """The release-notes section each question comes from, by task id: what pasting the docs into a chat gives."""
    sections = {tuple(r["title_path"]): r["text"] for r in read_jsonl(data / "release_notes_sections.jsonl")}
    return {t.id: sections[t.section] for t in tasks if t.section in sections}


def score(adapter: Path | None, sets: dict[str, list[FactTask]], version: str, max_new_tokens: int,
          context: dict[str, str] | None = None) -> dict:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ziglora.models import smollm2_dir
    from ziglora.probe import greedy_answers

    base = smollm2_dir()
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).to("cuda")  # vLLM CPU serves fp32
    if adapter is not None:
        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    result = {}
    for name, tasks in sets.items():
        prompts = [fact_prompt(t, version, (context or {}).get(t.id)) for t in tasks]
        said = greedy_answers(model, tok, prompts, max_new_tokens)
        passed = [fact_passes(t, a) for t, a in zip(tasks, said, strict=True)]
        result[name] = {"passed": sum(passed), "total": len(tasks),
                        "by_id": {t.id: ok for t, ok in zip(tasks, passed, strict=True)},
                        "samples": [{"q": t.q, "passed": ok, "answer": a[:300]}
                                    for t, a, ok in list(zip(tasks, said, passed, strict=True))[:8]]}
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="the release dir (make data)")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated of {', '.join(RUNS)}")
    p.add_argument("--max-new-tokens", type=int, default=384)
    p.add_argument("--prepare", action="store_true", help="only build the phrasing-curve data into --work")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.prepare:
        for name in args.runs.split(","):
            if RUNS[name][1]:
                print(phrasing_release(args.data, RUNS[name][1], args.work))
        return 0
    version = json.loads((args.data / "manifest.json").read_text())["zig_version"]
    natural = REPO / "evals" / f"zig-{version}" / "natural.jsonl"
    sets = {"natural_test": load_facts(natural, "test"), "natural_dev": load_facts(natural, "dev"),
            "template_heldout": load_facts(args.data / "qa_heldout.jsonl"),
            "retain": load_facts(REPO / "evals" / "retain.jsonl")}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    from ziglora.models import smollm2_dir

    smollm2_dir()  # converted once here, before the runs start side by side
    runs = args.runs.split(",")
    procs = {name: train(name, args.data, args.work, env) for name in runs}  # side by side on one GPU
    results: dict = {"base": score(None, sets, version, args.max_new_tokens)}
    results["base (open book)"] = score(None, {k: sets[k] for k in ("natural_test", "natural_dev")}, version,
                                        args.max_new_tokens, open_book(sets["natural_test"] + sets["natural_dev"],
                                                                       args.data))
    write_json(args.work / "sweep.json", results)
    for name, proc in procs.items():
        rc = proc.wait()
        entry: dict = {"args": RUNS[name][0], "phrasings": RUNS[name][1]}
        if rc != 0:
            entry["error"] = f"train_lora.py exit {rc}, see {name}.log"
        else:
            report = json.loads((args.work / name / "train_report.json").read_text())
            entry.update({k: report.get(k) for k in ("steps", "epochs", "train_loss", "tokens_per_s", "train_s",
                                                     "backend")})
            entry["train_tokens"] = report["data"]["train_tokens"]
            entry["facts_probe"] = report.get("facts")
            entry.update(score(args.work / name, sets, version, args.max_new_tokens))
            base_ok = results["base"]["retain"]["by_id"]
            entry["retain"]["kept"] = sum(1 for i, ok in entry["retain"]["by_id"].items() if ok and base_ok[i])
            entry["retain"]["base_passed"] = sum(base_ok.values())
        results[name] = entry
        write_json(args.work / "sweep.json", results)
        print(name, {k: (v["passed"], v["total"]) for k, v in entry.items() if isinstance(v, dict) and "passed" in v},
              f"{time.perf_counter() - t0:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
