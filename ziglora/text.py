"""Decoding source files that should be UTF-8 but, in third-party archives, sometimes are not."""
from __future__ import annotations


def decode_utf8(data: bytes) -> tuple[str, bool]:
    """Return (text, was_valid). Invalid bytes become U+FFFD so one bad file never stops a stage;
    the caller counts and reports the files where `was_valid` is False."""
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), False
