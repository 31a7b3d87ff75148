"""The retrieval tokenizer: words and Zig identifiers, kept whole and split, lowercase, English stopwords out.

`@branchHint` gives `@branchhint`, `branchhint`, `branch`, `hint`; `std.heap.DebugAllocator` gives the whole path,
`std`, `heap`, `debugallocator`, `debug`, `alloc`. Whole forms match a question that names the identifier exactly
and stay as written; plain words, and the words an identifier splits into, are stemmed (Snowball English:
"allocators", "Allocator" -> `alloc`), so that a question that describes a feature in its own words finds it.
"""
from __future__ import annotations

import re

import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS

# An identifier (optionally a builtin's @) with its dotted path, or a number with its dots (a version, "5.10").
_WORD = re.compile(r"@?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*|\d+(?:\.\d+)*")
# The words of one name at its case changes, digits kept with the letters before them: "ArrayHashMap" -> Array, Hash,
# Map; "utf8ToUtf16Le" -> utf8, To, Utf16, Le; "x86" stays whole.
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z0-9]+|[A-Z0-9]+")
# English stopwords (bm25s' longer list), less those that are Zig keywords: "for", "if", "while" name features.
STOPWORDS = frozenset(STOPWORDS_EN_PLUS) - {"and", "or", "for", "if", "while"}
_STEMMER = Stemmer.Stemmer("english")


def _parts(name: str) -> list[str]:
    """The words inside one dotted-path component: split at underscores and case changes."""
    return [p for chunk in name.split("_") for p in _CAMEL.findall(chunk)]


def _keep(piece: str, stem: bool) -> list[str]:
    """`piece` lowercased, [] for a stopword or a single character; stemmed when it is a plain word and `stem`."""
    low = piece.lower()
    if len(low) < 2 or low in STOPWORDS:
        return []
    return [_STEMMER.stemWord(low) if stem and low.isalpha() else low]


def word_tokens(word: str) -> list[str]:
    """One matched word's tokens: the whole, each path component, the words of each; plain words stemmed."""
    components = word.lstrip("@").split(".")
    wholes = [word, *components] if word.startswith("@") or len(components) > 1 else [word]
    tokens = []
    for whole in wholes:
        tokens += _keep(whole, stem=_parts(whole) == [whole])  # an identifier with inner structure stays as written
    for component in components:
        parts = _parts(component)
        if len(parts) > 1:
            tokens += [t for part in parts for t in _keep(part, stem=True)]
    return tokens


def tokenize(text: str) -> list[str]:
    """Lowercase tokens of `text` in order, an identifier's whole forms first, then its words."""
    tokens = []
    for match in _WORD.finditer(text):
        word = match.group()
        tokens += _keep(word, stem=False) if word[0].isdigit() else word_tokens(word)
    return tokens
