"""Which releases exist: the site's download/index.json is the authority (the version table in
ziglora/release/versions.py only records which pins were verified; other releases get derived pins).

Every data script that fetches release material calls `published_release` first, so a typo or a
release the site has not published yet fails at once with the list of what does exist, instead of
as a 404 (or worse, an empty corpus) halfway through. `resolve_version` turns `latest` into the
newest release the index lists.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from ziglora.common.net import DownloadError, download
from ziglora.release.versions import DEFAULT_VERSION, LATEST, index_url, parse_version


class ReleaseNotPublished(ValueError):
    pass


def index_versions(index: dict) -> list[str]:
    """Release versions listed in index.json ("master" is a moving build, not a release)."""
    return [key for key in index if key != "master"]


def newest_release(index: dict, url: str) -> str:
    """The highest X.Y.Z key of index.json, by version number (not by the file's order); never master."""
    releases = [v for v in index_versions(index) if parse_version(v) is not None]
    if not releases:
        raise ReleaseNotPublished(f"{url} lists no release (X.Y.Z); keys: {', '.join(index) or 'none'}")
    return max(releases, key=parse_version)


def resolve_version(requested: str) -> str:
    """`latest` -> the newest release in a fresh download of index.json (printed); any other version as is.
    The index is fetched anew on every call: a cached copy would keep an old `latest` forever."""
    if requested != LATEST:
        return requested
    url = index_url()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index.json"
        download(url, path)
        version = newest_release(_read_index(path, url), url)
    print(f"Zig {LATEST} = {version} (the newest release in {url})", file=sys.stderr)
    return version


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


def published_release(zig_version: str, sources: Path, refresh: bool = False) -> dict:
    """Return the source record of index.json, or raise ReleaseNotPublished (listing the releases
    index.json knows) when the site lacks the version. index.json is cached in
    `sources/index.json` (`refresh`: fetched again); a version missing from the cached copy triggers one fresh
    download, since the release may have been published after the copy was made.
    """
    url, dest = index_url(), Path(sources) / "index.json"
    fetched = download(url, dest, refresh=refresh)
    index = _read_index(dest, url)
    if zig_version not in index_versions(index) and fetched["cached"]:
        fetched = download(url, dest, refresh=True)
        index = _read_index(dest, url)
    if zig_version not in index_versions(index):
        raise ReleaseNotPublished(
            f"Zig {zig_version} is not a release on {url}; releases it lists: {', '.join(index_versions(index))}"
        )
    return source_entry("index.json", fetched)


def source_entry(name: str, fetched: dict, **extra: object) -> dict:
    """The manifest's record of one downloaded source: {name, url, bytes, sha256, …extra}."""
    return {"name": name, "url": fetched["url"], "bytes": fetched["bytes"], "sha256": fetched["sha256"], **extra}


if __name__ == "__main__":
    # `python -m ziglora.release.site [VERSION]` prints the release VERSION names (for make and bench/*.sh):
    # `latest` the newest now, nothing the default release
    try:
        print(resolve_version(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_VERSION))
    except (ReleaseNotPublished, DownloadError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
