"""Which releases exist: our version table AND the site's download/index.json must both know a release.

Every data script that fetches release material calls `published_release` first, so a typo or a
release the site has not published yet fails at once with the list of what does exist, instead of
as a 404 (or worse, an empty corpus) halfway through.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ziglora.net import download
from ziglora.versions import Release, index_url, release


class ReleaseNotPublished(ValueError):
    pass


def index_versions(index: dict) -> list[str]:
    """Release versions listed in index.json ("master" is a moving build, not a release)."""
    return [key for key in index if key != "master"]


def _read_index(path: Path, url: str) -> dict:
    try:
        index = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        path.unlink()  # a cached file that is not the index must not be trusted on the next run either
        raise ReleaseNotPublished(f"{url} is not valid JSON ({e}); is ZIG_SITE_URL right?") from None
    if not isinstance(index, dict):
        path.unlink()
        raise ReleaseNotPublished(f"{url} is not a release index (expected a JSON object of releases)")
    return index


def published_release(zig_version: str, sources: Path) -> tuple[Release, dict]:
    """Return (the version table's Release, the source record of index.json) or raise.

    Raises versions.UnknownRelease when ziglora/versions.py lacks the version, ReleaseNotPublished
    (listing the releases index.json knows) when the site lacks it. index.json is cached in
    `sources/index.json`; a version missing from the cached copy triggers one fresh download, since
    the release may have been published after the copy was made.
    """
    rel = release(zig_version)
    url, dest = index_url(), Path(sources) / "index.json"
    fetched = download(url, dest)
    index = _read_index(dest, url)
    if zig_version not in index and fetched["cached"]:
        fresh_path = dest.with_name(".index.json.fresh")
        fresh_path.unlink(missing_ok=True)  # download() would take a leftover for a cached copy
        fresh = download(url, fresh_path)
        os.replace(fresh["path"], dest)
        fetched = {**fresh, "path": str(dest)}
        index = _read_index(dest, url)
    if zig_version not in index:
        raise ReleaseNotPublished(
            f"Zig {zig_version} is not a release on {url}; releases it lists: {', '.join(index_versions(index))}"
        )
    return rel, source_entry("index.json", fetched)


def source_entry(name: str, fetched: dict, **extra: object) -> dict:
    """The manifest's record of one downloaded source: {name, url, bytes, sha256, …extra}."""
    return {"name": name, "url": fetched["url"], "bytes": fetched["bytes"], "sha256": fetched["sha256"], **extra}
