"""How well retrieval finds a question's own section: recall@k of the ranked hits, and whether the section is in
the context the budget leaves (what the model is actually shown)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ziglora.retrieve.context import DEFAULT_BUDGET, DEFAULT_K, Context, TokenCounter, estimate_tokens, fit
from ziglora.retrieve.index import Index

RECALL_AT = (1, 3, 5)


@dataclass(frozen=True)
class Found:
    rank: int | None  # 1-based rank of the own section among the top max(RECALL_AT, k) hits, None below
    in_context: bool  # the own section (whole or cut) is in the budgeted context
    context: Context  # what retrieval would send for the query

    @property
    def tokens(self) -> int:
        return self.context.tokens


def find(index: Index, query: str, own_id: str | None, budget: int = DEFAULT_BUDGET, k: int = DEFAULT_K,
         count: TokenCounter = estimate_tokens) -> Found:
    """Where retrieval puts the section `own_id` (None: no own section) for `query`, and the context it would
    send."""
    hits = index.search(query, max(*RECALL_AT, k))
    ids = [h.section.id for h in hits]
    context = fit(index.zig_version, hits[:k], budget, count)
    return Found(ids.index(own_id) + 1 if own_id in ids else None, own_id in context.ids, context)


def recall(found: Sequence[Found]) -> dict[str, float]:
    """{"recall@1": …, "recall@3": …, "recall@5": …, "in_context": …} as shares of the questions (0 when none)."""
    n = len(found) or 1
    shares = {f"recall@{k}": sum(f.rank is not None and f.rank <= k for f in found) / n for k in RECALL_AT}
    shares["in_context"] = sum(f.in_context for f in found) / n
    return shares
