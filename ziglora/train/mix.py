"""The training mix: sources repeated to their share of the tokens, the eval split, and the token table that says
what went into training."""
from __future__ import annotations

import random
from collections.abc import Iterable

from ziglora.train.examples import IGNORE, SourceStats


def oversample(examples: list[dict], other_tokens: int, share: float, seed: int) -> list[dict]:
    """Repeat `examples` so they make about `share` of all tokens (never fewer than one copy each).

    Whole copies first, then a seeded sample of the remainder, so the mix is reproducible."""
    if not examples or share <= 0:
        return list(examples)
    own = sum(len(e["input_ids"]) for e in examples)
    target = share / (1 - share) * other_tokens
    copies = max(1.0, target / own)
    out = [e for _ in range(int(copies)) for e in examples]
    extra = round((copies - int(copies)) * len(examples))
    out += random.Random(seed).sample(examples, extra)
    return out


def mix(examples: list[dict], shares: dict[str, float], seed: int) -> list[dict]:
    """The training mix: sources named in `shares` ({source: share of all tokens}) repeated to their share of the
    tokens after oversampling, every other source once. Shares of sources this set lacks are ignored. A source
    that one pass already takes past its share keeps that one pass and counts with the others: the remaining
    shares are then of the real total (solved again until none is over), not of a total that pretends the big
    source had shrunk to its share (which would leave the small sources far below theirs)."""
    shares = {source: share for source, share in shares.items() if any(e["source"] == source for e in examples)}
    own = {source: sum(len(e["input_ids"]) for e in examples if e["source"] == source) for source in shares}
    while True:
        rest_tokens = sum(len(e["input_ids"]) for e in examples if e["source"] not in shares)
        total = rest_tokens / (1 - sum(shares.values()))  # tokens after oversampling
        over = {source for source, share in shares.items() if own[source] >= share * total}
        if not over:
            break
        shares = {source: share for source, share in shares.items() if source not in over}
    rest = [e for e in examples if e["source"] not in shares]
    return rest + [copy for source, share in shares.items()
                   for copy in oversample([e for e in examples if e["source"] == source], total * (1 - share), share,
                                          seed)]


def split_eval(examples: list[dict], eval_share: float, seed: int,
               keep_sources: Iterable[str] = ("prompts", "qa-facts", "general")) -> tuple[list[dict], list[dict]]:
    """Seeded train/eval split. Records of `keep_sources` (the hand-written prompts, the fact Q&A, whose learning
    the facts probe measures, and the base model's general answers) always stay in training."""
    rng = random.Random(seed)
    order = list(range(len(examples)))
    rng.shuffle(order)
    candidates = [i for i in order if examples[i]["source"] not in set(keep_sources)]
    held = set(candidates[: int(len(candidates) * eval_share)])
    train = [e for i, e in enumerate(examples) if i not in held]
    return train, [examples[i] for i in sorted(held)]


def token_table(examples: list[dict], stats: dict[str, SourceStats], max_len: int) -> list[dict]:
    """One row per source of what goes into training (after oversampling): tokens, share, cuts, truncation.

    `truncated` counts tokens of sequences longer than max_len (packing would have to cut them): must be 0."""
    per: dict[str, dict] = {}
    for ex in examples:
        row = per.setdefault(ex["source"], {"sequences": 0, "tokens": 0, "trained_tokens": 0, "truncated": 0})
        row["sequences"] += 1
        row["tokens"] += len(ex["input_ids"])
        row["trained_tokens"] += sum(1 for lab in ex["labels"] if lab != IGNORE)
        row["truncated"] += max(0, len(ex["input_ids"]) - max_len)
    total = sum(r["tokens"] for r in per.values()) or 1
    rows = []
    for source, row in per.items():
        st = stats.get(source, SourceStats())
        rows.append({"source": source, "records": st.records, **row, "share": round(row["tokens"] / total, 4),
                     "split_sections": st.cuts.split_sections, "token_cut": st.cuts.token_cut,
                     "dropped": st.failed_validation + st.too_long})
    return rows


def format_table(rows: list[dict], padding_share: float) -> str:
    cols = ["source", "records", "sequences", "tokens", "trained_tokens", "share", "split_sections", "token_cut",
            "truncated", "dropped"]
    width = {c: max(len(c), 22 if c == "source" else 9) for c in cols}
    lines = [" ".join(f"{c:>{width[c]}}" for c in cols)]
    for r in rows:
        lines.append(" ".join(f"{r[c]:>{width[c]}.2%}" if c == "share" else f"{r[c]:>{width[c]}}" for c in cols))
    totals = {c: sum(r[c] for r in rows) for c in cols[1:] if c != "share"}
    lines.append(" ".join(f"{totals.get(c, 'total' if c == 'source' else '100%'):>{width[c]}}" for c in cols))
    lines.append(f"padding share of the packed batches: {padding_share:.2%}")
    return "\n".join(lines)
