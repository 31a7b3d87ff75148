"""Recipe sweep for the SmolLM2 facts proof (issue 6): train one adapter per recipe with train_lora.py, then
score it on the held-out questions and on the recall questions (the same sections, trained phrasings).

Runs where a CUDA GPU is (bench/facts_sweep.sh stages it on the device machine); a recipe takes a minute or two
there instead of an hour on two CPU cores. Scoring uses evaluate.py's prompt and pass rule, but answers with
transformers' batched greedy generate, since vLLM is not in the GPU image. docs/RESULTS.md's figures come from
vLLM (CPU) + evaluate.py on the committed adapter; this only ranks recipes.

    python bench/facts_sweep.py --work /tmp/facts [--recipes qa-e20,notes-e20]   # writes <work>/sweep.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import train_lora  # noqa: E402
from ziglora.facts import fact_passes, fact_prompt, load_facts  # noqa: E402 - the real evaluation's prompt and pass rule
from ziglora.io import write_json  # noqa: E402

DATA = REPO / "raw_data" / "zig-0.14.0"
# Every recipe: SmolLM2 on a bf16 base (what vLLM serves it on, unquantized), windows of 2048 (the longest Q&A
# is ~1.9k SmolLM2 tokens), 4 windows a step, no eval split (the held-out questions are the evaluation).
COMMON = ["--model", train_lora.SMOLLM2, "--quantize", "none", "--eval-share", "0", "--max-seq-len", "2048",
          "--batch-size", "4", "--grad-accum", "1", "--logging-steps", "10", "--eval-steps", "100000"]
RECIPES = {
    # Q&A of every release-notes section only: the smallest set that holds the facts asked about.
    "qa-e10": ["--sources", "qa", "--epochs", "10", "--learning-rate", "1e-3"],
    "qa-e20": ["--sources", "qa", "--epochs", "20", "--learning-rate", "1e-3"],
    "qa-e20-lr2e-3": ["--sources", "qa", "--epochs", "20", "--learning-rate", "2e-3"],
    "qa-e20-r32": ["--sources", "qa", "--epochs", "20", "--learning-rate", "1e-3", "--lora-rank", "32",
                   "--lora-alpha", "64"],
    # The release notes as documents and the hand-written prompts beside the Q&A.
    "notes-e20": ["--sources", "qa,release-notes,prompts", "--epochs", "20", "--learning-rate", "1e-3"],
    # Everything train_lora.py trains Qwen3-8B on, with a smaller std lib budget.
    "all-e5": ["--epochs", "5", "--learning-rate", "1e-3", "--stdlib-tokens", "100000"],
}


def answers(model, tok, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy chat answers, all prompts in one left-padded batch."""
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True,
                                     **train_lora.TEMPLATE_KWARGS) for p in prompts]
    tok.padding_side = "left"
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def score(adapter: Path | None, max_new_tokens: int) -> dict:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = train_lora.smollm2_dir()
    tok = AutoTokenizer.from_pretrained(base_dir)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).to(device)  # vLLM CPU serves fp32
    if adapter is not None:
        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    result = {}
    for name in ("qa_heldout", "qa_recall"):
        tasks = load_facts(DATA / f"{name}.jsonl")
        said = answers(model, tok, [fact_prompt(t, "0.14.0") for t in tasks], max_new_tokens)
        passed = [fact_passes(t, a) for t, a in zip(tasks, said, strict=True)]
        result[name] = {"passed": sum(passed), "total": len(tasks)}
        result[f"{name}_samples"] = [{"q": t.q, "passed": ok, "answer": a[:400]}
                                     for t, a, ok in list(zip(tasks, said, passed, strict=True))[:6]]
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--recipes", default=",".join(["base", *RECIPES]), help="comma-separated; `base`: no adapter")
    p.add_argument("--max-new-tokens", type=int, default=512)
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.recipes.split(","):
        t0 = time.perf_counter()
        entry: dict = {"args": RECIPES.get(name, [])}
        adapter = None
        if name != "base":
            adapter = args.work / name
            cmd = [sys.executable, str(REPO / "train_lora.py"), *COMMON, *RECIPES[name], "--data", str(DATA),
                   "--output", str(adapter)]
            with open(args.work / f"{name}.log", "w") as log:
                rc = subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                    env={**os.environ, "ZIGLORA_NO_UNSLOTH": "1"}).returncode
            if rc != 0:
                entry["error"] = f"train_lora.py exit {rc}, see {name}.log"
                results[name] = entry
                write_json(args.work / "sweep.json", results)
                continue
            report = json.loads((adapter / "train_report.json").read_text())
            entry.update({k: report.get(k) for k in ("steps", "train_loss", "tokens_per_s", "train_s", "backend")})
            entry["train_tokens"] = report["data"]["train_tokens"]
        entry.update(score(adapter, args.max_new_tokens))
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        results[name] = entry
        write_json(args.work / "sweep.json", results)
        print(name, {k: entry.get(k) for k in ("qa_heldout", "qa_recall", "train_loss", "seconds")}, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
