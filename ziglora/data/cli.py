"""What every data script does at its edge: a common argument set and one way to report user errors."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from ziglora.common.net import DownloadError
from ziglora.data.docgen import PageStructureError
from ziglora.data.stages import DEFAULT_ROOT
from ziglora.release.site import ReleaseNotPublished, resolve_version
from ziglora.release.versions import DEFAULT_VERSION, LATEST, UnknownRelease
from ziglora.release.zig import CompilerNotOnPyPI

# Errors that mean "the input or the environment is wrong", reported as one line, not a traceback.
USER_ERRORS: tuple[type[Exception], ...] = (
    UnknownRelease, ReleaseNotPublished, DownloadError, PageStructureError, CompilerNotOnPyPI,
)
ZIG_VERSION_HELP = (
    f"Zig release, as the site's download/index.json names it, or `{LATEST}` for the newest release there "
    f"(default: {DEFAULT_VERSION}). Releases missing from ziglora/release/versions.py get derived pins, printed"
)


class ReleaseParser(argparse.ArgumentParser):
    """Parses --zig-version as asked (`requested_version`) and as resolved (`zig_version`: `latest` becomes
    the newest release the site lists), so every script treats `latest` the same way."""

    def parse_args(self, args=None, namespace=None):  # noqa: ANN001 - argparse's signature
        parsed = super().parse_args(args, namespace)
        parsed.requested_version = parsed.zig_version
        parsed.zig_version = resolve_version(parsed.zig_version)
        return parsed


def release_parser(description: str, downloads: bool = False) -> argparse.ArgumentParser:
    """The arguments every data script takes; `downloads`: it fetches sources, and takes --refresh, which the
    script passes on to its stage function."""
    parser = ReleaseParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zig-version", default=DEFAULT_VERSION, help=ZIG_VERSION_HELP)
    parser.add_argument(
        "--out-root", type=Path, default=DEFAULT_ROOT,
        help=f"folder holding one zig-<version>/ folder per release (default: {DEFAULT_ROOT})",
    )
    if downloads:
        parser.add_argument(
            "--refresh", action="store_true",
            help="download the sources again even when cached (a file whose content did not change is left as "
            "it is); without it, cached files are used and one fetched from another URL is reported",
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
