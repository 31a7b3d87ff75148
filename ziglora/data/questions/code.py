"""What a section's code blocks show, as questions: the calls a block makes, asked by name, by the call before them
and by what the block is about (the section title's names, the sentence that leads into the block), each answered
with the lines of the block that make the call."""
from __future__ import annotations

import random
import re
from typing import NamedTuple

from ziglora.data.questions.facts import CHANGE_ARROW, MAX_FACT_CODE_CHARS, sentence_terms
from ziglora.data.questions.sections import FENCE, Section, is_distinctive, is_zig_source, term_regex
from ziglora.data.questions.sentences import sentences
from ziglora.evaluate.questions import provenance

# A call as written: `std.fs.File.stdout`, `.writer` (on the call before it), `reader.takeDelimiterExclusive`.
CALL = re.compile(r"(?<![\w@.])(?:@|\.)?[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?=\()")
DECLARED = re.compile(r"\bfn\s+(\w+)\s*\(")  # the example's own functions are not the release's API
# A statement ending a line: how a fragment of Zig no declaration starts (`while (…) {`) is told from a shell session.
STATEMENT_END = re.compile(r"[;{]\s*(?://.*)?$", re.MULTILINE)
# A title that names what the section's code replaces ("Upgrading std.io.getStdOut().writer().print()").
UPGRADE_TITLE = re.compile(r"^(?:upgrading|migrating|porting|moving|switching)\b", re.IGNORECASE)
MAX_BLOCK_CALLS = 6  # asked calls per block: a long example's every call would outweigh the section's prose
LEAD_WORDS = (3, 6)  # how many words in a row of a lead-in a question quotes ("reading until a delimiter")
# {t} is a call (`flush()`, `std.fs.File.stdout()`), {ver} the release.
CALL_FORMS = (
    "How do I call `{t}` in Zig {ver}?",
    "Show me how {t} is used in Zig {ver}.",
    "What does a call to `{t}` look like in Zig {ver}?",
    "Give an example of {t} in Zig {ver} code.",
    "Where does `{t}` go in Zig {ver} code?",
    "How is `{t}` written in a Zig {ver} program?",
    "Zig {ver}: what is the code that uses {t}?",
    "Can you show a Zig {ver} line that calls `{t}`?",
)
# {p} is the call before the one asked for.
NEXT_FORMS = (
    "In Zig {ver}, what do I call after `{p}`?",
    "What comes after {p} in Zig {ver} code?",
    "After `{p}`, which call follows in Zig {ver}?",
    "Zig {ver}: what is the next call once {p} is done?",
    "Which call does Zig {ver} code make after `{p}`?",
)
# {t} is a name the block is about.
TOPIC_FORMS = (
    "How do I use `{t}` in Zig {ver}? Show the code.",
    "What code does Zig {ver} use for {t}?",
    "Which calls go with {t} in Zig {ver}?",
    "Show me Zig {ver} code for `{t}`.",
    "What does working with {t} look like in Zig {ver}?",
)
UPGRADE_FORMS = (
    "How do I upgrade code that uses `{t}` to Zig {ver}?",
    "What do I write instead of {t} in Zig {ver}?",
    "My code calls `{t}`. How does that look in Zig {ver}?",
    "What replaced {t} in Zig {ver} code?",
    "How is {t} done in Zig {ver}?",
)
# {words} are a few words in a row of the sentence that leads into the block ("For instance look at how reading
# until a delimiter works now:"), which says what the block does.
LEAD_FORMS = (
    "Which call does Zig {ver} use for this: {words}?",
    "In Zig {ver} code, {words}: which function is it?",
    "What is the Zig {ver} code for: {words}?",
    "Zig {ver}: which function do I call here: {words}?",
    "Show the Zig {ver} code: {words}.",
)


class Call(NamedTuple):
    name: str  # as asked: `std.fs.File.stdout()`, `flush()`
    line: str  # the block's line that makes it, stripped


class CodeFact(NamedTuple):
    id: str
    block: str
    calls: list[Call]  # the distinctive calls, in the block's order (at most MAX_BLOCK_CALLS)
    before: dict[str, str]  # call name -> the call written just before it in the block
    topics: dict[str, str]  # a name the block is about but does not use -> "old" (an upgrade's) | "about"
    lead: str  # the sentence leading into the block ("… works now:"), or ""
    section: list[str]


def is_code(block: str) -> bool:
    """Zig source, or a fragment of it (a loop, a statement) that calls something: not a shell session or a
    `--help` excerpt."""
    return is_zig_source(block) or bool(CALL.search(block) and STATEMENT_END.search(block))


def block_calls(block: str, prose: str) -> tuple[list[Call], dict[str, str]]:
    """(the distinctive calls, call name -> the call written before it). Distinctive: a builtin or `std.` name
    (is_distinctive), a method whose own name is (`takeDelimiterExclusive`), or one the section's prose names
    (`flush`: "don't forget to flush"). Lines a diff removes (`-`) are old code and left out."""
    declared = set(DECLARED.findall(block))
    found: list[Call] = []
    before: dict[str, str] = {}
    previous = None
    for raw in block.splitlines():
        if raw.startswith("-"):
            continue
        line = raw.lstrip("+").strip()
        for m in CALL.finditer(line):
            written = m.group()
            method = written.lstrip(".").split(".")[-1]
            if written.startswith(("std.", "@")):
                name, askable = written, is_distinctive(written)
            else:
                name = method
                askable = method not in declared and (is_distinctive(method) or re.search(term_regex(method), prose))
            written_call = written.lstrip(".") + "()"
            if askable and not any(c.name == name + "()" for c in found):
                found.append(Call(name + "()", line))
                if previous is not None:
                    before[name + "()"] = previous
            previous = written_call
    return found[:MAX_BLOCK_CALLS], before


def code_facts(section: Section, key: str, replaced: set[str]) -> list[CodeFact]:
    """One fact per code block of the section with a distinctive call, leaving out the block before a change
    arrow ("⬇️": the old code) and blocks that use a name the section says was replaced. Its topics are the
    title's names and those of the sentence leading into the block that the block does not use itself."""
    parts = FENCE.split(section.answer)  # the blocks at odd indices
    prose = FENCE.sub("\n\n", section.answer)
    title_terms = sentence_terms(section.title)
    title_side = "old" if UPGRADE_TITLE.match(section.title) else "about"
    found = []
    lead = ""
    for i in range(1, len(parts), 2):
        block = parts[i]
        if parts[i - 1].strip() != CHANGE_ARROW:  # after an arrow the old block's lead-in still stands
            lead = next((s for s in sentences(parts[i - 1])[-1:] if s.endswith(":")), "")
        old = i + 1 < len(parts) and parts[i + 1].strip() == CHANGE_ARROW
        if old or not is_code(block) or any(re.search(term_regex(t), block) for t in replaced):
            continue
        calls, before = block_calls(block, prose)
        if not calls:
            continue
        unused = [t for t in dict.fromkeys([*title_terms, *sentence_terms(lead)])
                  if not re.search(term_regex(t), block)]
        topics = {t: title_side if t in title_terms else "about" for t in unused}
        found.append(CodeFact(f"{key}/code/{i // 2}", block.rstrip(), calls, before, topics, lead,
                              section.title_path))
    return found


def code_answer(fact: CodeFact, calls: list[Call], version: str, level: int) -> str:
    """The calls asked for, each with the line that makes it, then where they are from, then the block itself when
    it is short enough to be a fact's illustration."""
    shown = "\n".join(f"`{c.name}`: `{c.line}`" for c in calls)
    where = provenance(version, fact.section[-1], level)
    block = f"\n\n```zig\n{fact.block}\n```" if len(fact.block) <= MAX_FACT_CODE_CHARS else ""
    return f"{shown}\n\n{where}{block}"


def code_questions(fact: CodeFact, version: str, phrasings: int, seed: int
                   ) -> list[tuple[str, str | None, str, list[Call]]]:
    """(kind, term, question, the calls that answer it) for one block:
    - code: per call, `phrasings` forms naming it (from the name to how it is written);
    - code-next: per call after another, half as many naming the call before it (the order of the calls);
    - code-topic: per topic, half as many naming it (the upgrade forms for a name the section title says is being
      upgraded from), and half as many naming a few words of the lead-in sentence, answered with all the calls."""
    share = max(1, phrasings // 2)
    out = []
    for call in fact.calls:
        rng = random.Random(f"{seed}/{fact.id}/code/{call.name}")
        out += [("code", call.name, form.format(t=call.name, ver=version), [call])
                for form in rng.sample(CALL_FORMS, min(phrasings, len(CALL_FORMS)))]
        if call.name in fact.before:
            rng = random.Random(f"{seed}/{fact.id}/next/{call.name}")
            out += [("code-next", call.name, form.format(p=fact.before[call.name], ver=version), [call])
                    for form in rng.sample(NEXT_FORMS, min(share, len(NEXT_FORMS)))]
    for topic, side in fact.topics.items():
        rng = random.Random(f"{seed}/{fact.id}/topic/{topic}")
        forms = UPGRADE_FORMS if side == "old" else TOPIC_FORMS
        out += [("code-topic", topic, form.format(t=topic, ver=version), fact.calls)
                for form in rng.sample(forms, min(share, len(forms)))]
    words = fact.lead.rstrip(":").split()
    if len(words) >= LEAD_WORDS[0]:
        rng = random.Random(f"{seed}/{fact.id}/lead")
        for form in rng.sample(LEAD_FORMS, min(share, len(LEAD_FORMS))):
            k = min(len(words), rng.randint(*LEAD_WORDS))
            start = rng.randrange(len(words) - k + 1)
            picked = " ".join(words[start:start + k])
            out.append(("code-topic", None, form.format(words=picked, ver=version), fact.calls))
    return out
