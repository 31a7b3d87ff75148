"""Generate question/answer pairs from the release notes of one Zig release.

Reads raw_data/zig-<version>/release_notes_sections.jsonl (written by build_release_notes.py) and writes
two kinds of training pairs, under raw_data/zig-<version>/:
  qa_train.jsonl     chat records {"id", "source", "messages": [user, assistant], "section", ...}:
                     - source "qa-facts" (what teaches): per fact, `--phrasings` questions keyed on each of its
                       distinctive terms, answered with the fact. Fields "fact" (its id), "term", "direction".
                     - source "qa" (the template pairs): per section, questions that name the section title,
                       answered with the whole section; kept so that template held-out and recall stay
                       measurable as a secondary measure.
  qa_heldout.jsonl   eval_facts {"q", "accept", "answer", "section"}: per section a fixed share of the template
                     phrasings (chosen with --seed), never trained on, for evaluate.py
  qa_recall.jsonl    eval_facts of the same sections asked in one of their *trained* template phrasings:
                     recall of what was trained, to read beside held-out accuracy (memorized vs. generalized)
and stages/build_qa.json (outputs and counts) for write_manifest.py.

Facts. A template pair teaches a model to recite a section when named by its title, not to answer a question
worded as a user asks it (docs/RESULTS.md). Knowledge becomes extractable when each fact is seen in many
question forms (Allen-Zhu & Li, Physics of LMs 3.1; Ovadia et al. 2023) and in both directions (Berglund et al.,
the Reversal Curse). So a fact is one prose sentence of a section (links and emphasis cleaned) that names a
distinctive term, a table row, a `--help` line, a title that states a change, or a name a before/after code
example ("⬇️") writes differently; the questions never name the section title; a sentence "`X` was renamed to
`Y`" is asked about X (answered with Y) and about Y (answered with X); and the answer states the sentence first,
then where it sits in the notes, then the section's smallest Zig block that uses one of its terms. Nothing is
added that the section does not say.

`accept` is a case-insensitive regex a correct answer should contain: up to three distinctive
identifiers from the section's body (inline code and code blocks: `@branchHint`-like builtins,
dotted names, CamelCase/snake_case identifiers, --flags) that are rare across the notes and absent
from the question itself, since a term the question already names is matched by any answer that
merely repeats the question. Sections without such a term are not held out (all their phrasings are
trained on) and are counted; sections with (almost) no text of their own are skipped.
"""
from __future__ import annotations

import argparse
import sys

from ziglora.data import cli
from ziglora.data.questions.build import DEFAULT_HELDOUT_SHARE, DEFAULT_PHRASINGS, MissingInput, build_qa
from ziglora.data.questions.forms import FACT_FORMS

ERRORS = (*cli.USER_ERRORS, MissingInput)


def share_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}")
    return value


def phrasings_arg(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= len(FACT_FORMS):
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {len(FACT_FORMS)}, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = cli.release_parser(__doc__)
    parser.add_argument("--heldout-share", type=share_arg, default=DEFAULT_HELDOUT_SHARE,
                        help=f"share of each section's phrasings held out for evaluation (default: "
                        f"{DEFAULT_HELDOUT_SHARE})")
    parser.add_argument("--seed", type=int, default=0,
                        help="chooses the held-out phrasings and the fact question forms (default: 0)")
    parser.add_argument("--phrasings", type=phrasings_arg, default=DEFAULT_PHRASINGS,
                        help=f"questions per fact and term, forms drawn with --seed (1..{len(FACT_FORMS)}, "
                        f"default: {DEFAULT_PHRASINGS})")
    args = parser.parse_args(argv)
    built = build_qa(args.zig_version, args.out_root, args.heldout_share, args.seed, args.phrasings)
    print(f"Q&A for Zig {built.notes_version} notes: "
          + ", ".join(f"{k} {v}" for k, v in built.template_stats.items()) + f" -> {built.release}")
    print(f"fact Q&A ({args.phrasings} phrasings per fact and term): "
          + ", ".join(f"{k} {v}" for k, v in built.fact_stats.items()))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, errors=ERRORS))
