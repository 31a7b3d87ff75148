"""How far the trained Q&A reach the questions users ask, on CPU, without training anything.

For each natural question (evals/zig-<ver>/natural.jsonl) the training questions of qa_train.jsonl are ranked by
TF-IDF similarity of their words to it, and the question counts as reached when the answer trained for the best
(top 1) or one of the five best (top 5) passes the natural question's accept pattern; `anywhere` counts those whose
accept pattern some trained answer passes. Top 1 is what an adapter scores if it recalls exactly the answer of the
trained question most like the user's, word for word: a ceiling the data sets, which training cannot lift (an
adapter may beat it only where it generalizes beyond word overlap). Dev guides data changes; test is only reported.

With --adapter, what limits that adapter on the reached questions: it is asked (greedy, HF generate, evaluate.py's
pass rule) each reached question's nearest trained question word for word (`recalled`: memorization) and the
natural question itself (`natural`: transfer to the user's words); `natural_where_recalled` counts both.
Measured: docs/RESULTS.md (run log).

    python bench/coverage.py raw_data/zig-0.14.0 [--sources qa-facts,qa] [--adapter DIR [--base DIR]]
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ziglora.common.io import read_jsonl
from ziglora.evaluate.questions import fact_passes, fact_prompt, load_facts

REPO = Path(__file__).resolve().parents[1]
WORD = re.compile(r"[@.\w-]*\w")


def words(text: str) -> Counter:
    """Lower-cased words and identifiers (`std.heap`, `@splat`, `-fno-llvm` stay whole), plural `s` dropped."""
    return Counter(w[:-1] if len(w) > 3 and w.endswith("s") else w for w in WORD.findall(text.lower()))


def ranker(questions: list[str]):
    """Cosine similarity of TF-IDF word vectors: rank(query) -> indices of `questions`, most similar first."""
    bags = [words(q) for q in questions]
    df = Counter(w for bag in bags for w in bag)
    idf = {w: math.log(len(bags) / n) for w, n in df.items()}

    def vec(bag: Counter) -> dict[str, float]:
        v = {w: c * idf.get(w, 0.0) for w, c in bag.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {w: x / norm for w, x in v.items()}

    vecs = [vec(b) for b in bags]

    def rank(query: str) -> list[int]:
        q = vec(words(query))
        scores = [sum(x * v.get(w, 0.0) for w, x in q.items()) for v in vecs]
        return sorted(range(len(vecs)), key=lambda i: -scores[i])

    return rank


def adapter_asker(adapter: Path, base: Path | None) -> Callable[[list[str]], list[str]]:
    """The adapter on its base (None: the built-in SmolLM2), loaded once: prompts -> greedy answers."""
    from ziglora.common.models import answering_model
    from ziglora.train.generate import greedy_answers

    model, tokenizer = answering_model(adapter, base)
    # 128 new tokens, as the trainer's facts probe: the value comes first in a trained answer
    return lambda prompts: greedy_answers(model, tokenizer, prompts, 128)


def coverage(release: Path, sources: set[str], ask: Callable[[list[str]], list[str]] | None = None) -> dict:
    version = json.loads((release / "manifest.json").read_text())["zig_version"]
    trained = [r["messages"] for r in read_jsonl(release / "qa_train.jsonl") if r["source"] in sources]
    questions = [m[0]["content"] for m in trained]
    answers = [m[1]["content"] for m in trained]
    rank = ranker(questions)
    out: dict = {"zig_version": version, "sources": sorted(sources), "trained_questions": len(trained)}
    for split in ("dev", "test"):
        tasks = load_facts(REPO / "evals" / f"zig-{version}" / "natural.jsonl", split)
        top = [rank(t.q)[:5] for t in tasks]
        # (question, the nearest trained question) where the answer trained for that one passes
        reached = [(t, questions[r[0]]) for t, r in zip(tasks, top, strict=True) if fact_passes(t, answers[r[0]])]
        out[split] = {
            "questions": len(tasks),
            "top1": len(reached),
            "top5": sum(any(fact_passes(t, answers[i]) for i in r) for t, r in zip(tasks, top, strict=True)),
            "anywhere": sum(any(fact_passes(t, a) for a in answers) for t in tasks),
        }
        if ask is not None:
            said = ask([fact_prompt(t, version) for t, _ in reached] + [nearest for _, nearest in reached])
            natural = [fact_passes(t, a) for (t, _), a in zip(reached, said[:len(reached)], strict=True)]
            recalled = [fact_passes(t, a) for (t, _), a in zip(reached, said[len(reached):], strict=True)]
            out[split].update({"recalled": sum(recalled), "natural": sum(natural),
                               "natural_where_recalled": sum(n and r for n, r in zip(natural, recalled, strict=True))})
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("release", type=Path, help="a release dir built by `make data` (raw_data/zig-<ver>)")
    p.add_argument("--sources", default="qa-facts,qa", help="qa_train.jsonl sources to rank (default: both)")
    p.add_argument("--adapter", type=Path, help="an adapter to ask (see above)")
    p.add_argument("--base", type=Path, help="its base model dir (default: SmolLM2-135M-Instruct, converted once)")
    args = p.parse_args()
    ask = None
    if args.adapter is not None:
        ask = adapter_asker(args.adapter, args.base)
    print(json.dumps(coverage(args.release, set(args.sources.split(",")), ask), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
