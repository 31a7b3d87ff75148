"""Retrieval on the natural questions: recall@1/@3/@5 of each question's own release-notes section (dev and test split
of each release), how often it is in the context the token budget leaves, the tokens that context adds per request
against the whole corpus, and the time retrieval adds per request on this machine. Prints a markdown report.

    python bench/retrieval.py --tokenizer .cache/test-assets/qwen3-tokenizer/tokenizer.json

The index is cached beside each corpus (raw_data/zig-<ver>/retrieval/) unless --cache-root says elsewhere.
"""
from __future__ import annotations

import argparse
import functools
import statistics
import time
from pathlib import Path

from ziglora.evaluate.questions import load_facts
from ziglora.retrieve.context import DEFAULT_BUDGET, DEFAULT_K, estimate_tokens, prepare, retrieve, tokenizer_counter
from ziglora.retrieve.corpus import NOTES, section_id
from ziglora.retrieve.index import load_index
from ziglora.retrieve.measure import RECALL_AT, find, recall

REPO = Path(__file__).resolve().parents[1]


def _ms(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=20)
    return (f"mean {statistics.fmean(samples):.2f} ms, median {statistics.median(samples):.2f}, "
            f"p95 {q[18]:.2f}, max {max(samples):.2f}")


def _timed(fn, queries: list[str], repeat: int, before=lambda: None) -> list[float]:
    """Milliseconds of fn(query) for every query, `repeat` passes, `before()` run untimed before each call."""
    samples = []
    for _ in range(repeat):
        for query in queries:
            before()
            start = time.perf_counter()
            fn(query)
            samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--releases", default="0.14.0,0.15.2", help="comma-separated Zig versions (default %(default)s)")
    p.add_argument("--raw-data", type=Path, default=REPO / "raw_data", help="where `make data` wrote zig-<ver>/")
    p.add_argument("--cache-root", type=Path, help="keep the indexes under DIR/<ver>/ instead of beside each corpus")
    p.add_argument("--tokenizer", type=Path, help="a tokenizer.json to count tokens with (default: the estimate)")
    p.add_argument("--budget", type=int, default=DEFAULT_BUDGET, help="context tokens (default %(default)s)")
    p.add_argument("--k", type=int, default=DEFAULT_K, help="sections considered (default %(default)s)")
    p.add_argument("--latency-release", default="0.15.2", help="release timed (default %(default)s)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs of every query (default %(default)s)")
    args = p.parse_args()
    count = tokenizer_counter(args.tokenizer) if args.tokenizer else estimate_tokens
    counted = f"tokens by {args.tokenizer}" if args.tokenizer else "tokens estimated (characters / 3)"
    print(f"# Retrieval on the natural questions\n\nbudget {args.budget} {counted}, k {args.k}\n")
    print("| release | split | questions | " + " | ".join(f"recall@{k}" for k in RECALL_AT)
          + " | in context | context tokens mean / max |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in RECALL_AT) + " | --- | --- |")
    corpus_tokens, indexes = {}, {}
    for version in args.releases.split(","):
        release = args.raw_data / f"zig-{version}"
        start = time.perf_counter()
        index = indexes[version] = load_index(release, args.cache_root / version if args.cache_root else None)
        loaded = (time.perf_counter() - start) * 1000
        corpus_tokens[version] = (sum(count(s.text) for s in index.sections), len(index.sections),
                                  "loaded" if index.reused else "built", loaded)
        for split in ("dev", "test"):
            tasks = load_facts(REPO / "evals" / f"zig-{version}" / "natural.jsonl", split)
            found = [find(index, t.q, section_id(NOTES, t.section), args.budget, args.k, count)
                     for t in tasks if t.section]
            shares = recall(found)
            tokens = [f.tokens for f in found]
            print(f"| {version} | {split} | {len(found)} | "
                  + " | ".join(f"{shares[f'recall@{k}']:.1%}" for k in RECALL_AT)
                  + f" | {shares['in_context']:.1%} | {statistics.fmean(tokens):.0f} / {max(tokens)} |")
    print("\n| release | sections | corpus tokens | index |\n| --- | --- | --- | --- |")
    for version, (tokens, n, how, ms) in corpus_tokens.items():
        print(f"| {version} | {n} | {tokens} | {how} in {ms:.0f} ms |")

    index = indexes[args.latency_release]
    questions = [t.q for t in load_facts(REPO / "evals" / f"zig-{args.latency_release}" / "natural.jsonl")]
    long_queries = [s.text for s in index.sections if s.source == NOTES]  # as long as a user's message with code
    print(f"\n## Time retrieval adds per request ({args.latency_release}: search, budget, count)\n")
    ask = functools.partial(retrieve, index, budget=args.budget, k=args.k, count=count)
    forget = getattr(count, "cache_clear", None)
    start = time.perf_counter()
    prepare(index, count)
    print(f"prepare() counted every section in {(time.perf_counter() - start) * 1000:.0f} ms\n")
    for name, queries in (("natural questions", questions), ("release-notes sections as queries", long_queries)):
        chars = statistics.fmean(len(q) for q in queries)
        print(f"- {name} ({len(queries)}, {chars:.0f} characters on average)")
        print(f"  - after prepare(), as the proxy runs: {_ms(_timed(ask, queries, args.repeat))}")
        if forget:  # the worst case: a tokenizer counting every section and line anew for each request
            print(f"  - every count anew (memory cleared before each): {_ms(_timed(ask, queries, 1, forget))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
