"""Downloads that survive flaky networks and never leave half-written files.

- connection errors, timeouts, cut-short bodies and 5xx are retried with exponential backoff;
- 4xx fails at once (retrying a 404 only wastes time);
- the final error names the URL;
- the body goes to a temp file renamed into place only when complete, so a cached file is
  always a whole file, and a cached file means no network I/O at all on re-runs;
- next to each download, `<name>.url` records the URL it came from: a cached file fetched from another
  ZIG_SITE_URL/GITHUB_URL than the one asked for now is reported (and still used: the mirror may be offline);
- `refresh` (the data scripts' --refresh) fetches the file again, still through a temp file; a body identical to
  the cached one leaves the cached file (and its modification time) untouched.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import requests

from ziglora.common.io import atomic_write_text, usual_permissions
from ziglora.common.progress import Progress

TIMEOUT = (10, 60)  # (connect, read) seconds; read is per chunk, not for the whole body
RETRIES = 4
BACKOFF_S = 1.0
# Overrides from the environment, e.g. for tests that simulate a hanging server or for very slow links:
# ZIGLORA_HTTP_TIMEOUT=seconds (both connect and read), ZIGLORA_HTTP_BACKOFF=seconds before the first retry.


def _env_float(name: str) -> float | None:
    value = os.environ.get(name)
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise DownloadError(f"{name}={value!r} is not a number of seconds") from None


class DownloadError(RuntimeError):
    pass


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, requests.HTTPError):
        return exc.response is not None and exc.response.status_code >= 500
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError))


def origin_path(dest: Path) -> Path:
    """Where the URL a download came from is recorded."""
    return Path(dest).with_name(f"{Path(dest).name}.url")


def _cached(url: str, dest: Path) -> dict:
    """The cached file's record; its `url` is where it really came from, which a warning names when it
    differs from `url` (files cached before origins were recorded have none and are taken as they are)."""
    origin_file = origin_path(dest)
    origin = origin_file.read_text(encoding="utf-8").strip() if origin_file.is_file() else url
    if origin != url:
        print(f"warning: {dest} was downloaded from {origin}, not {url}; using the cached copy "
              "(--refresh, or `make data REFRESH=1`, downloads it again)", file=sys.stderr)
    data = dest.read_bytes()
    return {"url": origin, "path": str(dest), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "cached": True}


def download(
    url: str,
    dest: Path,
    *,
    timeout: tuple[float, float] | None = None,
    retries: int = RETRIES,
    backoff_s: float | None = None,
    refresh: bool = False,
) -> dict:
    """Fetch `url` into `dest` unless it is already there and not to be refreshed (`refresh`).
    Returns {url, path, bytes, sha256, cached}.
    `timeout`/`backoff_s` default to $ZIGLORA_HTTP_TIMEOUT/$ZIGLORA_HTTP_BACKOFF, else TIMEOUT/BACKOFF_S."""
    dest = Path(dest)
    if timeout is None:
        env_timeout = _env_float("ZIGLORA_HTTP_TIMEOUT")
        timeout = (env_timeout, env_timeout) if env_timeout is not None else TIMEOUT
    if backoff_s is None:
        env_backoff = _env_float("ZIGLORA_HTTP_BACKOFF")
        backoff_s = env_backoff if env_backoff is not None else BACKOFF_S
    if dest.is_file() and not refresh:
        return _cached(url, dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as f, requests.get(url, stream=True, timeout=timeout) as resp:
                resp.raise_for_status()
                expected = resp.headers.get("Content-Length")
                total = int(expected) if expected is not None and "Content-Encoding" not in resp.headers else None
                with Progress(f"download {url}", total=total, unit="B") as progress:
                    for chunk in resp.iter_content(1 << 16):
                        f.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        progress.update(len(chunk))
                if total is not None and total != size:
                    raise requests.exceptions.ChunkedEncodingError(f"body cut short: {size} of {expected} bytes")
            fetched = {"url": url, "path": str(dest), "bytes": size, "sha256": digest.hexdigest(), "cached": False}
            if dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest() == fetched["sha256"]:
                Path(tmp).unlink()  # refreshed, unchanged: the cached file stays as it was
            else:
                usual_permissions(Path(tmp))
                os.replace(tmp, dest)
            atomic_write_text(origin_path(dest), url + "\n")
            return fetched
        except Exception as exc:  # noqa: BLE001 - classified right below
            Path(tmp).unlink(missing_ok=True)
            if not isinstance(exc, requests.RequestException) or not _retryable(exc):
                raise DownloadError(f"download failed: {url}: {exc}") from exc
            last = exc
    raise DownloadError(f"download failed after {retries + 1} attempts: {url}: {last}") from last
