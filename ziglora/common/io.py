"""File helpers every stage uses: atomic writes, checksums, JSONL, UTF-8 decoding, the cache folder.

Why atomic: a stage killed mid-write must never leave a partial file that a later
stage (or a cached re-run) would trust. We write next to the target and rename.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)
# What open() gives a new file under this umask (0644 under the usual 022). mkstemp, and safetensors' writer
# (measured: safetensors 0.x save_file leaves 0600), make private 0600 files instead; nothing we write is secret.
USUAL_FILE_MODE = 0o666 & ~_UMASK
USUAL_DIR_MODE = 0o777 & ~_UMASK  # and mkdtemp's folders are 0700


def usual_permissions(path: Path) -> None:
    """Give `path` (a file, or a directory and everything below it) the mode open()/mkdir() would have given it."""
    path = Path(path)
    for entry in ([path, *path.rglob("*")] if path.is_dir() else [path]):
        if not entry.is_symlink():
            os.chmod(entry, USUAL_DIR_MODE if entry.is_dir() else USUAL_FILE_MODE)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> bool:
    """Write `data` to `path` via a temp file + rename. Returns False (and touches
    nothing) when the file already holds exactly these bytes, so re-runs rewrite nothing."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        usual_permissions(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def atomic_write_text(path: Path, text: str) -> bool:
    return atomic_write_bytes(path, text.encode("utf-8"))


def dumps_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def write_json(path: Path, obj: Any) -> bool:
    return atomic_write_text(path, dumps_json(obj))


def write_jsonl(path: Path, records: Iterable[dict]) -> int:
    """Write one JSON object per line, atomically. Returns the record count."""
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def read_jsonl(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid JSON: {e.msg}") from None


def decode_utf8(data: bytes) -> tuple[str, bool]:
    """(text, was_valid) of a file that should be UTF-8 but, in third-party archives, sometimes is not: invalid bytes
    become U+FFFD so one bad file never stops a stage; the caller counts and reports the files that were not valid."""
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), False


def cache_dir() -> Path:
    """Where ziglora keeps what it can rebuild: Zig compilers, validation results, converted models."""
    return Path(os.environ.get("ZIGLORA_CACHE", Path.home() / ".cache" / "ziglora"))
