"""How many new tokens does the facts probe need? (`--facts-eval-tokens`, ziglora/train/probe.py.) The probe's cost is
its decode steps, so a shorter cap is a cheaper probe, if the passes do not need the tokens cut off.

An adapter (and its base model, for the retain questions it knew) answers the natural dev and test questions and
the retain questions greedily at the longest cap, with the probe's prompt and pass rule, on CPU or GPU; each answer
is then judged again cut to each shorter cap (re-tokenized: the same tokens up to the tokenizer's round trip), with
how many answers had ended (EOS) by then: the probe's batch runs until its last answer ends or the cap.
Measured: docs/BENCHMARKS.md.

    python bench/probe_tokens.py results/smollm2-135m-zig-0.14.0/adapter --zig-version 0.14.0 > probe-tokens.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ziglora.common.models import answering_model
from ziglora.evaluate.questions import fact_passes, fact_prompt, load_facts
from ziglora.train.generate import generate

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("adapter", type=Path, help="a SmolLM2-135M adapter folder (train_lora.py's output)")
    p.add_argument("--zig-version", required=True)
    p.add_argument("--caps", default="32,48,64,96,128", help="new-token caps to judge at; the largest is generated")
    args = p.parse_args()
    caps = sorted(int(c) for c in args.caps.split(","))
    natural = REPO / "evals" / f"zig-{args.zig_version}" / "natural.jsonl"
    sets = {"dev": load_facts(natural, "dev"), "test": load_facts(natural, "test"),
            "retain": load_facts(REPO / "evals" / "retain.jsonl")}
    report: dict = {"adapter": str(args.adapter), "caps": caps}
    for model_name, adapter in (("base", None), ("adapter", args.adapter)):
        model, tok = answering_model(adapter)
        for set_name, tasks in sets.items():
            if model_name == "base" and set_name != "retain":
                continue  # the base model knows no facts of the release: only what it knew is worth cutting
            said = generate(model, tok, [fact_prompt(t, args.zig_version) for t in tasks], caps[-1])
            ids = [tok(text, add_special_tokens=False)["input_ids"] for text, _ in said]
            by_cap = {}
            for cap in caps:
                passed = sum(fact_passes(t, tok.decode(a[:cap])) for t, a in zip(tasks, ids, strict=True))
                ended = sum(done and len(a) < cap for (_, done), a in zip(said, ids, strict=True))
                by_cap[cap] = {"passed": passed, "ended": ended}
            report[f"{model_name} {set_name}"] = {"total": len(tasks), "by_cap": by_cap}
            print(model_name, set_name, len(tasks), by_cap, file=sys.stderr, flush=True)
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
