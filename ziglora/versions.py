"""The one table of everything that changes between Zig releases, and the URLs built from it.

Remote hosts come from the environment so that tests and offline users can point the
pipeline at a mirror: ZIG_SITE_URL (default https://ziglang.org) and GITHUB_URL
(default https://github.com).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_VERSION = "0.14.0"


@dataclass(frozen=True)
class Release:
    version: str
    notes_version: str  # patch releases have no notes of their own: they use their minor's
    cookbook_branch: str  # zigcc/zig-cookbook branch written for this release
    compiler: str  # PyPI `ziglang` version: the compiler for validation/evaluation, and lib/std
    exercism_commit: str | None  # last exercism/zig commit on this release (None: not known)


# Extend this table to support a new release; nothing else in the code names a version.
RELEASES: dict[str, Release] = {
    r.version: r
    for r in [
        Release("0.14.0", "0.14.0", "0.14", "0.14.0", "ef5ecd1ff84bd4d044c1388a2741db1e28010256"),
        Release("0.14.1", "0.14.0", "0.14", "0.14.1", "ef5ecd1ff84bd4d044c1388a2741db1e28010256"),
        Release("0.15.1", "0.15.1", "0.15", "0.15.1", None),
        Release("0.15.2", "0.15.1", "0.15", "0.15.2", None),
        Release("0.16.0", "0.16.0", "main", "0.16.0", None),
    ]
}


class UnknownRelease(ValueError):
    pass


def release(version: str) -> Release:
    try:
        return RELEASES[version]
    except KeyError:
        raise UnknownRelease(
            f"Zig {version} is not in ziglora's version table (ziglora/versions.py); "
            f"supported: {', '.join(RELEASES)}"
        ) from None


def zig_site_url() -> str:
    return os.environ.get("ZIG_SITE_URL", "https://ziglang.org").rstrip("/")


def github_url() -> str:
    return os.environ.get("GITHUB_URL", "https://github.com").rstrip("/")


def index_url() -> str:
    return f"{zig_site_url()}/download/index.json"


def langref_url(rel: Release) -> str:
    return f"{zig_site_url()}/documentation/{rel.version}/"


def release_notes_url(rel: Release) -> str:
    return f"{zig_site_url()}/download/{rel.notes_version}/release-notes.html"


def cookbook_url(rel: Release) -> str:
    return f"{github_url()}/zigcc/zig-cookbook/archive/refs/heads/{rel.cookbook_branch}.tar.gz"


def exercism_url(rel: Release) -> str:
    if rel.exercism_commit is None:
        raise UnknownRelease(f"no exercism/zig commit is recorded for Zig {rel.version} in ziglora/versions.py")
    return f"{github_url()}/exercism/zig/archive/{rel.exercism_commit}.tar.gz"
