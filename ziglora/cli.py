"""What every data script does at its edge: a common argument set and one way to report user errors."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from ziglora.docs_html import PageStructureError
from ziglora.net import DownloadError
from ziglora.site import ReleaseNotPublished
from ziglora.stage import DEFAULT_ROOT
from ziglora.versions import DEFAULT_VERSION, UnknownRelease

# Errors that mean "the input or the environment is wrong", reported as one line, not a traceback.
USER_ERRORS: tuple[type[Exception], ...] = (UnknownRelease, ReleaseNotPublished, DownloadError, PageStructureError)


def release_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--zig-version", default=DEFAULT_VERSION,
        help=f"Zig release to build for; must be in ziglora/versions.py and the site's index.json "
        f"(default: {DEFAULT_VERSION})",
    )
    parser.add_argument(
        "--out-root", type=Path, default=DEFAULT_ROOT,
        help=f"folder holding one zig-<version>/ folder per release (default: {DEFAULT_ROOT})",
    )
    return parser


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None,
        errors: tuple[type[Exception], ...] = USER_ERRORS) -> int:
    """Run a script's main; known errors become `error: …` on stderr and exit status 2."""
    try:
        return main(argv)
    except errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
