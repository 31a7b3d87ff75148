"""The questions asked of one fact, and their answer: by name in our own forms (both directions of a change), as a
cloze that asks for one of its names or numbers, and by a few of its rarer content words."""
from __future__ import annotations

import random
import re
from collections import Counter

from ziglora.data.questions.facts import COUNT_WORDS, MIN_FACT_KEYWORDS, NUMBER, RENAMED, TRIPLE, Fact, keywords
from ziglora.evaluate.questions import provenance

# Fact questions: {t} is one distinctive term of the fact sentence, {ver} the release. Our own forms, none of
# them naming the section title, so that what is learned is the fact, reachable from the term a user types.
# Some quote the term as code, some do not, some leave the version out: users write all of these.
FACT_FORMS = (
    "What happened to `{t}` in Zig {ver}?",
    "Is `{t}` still available in Zig {ver}?",
    "What is `{t}` in Zig {ver}?",
    "How would I use {t} in a Zig {ver} program?",
    "What does `{t}` do now?",
    "In Zig {ver}, what changed about {t}?",
    "What should I know about `{t}` when moving to Zig {ver}?",
    "Does Zig {ver} change how {t} works?",
    "Tell me about {t} in Zig {ver}.",
    "My code uses `{t}`. What do I need to know for Zig {ver}?",
    "What do the Zig {ver} release notes say about {t}?",
    "Explain `{t}` as of Zig {ver}.",
    "Quick Zig {ver} question: what's the story with {t}?",
    "Is there anything new about `{t}` in Zig {ver}?",
    "How does {t} behave in Zig {ver}?",
    "When would I reach for `{t}` in Zig {ver}?",
    "What's the deal with {t} after the Zig {ver} release?",
    "Where does `{t}` fit in Zig {ver}?",
)
# The two directions of a change (the reversal curse: a model trained on "A became B" does not answer "what
# became B?"): asked about the old name, the answer gives the new one, and the other way round.
OLD_FORMS = (
    "What should I use instead of `{t}` in Zig {ver}?",
    "What replaced {t} in Zig {ver}?",
    "`{t}` no longer compiles with Zig {ver}. What do I write now?",
    "What took the place of `{t}`?",
    "How do I migrate code that uses {t} to Zig {ver}?",
)
NEW_FORMS = (
    "What did `{t}` replace in Zig {ver}?",
    "What was used before {t} existed?",
    "Which older API does `{t}` take the place of?",
    "What did Zig code write before `{t}` came in with Zig {ver}?",
    "Before Zig {ver}, what did people use where they now use {t}?",
)
# Asked as well where the change is a new name (RENAMED): users ask for "what it is called now".
RENAMED_OLD_FORMS = ("What is `{t}` called now in Zig {ver}?", "What is the new name of {t}?")
RENAMED_NEW_FORMS = ("What was `{t}` called before Zig {ver}?", "What was the old name of {t}?")
# Cloze questions (the sentence asked back with one of its names or numbers replaced by "what") start with one of
# these leads, or none; keyword questions name a few of a fact's content words in one of these forms.
CLOZE_LEADS = ("", "", "In Zig {ver}, ", "According to the Zig {ver} release notes, ", "Zig {ver} question: ",
               "Since Zig {ver}, ")
KEYWORD_FORMS = (
    "What do the Zig {ver} release notes say about {kw}?",
    "What changed in Zig {ver} regarding {kw}?",
    "Zig {ver}: what should I know about {kw}?",
    "Is there anything in Zig {ver} about {kw}?",
    "What's the story with {kw} in Zig {ver}?",
    "I read something about {kw} in the Zig {ver} notes. What was it?",
    "Can you explain what Zig {ver} says about {kw}?",
    "How do {kw} fit together in Zig {ver}?",
)
CLAUSE_EDGE = re.compile(r"(?<=[,;:.])\s+(?!`)")  # where a cloze crop may start or end (not inside a name list)


def cloze(sentence: str, blank: str, version: str, rng: random.Random) -> str:
    """The sentence asked back with `blank` replaced by a question word ("… have been renamed to what?"): the
    clause around the blank always, the clauses before and after it at random, and at random a lead naming the
    release. A user's question shares some of a fact's words, never all: the crops teach the fact from parts."""
    quoted = f"`{blank}`"
    at = sentence.find(quoted)
    if at < 0:
        quoted = blank
        at = re.search(rf"(?<![\w@`.-]){re.escape(blank)}(?![\w`])", sentence).start()
    before, after = sentence[:at], sentence[at + len(quoted):]
    lead = rng.choice(CLOZE_LEADS).format(ver=version)
    asked = question_word(blank, rng)
    if not before.strip() and after.startswith(":"):  # "`--watch`: Continuously rebuild …", a list item's name
        return lead + (asked if lead else asked.capitalize()) + f" is this: {after[1:].strip().rstrip(' .')}?"
    counted = (blank.lower() in COUNT_WORDS or NUMBER.fullmatch(blank) and not re.search(r"[a-zA-Z%]", blank)) \
        and re.match(r"\s+[a-z]+s\b", after)
    left, right = CLAUSE_EDGE.split(before), CLAUSE_EDGE.split(after)
    # the fewer clauses the likelier (the smaller of two draws): most crops are a clause or two
    left = left[len(left) - 1 - min(rng.randrange(len(left)), rng.randrange(len(left))):]
    right = right[:1 + min(rng.randrange(len(right)), rng.randrange(len(right)))]
    text = (" ".join(left) + ("how many" if counted else asked) + " ".join(right)).strip()
    text = text.rstrip(" .,;:!") + "?"
    if lead and re.match(r"(?!Zig\b)[A-Z][a-z]*\b(?![.`])", text):  # "The … " continues the lead as "…, the …"
        text = text[0].lower() + text[1:]
    elif not lead:
        text = text[0].upper() + text[1:]
    return lead + text


def question_word(blank: str, rng: random.Random) -> str:
    """"what", or half the time the kind of name asked for where its form says it: users ask "which builtin …",
    "which flag …" (read from the names' own shapes)."""
    kind = "builtin" if blank.startswith("@") else "flag" if blank.startswith("-") else \
        "target" if TRIPLE.fullmatch(blank) else None
    return f"which {kind}" if kind and rng.random() < 0.5 else "what"


def keyword_question(words: list[str], version: str, rng: random.Random) -> str:
    """A question naming two or three of the fact's content words (`words`, its rarest), in the sentence's order,
    in one of KEYWORD_FORMS."""
    k = min(len(words), rng.choice((2, 3)))
    picked = [words[i] for i in sorted(rng.sample(range(len(words)), k))]
    named = ", ".join(picked[:-1]) + " and " + picked[-1]
    return rng.choice(KEYWORD_FORMS).format(kw=named, ver=version)


def fact_answer(fact: Fact, version: str, level: int, asked_for: str | None = None) -> str:
    """The fact first (its key name within the first tokens), where it is from, then its code. A cloze's answer
    (`asked_for`: its blank) names the value before the sentence: answered with the sentence alone, whose words the
    question quotes, a model learns to restate the question and stop where the value was due (docs/RESULTS.md)."""
    where = provenance(version, fact.section[-1], level)
    shown = (f"`{asked_for}`" if f"`{asked_for}`" in fact.sentence else asked_for) if asked_for else ""
    # a list item starts with its name already
    lead = f"{shown}: " if shown and not fact.sentence.startswith(shown) else ""
    answer = f"{lead}{fact.sentence}\n\n{where}"
    return answer + (f"\n\n```zig\n{fact.code}\n```" if fact.code else "")


def fact_forms(direction: str, phrasings: int, rng: random.Random, renamed: bool = False) -> list[str]:
    """`phrasings` distinct forms: for a term on one side of a change up to half from that direction's forms
    (with the rename forms where the change is a new name), so that every phrasing budget asks both ways; the
    rest from the general forms."""
    own = {"old": OLD_FORMS + RENAMED_OLD_FORMS * renamed, "new": NEW_FORMS + RENAMED_NEW_FORMS * renamed
           }.get(direction, ())
    k = min(len(own), (phrasings + 1) // 2)
    return rng.sample(own, k) + rng.sample(FACT_FORMS, phrasings - k)


def distinct(make, n: int) -> list[str]:
    """Up to `n` different questions from `make()` (random crops and forms repeat; a few tries each)."""
    out: list[str] = []
    for _ in range(4 * n):
        if len(out) == n:
            break
        q = make()
        if q not in out:
            out.append(q)
    return out


def rarest(words: list[str], frequency: Counter) -> list[str]:
    """The rarer half of a fact's content words across all facts (at least MIN_FACT_KEYWORDS), in sentence order:
    what tells this fact from the others ("debounce", not "default")."""
    keep = set(sorted(words, key=lambda w: frequency[w.lower()])[:max(MIN_FACT_KEYWORDS, len(words) // 2)])
    return [w for w in words if w in keep]


def fact_questions(fact: Fact, asked: list[str], version: str, phrasings: int, seed: int, frequency: Counter
                   ) -> list[tuple[str, str | None, int, str]]:
    """(kind, term, index, question) for one fact; a cloze's `term` is its blank, the name it asks for. Three kinds,
    because a user reaches a fact from either side:
    - term: `phrasings` forms per distinctive term (from the name to the fact, both directions of a change);
    - cloze: per blank, half as many crops of the sentence asking for it (from the description to the name:
      "What is designed for ReleaseFast with multithreading?" is answered by `SmpAllocator`);
    - keywords: half as many questions naming a few of its rarer content words (what a user remembers of it).
    `frequency`: in how many facts each (lowercased) content word occurs."""
    out = []
    for term in asked:
        rng = random.Random(f"{seed}/{fact.id}/{term}")
        out += [("term", term, i, form.format(t=term, ver=version)) for i, form in enumerate(
            fact_forms(fact.direction[term], phrasings, rng, RENAMED.search(fact.sentence) is not None))]
    share = max(1, phrasings // 2)
    for blank in fact.blanks:
        rng = random.Random(f"{seed}/{fact.id}/cloze/{blank}")
        out += [("cloze", blank, i, q) for i, q in enumerate(distinct(
            lambda blank=blank, rng=rng: cloze(fact.sentence, blank, version, rng), share))]
    words = rarest(keywords(fact.sentence), frequency)
    if len(words) >= MIN_FACT_KEYWORDS:
        rng = random.Random(f"{seed}/{fact.id}/keywords")
        out += [("keywords", None, i, q) for i, q in enumerate(
            distinct(lambda: keyword_question(words, version, rng), share))]
    return out
