"""facts: questions about the release (`{"q", "accept"}` JSONL, never trained on); an answer passes when the
case-insensitive regex `accept` is found in it (ziglora/evaluate/questions.py holds that contract).

--context asks every question once per context, each a row per model: none (closed book), retrieved (the sections
ziglora/retrieve finds for the question in the release's corpus, cut to a token budget: what the serving proxy
adds) and oracle (the release-notes section the question names: pasting the right docs, the baseline to beat).
Every context reaches the model the same way, pasted before the question, so the rows compare; the report adds
how often retrieval found the question's own section and the tokens each context added per request.
"""
from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ziglora.common.flags import positive_int
from ziglora.common.io import read_jsonl
from ziglora.data.manifest import DataError
from ziglora.evaluate.harness import Context, EvalInputError, Outcome, RequestRejected, Suite
from ziglora.evaluate.questions import FactTask, fact_passes, fact_prompt, load_facts, passes_on_provenance_alone
from ziglora.retrieve.context import DEFAULT_BUDGET, DEFAULT_K, SEPARATOR, model_counter
from ziglora.retrieve.corpus import NOTES, section_id
from ziglora.retrieve.index import load_index
from ziglora.retrieve.measure import RECALL_AT, Found, find, recall

NONE, RETRIEVED, ORACLE = CONTEXTS = ("none", "retrieved", "oracle")


def row_label(model: str, context: str) -> str:
    """The report row of `model` asked with `context`: the model's name alone when closed book."""
    return model if context == NONE else f"{model} ({context})"


def parse_contexts(spec: str) -> list[str]:
    """The contexts of a comma-separated --context, in the order of CONTEXTS."""
    wanted = {c.strip() for c in spec.split(",") if c.strip()}
    unknown = sorted(wanted - set(CONTEXTS))
    if unknown or not wanted:
        raise EvalInputError(f"--context {spec!r}: choose one or more of {', '.join(CONTEXTS)}, comma-separated")
    return [c for c in CONTEXTS if c in wanted]


@dataclass(frozen=True)
class Question:
    task: FactTask
    context: str = NONE
    docs: str | None = None  # the documentation pasted before the question; None closed book
    tokens: int = 0  # what `docs` added to the prompt
    found: Found | None = None  # retrieved: where the hits put the question's own section, and what was sent


class FactsSuite(Suite):
    name = "facts"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--facts", type=Path, help="facts JSONL (default raw_data/zig-<ver>/qa_heldout.jsonl)")
        parser.add_argument("--split", choices=["dev", "test"],
                            help="only the facts records of this split (their `split` field; default: all)")
        parser.add_argument("--context", default=NONE,
                            help="comma-separated, of: none (closed book), retrieved (the sections the retriever "
                                 "finds in raw_data/zig-<ver>, row '<model> (retrieved)'), oracle (the question's "
                                 "own release-notes section, row '<model> (oracle)', for questions that name it) "
                                 "(default %(default)s)")
        parser.add_argument("--retrieval-budget", type=positive_int, default=DEFAULT_BUDGET,
                            help="tokens of retrieved sections per question (default %(default)s, as the serving "
                                 "proxy)")
        parser.add_argument("--retrieval-sections", type=positive_int, default=DEFAULT_K,
                            help="most retrieved sections per question, best first (default %(default)s, as the "
                                 "serving proxy)")

    def settings(self, args: argparse.Namespace) -> dict[str, Any]:
        contexts = parse_contexts(args.context)
        retrieval = {"budget": args.retrieval_budget, "k": args.retrieval_sections}
        return {"context": contexts, **({"retrieval": retrieval} if RETRIEVED in contexts else {})}

    def load(self, ctx: Context) -> tuple[list[FactTask], int]:
        path = ctx.args.facts or ctx.data_dir / "qa_heldout.jsonl"
        if not path.is_file():
            raise EvalInputError(f"{path}: no facts file; build it with scripts/build_qa.py (make data) or pass "
                                 "--facts")
        self.contexts = parse_contexts(ctx.args.context)
        self.sections: dict[tuple[str, ...], str] = {}
        if ORACLE in self.contexts:
            notes = ctx.data_dir / "release_notes_sections.jsonl"
            if not notes.is_file():
                raise EvalInputError(f"{notes}: --context oracle needs the release notes' sections (make data)")
            self.sections = {tuple(r["title_path"]): r["text"] for r in read_jsonl(notes)}
        self.index = None
        self.retrieval = self.settings(ctx.args).get("retrieval")  # what the report's settings say, for its markdown
        self.count, self.counted_by = model_counter(ctx.base_model if ctx.answers == "model" else None)
        if RETRIEVED in self.contexts:
            try:
                self.index = load_index(ctx.data_dir)
            except DataError as e:
                raise EvalInputError(f"--context retrieved needs the release's corpus: {e}") from None
        return load_facts(path, ctx.args.split), 0

    def _question(self, ctx: Context, task: FactTask, context: str) -> Question | None:
        """`task` asked with `context`, or None where that context has nothing for it (oracle without a section)."""
        found = None
        if context == NONE:
            return Question(task)
        if context == ORACLE:
            if task.section not in self.sections:
                return None
            docs = self.sections[task.section]
        else:
            own = section_id(NOTES, task.section) if task.section else None
            found = find(self.index, task.q, own, ctx.args.retrieval_budget, ctx.args.retrieval_sections,
                         self.count)
            docs = SEPARATOR.join(found.context.blocks) or None  # nothing found: asked as is, as the proxy forwards it
        whole = getattr(self.count, "__wrapped__", self.count)  # a prompt is counted once: not worth remembering
        added = docs and whole(fact_prompt(task, ctx.zig_version, docs)) - whole(fact_prompt(task, ctx.zig_version))
        return Question(task, context, docs, added or 0, found)

    def work(self, ctx: Context, models: list[str], tasks: list[FactTask]) -> list[tuple[str, Question]]:
        """Every task in every context, asked of every model; each context's docs are found and counted once."""
        questions = [q for c in self.contexts for t in tasks if (q := self._question(ctx, t, c)) is not None]
        self.asked = questions
        return [(m, q) for c in self.contexts for m in models for q in questions if q.context == c]

    def run(self, ctx: Context, model: str, question: Question) -> tuple[Outcome, str]:
        task = question.task
        label = row_label(model, question.context)
        prompt = fact_prompt(task, ctx.zig_version, context=question.docs)
        metrics: dict[str, Any] = {"context_tokens": question.tokens} if question.docs is not None else {}
        if question.context == RETRIEVED and task.section:
            metrics["own_section_rank"] = question.found.rank
        try:
            answer = ctx.ask(model, prompt, reference=task.answer, stub="")
        except RequestRejected as e:
            return (Outcome(label, self.name, task.id, False, str(e), metrics=metrics),
                    f"# prompt\n{prompt}\n\n# request rejected\n{e}\n")
        ok = fact_passes(task, answer)
        carried = passes_on_provenance_alone(task, answer)
        verdict = "PASS" if ok else "FAIL (the provenance line alone matches)" if carried else "FAIL"
        log = f"# prompt\n{prompt}\n\n# answer\n{answer}\n\n# accept /{task.accept}/i: {verdict}\n"
        if carried:
            metrics["provenance_only"] = True
        return Outcome(label, self.name, task.id, ok, task.accept, metrics=metrics), log

    def notes(self, outcomes: dict[str, list[Outcome]], base: str | None) -> dict[str, str]:
        """Per row: how many answers failed that their provenance line alone would have passed, and beside the base
        model's row "kept K of N": of the N questions the base model answers, the K this row still answers (what
        training must not lose, on a retain set such as evals/retain.jsonl)."""
        notes: dict[str, list[str]] = {}
        for label, mine in outcomes.items():
            carried = sum(1 for o in mine if o.metrics.get("provenance_only"))
            if carried:
                notes.setdefault(label, []).append(f"{carried} more on the provenance line alone")
        known = {o.task for o in outcomes.get(base, []) if o.passed}
        with_docs = tuple(f" ({c})" for c in CONTEXTS if c != NONE)
        for label, mine in outcomes.items():  # nothing to keep when the base model answers none
            if known and label != base and not label.endswith(with_docs):
                kept = sum(1 for o in mine if o.task in known and o.passed)
                notes.setdefault(label, []).insert(0, f"kept {kept} of {len(known)}")
        return {label: "; ".join(parts) for label, parts in notes.items()}

    def details(self, outcomes: list[Outcome]) -> tuple[dict[str, Any], str]:
        """Per context: the questions, the tokens it added per request (mean / max) and, retrieved, how often the
        own section was among the top 1 / 3 / 5 hits and in the context sent; with the corpus's size in tokens."""
        contexts: dict[str, dict[str, Any]] = {}
        for context in self.contexts:
            mine = [q for q in self.asked if q.context == context]
            tokens = [q.tokens for q in mine] or [0]
            row: dict[str, Any] = {"questions": len(mine), "tokens_added_mean": round(statistics.fmean(tokens), 1),
                                   "tokens_added_max": max(tokens)}
            if context == RETRIEVED:
                graded = [q.found for q in mine if q.task.section]
                row |= {"with_own_section": len(graded), **{k: round(v, 4) for k, v in recall(graded).items()}}
            contexts[context] = row
        data: dict[str, Any] = {"contexts": contexts, "tokens_counted_by": self.counted_by}
        if self.index is not None:
            data["retrieval"] = self.retrieval
            data["corpus"] = {"sections": len(self.index.sections),
                              "tokens": sum(self.count(s.text) for s in self.index.sections)}
        return data, _details_markdown(data)


def _details_markdown(data: dict[str, Any]) -> str:
    lines = [f"## facts: what each context added (tokens {data['tokens_counted_by']})", "",
             "| context | questions | tokens added per request, mean / max | own section in the top "
             + " / ".join(str(k) for k in RECALL_AT) + " | own section in the context |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for context, row in data["contexts"].items():
        found = inside = "–"
        if "with_own_section" in row:
            shares = " / ".join(f"{100 * row[f'recall@{k}']:.1f}%" for k in RECALL_AT)
            found, inside = f"{shares} (of {row['with_own_section']})", f"{100 * row['in_context']:.1f}%"
        tokens = f"{row['tokens_added_mean']:,.0f} / {row['tokens_added_max']:,}"
        lines.append(f"| {context} | {row['questions']} | {tokens} | {found} | {inside} |")
    if "corpus" in data:
        lines += ["", f"The retriever searches {data['corpus']['sections']} sections of the release's docs, "
                      f"{data['corpus']['tokens']:,} tokens in all, and sends at most "
                      f"{data['retrieval']['k']} of them, {data['retrieval']['budget']:,} tokens, a question."]
    return "\n".join(lines) + "\n"


SUITE = FactsSuite()
