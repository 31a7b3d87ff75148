"""facts: questions about the release (`{"q", "accept"}` JSONL, never trained on); an answer passes when the
case-insensitive regex `accept` is found in it (ziglora/evaluate/questions.py holds that contract).

--open-book adds a row per model whose prompt carries the release-notes section the question is about: what
pasting the docs into a chat gives, the baseline the adapter has to beat without them.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from ziglora.common.io import read_jsonl
from ziglora.evaluate.harness import Context, EvalInputError, Outcome, RequestRejected, Suite
from ziglora.evaluate.questions import FactTask, fact_passes, fact_prompt, load_facts, passes_on_provenance_alone

OPEN_BOOK = " (open book)"


@dataclass(frozen=True)
class Question:
    task: FactTask
    context: str | None = None  # the section's text (open book), else None


class FactsSuite(Suite):
    name = "facts"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--facts", type=Path, help="facts JSONL (default raw_data/zig-<ver>/qa_heldout.jsonl)")
        parser.add_argument("--split", choices=["dev", "test"],
                            help="only the facts records of this split (their `split` field; default: all)")
        parser.add_argument("--open-book", action="store_true",
                            help="also ask every question that names its release-notes `section` with that "
                                 "section's text in the prompt, reported as the row '<model> (open book)'")

    def load(self, ctx: Context) -> tuple[list[FactTask], int]:
        path = ctx.args.facts or ctx.data_dir / "qa_heldout.jsonl"
        if not path.is_file():
            raise EvalInputError(f"{path}: no facts file; build it with scripts/build_qa.py (make data) or pass "
                                 "--facts")
        self.sections: dict[tuple[str, ...], str] = {}
        if ctx.args.open_book:
            notes = ctx.data_dir / "release_notes_sections.jsonl"
            if not notes.is_file():
                raise EvalInputError(f"{notes}: --open-book needs the release notes' sections (make data)")
            self.sections = {tuple(r["title_path"]): r["text"] for r in read_jsonl(notes)}
        return load_facts(path, ctx.args.split), 0

    def work(self, ctx: Context, models: list[str], tasks: list[FactTask]) -> list[tuple[str, Question]]:
        pairs = [(m, Question(t)) for m in models for t in tasks]
        if ctx.args.open_book:
            books = [Question(t, self.sections[t.section]) for t in tasks if t.section in self.sections]
            pairs += [(m, q) for m in models for q in books]
        return pairs

    def run(self, ctx: Context, model: str, question: Question) -> tuple[Outcome, str]:
        task = question.task
        label = model + (OPEN_BOOK if question.context is not None else "")
        prompt = fact_prompt(task, ctx.zig_version, context=question.context)
        try:
            answer = ctx.ask(model, prompt, reference=task.answer, stub="")
        except RequestRejected as e:
            return Outcome(label, self.name, task.id, False, str(e)), f"# prompt\n{prompt}\n\n# request rejected\n{e}\n"
        ok = fact_passes(task, answer)
        carried = passes_on_provenance_alone(task, answer)
        verdict = "PASS" if ok else "FAIL (the provenance line alone matches)" if carried else "FAIL"
        log = f"# prompt\n{prompt}\n\n# answer\n{answer}\n\n# accept /{task.accept}/i: {verdict}\n"
        return Outcome(label, self.name, task.id, ok, task.accept,
                       metrics={"provenance_only": True} if carried else {}), log

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
        for label, mine in outcomes.items():  # nothing to keep when the base model answers none
            if known and label != base and not label.endswith(OPEN_BOOK):
                kept = sum(1 for o in mine if o.task in known and o.passed)
                notes.setdefault(label, []).insert(0, f"kept {kept} of {len(known)}")
        return {label: "; ".join(parts) for label, parts in notes.items()}


SUITE = FactsSuite()
