"""Everything that changes between Zig releases: the table of verified pins, how pins are derived for
releases the table does not know, and the URLs built from them.

A "pin" is one choice a release's corpus depends on: which release notes it reads, which zig-cookbook
branch, which compiler (PyPI `ziglang`, also the source of lib/std) and which exercism/zig commit.
`resolve_pin` is the one place that answers "which X does Zig <version> use", in this order:
  1. a command-line flag, 2. the pin's environment variable (PIN_ENV), 3. the table (verified),
  4. a derivation from what the release's sites publish (DERIVATIONS below), said so in its origin.
Every script prints the pins it uses, and records them with its source, so manifest.json shows them.

Remote hosts come from the environment so that tests and offline users can point the
pipeline at a mirror: ZIG_SITE_URL (default https://ziglang.org) and GITHUB_URL
(default https://github.com).
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass

import requests

from ziglora.common.net import TIMEOUT, DownloadError

# The release `make` and every script build when none is named. Switching it is this one line.
DEFAULT_VERSION = "0.15.2"
# --zig-version latest: the newest release in the site's download/index.json (ziglora/release/site.py)
LATEST = "latest"


@dataclass(frozen=True)
class Release:
    """The pins verified for one release; None: not verified, so resolve_pin derives it."""
    version: str
    notes_version: str | None  # patch releases have no notes of their own: they use their minor's
    cookbook_branch: str | None  # zigcc/zig-cookbook branch written for this release
    compiler: str | None  # PyPI `ziglang` version: the compiler for validation/evaluation, and lib/std
    exercism_commit: str | None  # last exercism/zig commit on this release


# The record of VERIFIED pins: add a release here once its pins were checked, and say what was checked.
# Releases missing here (or pins left None) still build, with derived pins (see resolve_pin).
# "Compiler and lib/std" below means: ensure_zig installed the PyPI wheel, `zig version` printed the release,
# and a `zig test` using std.testing and std.mem passed (lib/std file counts: 0.15.2 540, 0.16.0 550, 0.17.x 563).
RELEASES: dict[str, Release] = {
    r.version: r
    for r in [
        # Everything: the full pipeline and the facts proof in docs/RESULTS.md ran on it.
        Release("0.14.0", "0.14.0", "0.14", "0.14.0", "ef5ecd1ff84bd4d044c1388a2741db1e28010256"),
        # The 0.14.0 notes, cookbook and exercism pins carry over to the bug-fix release; compiler from PyPI.
        Release("0.14.1", "0.14.0", "0.14", "0.14.1", "ef5ecd1ff84bd4d044c1388a2741db1e28010256"),
        # Notes and language reference parsed from the mirror (0.15.0 was never released: 0.15.1 has the notes);
        # zig-cookbook has a 0.15 branch.
        Release("0.15.1", "0.15.1", "0.15", "0.15.1", None),
        # Notes, reference and cookbook as for 0.15.1; compiler and lib/std; exercism c8940a7 is the track's
        # commit on 0.15.2 (98 exercises).
        Release("0.15.2", "0.15.1", "0.15", "0.15.2", "c8940a7c8eb76b55e18179ee3ccb683ad211f895"),
        # Compiler and lib/std; exercism 3713987 is the commit that moved the track to 0.16.0. Notes and
        # cookbook are derived (no 0.16 pages or cookbook branch were at hand to check).
        Release("0.16.0", None, None, "0.16.0", "3713987b45c32e31996a56221e7b08c8cee7323a"),
        # Compiler and lib/std only; everything else is derived.
        Release("0.17.0", None, None, "0.17.0", None),
        Release("0.17.1", None, None, "0.17.1", None),
    ]
}

# The environment variable that overrides each pin (make passes `make data ZIGLORA_COOKBOOK_BRANCH=main` on).
PIN_ENV = {
    "notes_version": "ZIGLORA_NOTES_VERSION",
    "cookbook_branch": "ZIGLORA_COOKBOOK_BRANCH",
    "compiler": "ZIGLORA_COMPILER",
    "exercism_commit": "ZIGLORA_EXERCISM_REF",
}
COOKBOOK_DEFAULT_BRANCH = "main"
EXERCISM_DEFAULT_BRANCH = "main"


class UnknownRelease(ValueError):
    pass


@dataclass(frozen=True)
class Pin:
    name: str  # a Release field: notes_version, cookbook_branch, compiler, exercism_commit
    value: str
    origin: str  # why this value: "verified in ziglora/release/versions.py", "--flag", "$ENV", "derived: …"

    def __str__(self) -> str:
        return f"{self.name} = {self.value} ({self.origin})"

    def record(self) -> dict:
        """The pin as stage records and manifest.json hold it."""
        return {"value": self.value, "origin": self.origin}


def release(version: str) -> Release:
    """The table's row for `version`, or UnknownRelease (for code that needs a verified release)."""
    try:
        return RELEASES[version]
    except KeyError:
        raise UnknownRelease(
            f"Zig {version} is not in ziglora's version table (ziglora/release/versions.py); "
            f"verified: {', '.join(RELEASES)}"
        ) from None


def parse_version(version: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of a release version like 0.15.2; None for anything else ("master", dev builds)."""
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", version)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def url_exists(url: str) -> bool:
    """True on 200 (after redirects), False on 404; anything else is an error, never a silent fallback:
    a derived pin must come from what the site says, not from a network failure."""
    try:
        resp = requests.head(url, allow_redirects=True, timeout=TIMEOUT)
    except requests.RequestException as e:
        raise DownloadError(f"could not probe {url}: {e}") from None
    if resp.status_code in (200, 404):
        return resp.status_code == 200
    raise DownloadError(f"could not probe {url}: HTTP {resp.status_code}")


def _derive_notes_version(version: str, exists: Callable[[str], bool]) -> Pin:
    """The minor release's notes page that exists: X.Y.0, X.Y.1, … up to the release itself."""
    parsed = parse_version(version)
    if parsed is None:
        raise UnknownRelease(f"{version!r} is not a release version (X.Y.Z); pass --notes-version")
    major, minor, patch = parsed
    tried = []
    for p in range(patch + 1):
        candidate = f"{major}.{minor}.{p}"
        url = release_notes_url(candidate)
        if exists(url):
            return Pin("notes_version", candidate, f"derived: the first {major}.{minor}.x notes page on the site")
        tried.append(url)
    raise UnknownRelease(
        f"no release notes for Zig {major}.{minor}.x on the site (tried {', '.join(tried)}); "
        f"name them with --notes-version or ${PIN_ENV['notes_version']}"
    )


def _derive_cookbook_branch(version: str, exists: Callable[[str], bool]) -> Pin:
    """zig-cookbook names its release branches X.Y; without one, its main branch (which follows Zig master)."""
    parsed = parse_version(version)
    branch = f"{parsed[0]}.{parsed[1]}" if parsed else version
    if parsed is not None and exists(cookbook_url(branch)):
        return Pin("cookbook_branch", branch, f"derived: zig-cookbook has a {branch} branch")
    return Pin("cookbook_branch", COOKBOOK_DEFAULT_BRANCH,
               f"derived: zig-cookbook has no {branch} branch; falling back to {COOKBOOK_DEFAULT_BRANCH}, "
               "which follows Zig master, not this release")


def _derive_compiler(version: str, exists: Callable[[str], bool]) -> Pin:
    """PyPI `ziglang` of the same version (ziglora/release/zig.py says what PyPI has when it lacks it)."""
    return Pin("compiler", version, "derived: PyPI ziglang of the same version")


def _derive_exercism(version: str, exists: Callable[[str], bool]) -> Pin:
    return Pin("exercism_commit", EXERCISM_DEFAULT_BRANCH,
               f"derived: no exercism/zig commit is verified for {version}; using the track's "
               f"{EXERCISM_DEFAULT_BRANCH} branch, which may target another Zig (pass --exercism-ref)")


DERIVATIONS: dict[str, Callable[[str, Callable[[str], bool]], Pin]] = {
    "notes_version": _derive_notes_version,
    "cookbook_branch": _derive_cookbook_branch,
    "compiler": _derive_compiler,
    "exercism_commit": _derive_exercism,
}


def resolve_pin(version: str, name: str, flag: str | None = None,
                exists: Callable[[str], bool] = url_exists) -> Pin:
    """Which `name` (a Release field) Zig `version` uses: the flag, else $PIN_ENV[name], else the table's
    verified pin, else the derivation (which may probe the site or GITHUB_URL with `exists`)."""
    if flag:
        return Pin(name, flag, "given on the command line")
    env = os.environ.get(PIN_ENV[name])
    if env:
        return Pin(name, env, f"from ${PIN_ENV[name]}")
    verified = getattr(RELEASES[version], name) if version in RELEASES else None
    if verified is not None:
        return Pin(name, verified, "verified in ziglora/release/versions.py")
    return DERIVATIONS[name](version, exists)


def zig_site_url() -> str:
    return os.environ.get("ZIG_SITE_URL", "https://ziglang.org").rstrip("/")


def github_url() -> str:
    return os.environ.get("GITHUB_URL", "https://github.com").rstrip("/")


def index_url() -> str:
    return f"{zig_site_url()}/download/index.json"


def langref_url(version: str) -> str:
    return f"{zig_site_url()}/documentation/{version}/"


def release_notes_url(notes_version: str) -> str:
    return f"{zig_site_url()}/download/{notes_version}/release-notes.html"


def cookbook_url(branch: str) -> str:
    return f"{github_url()}/zigcc/zig-cookbook/archive/refs/heads/{branch}.tar.gz"


def exercism_url(ref: str) -> str:
    """A commit's archive, or a branch's (GitHub serves both at archive/<ref>.tar.gz)."""
    return f"{github_url()}/exercism/zig/archive/{ref}.tar.gz"
