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
from ziglora.evaluate.questions import FactTask, fact_passes, fact_prompt, load_facts

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
        log = f"# prompt\n{prompt}\n\n# answer\n{answer}\n\n# accept /{task.accept}/i: {'PASS' if ok else 'FAIL'}\n"
        return Outcome(label, self.name, task.id, ok, task.accept), log

    def notes(self, outcomes: dict[str, list[Outcome]], base: str | None) -> dict[str, str]:
        """"kept K of N" for every row beside the base model's: of the N questions the base model answers, the K
        this row still answers (what training must not lose, on a retain set such as evals/retain.jsonl)."""
        if base is None or base not in outcomes:
            return {}
        known = {o.task for o in outcomes[base] if o.passed}
        if not known:  # nothing to keep: the base model answers none (a release's new facts asked closed book)
            return {}
        notes = {}
        for label, mine in outcomes.items():
            if label == base or label.endswith(OPEN_BOOK):
                continue
            kept = sum(1 for o in mine if o.task in known and o.passed)
            notes[label] = f"kept {kept} of {len(known)}"
        return notes


SUITE = FactsSuite()
