"""The std-library stage: every .zig file of a release's lib/std as one record, from the release's compiler (PyPI
`ziglang`) or a Zig source tree."""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

from ziglora.common.io import decode_utf8, write_jsonl
from ziglora.common.progress import Progress
from ziglora.data.stages import output_entry, record_stage, release_dir
from ziglora.release.versions import resolve_pin
from ziglora.release.zig import ensure_zig

SCRIPT = "build_stdlib"


class NoStdlib(ValueError):
    pass


def stdlib_records(std_dir: Path) -> tuple[list[dict], list[str], dict]:
    """Return (records sorted by path, paths that were not valid UTF-8, {bytes, sha256} of the tree read).

    Paths read "std/mem.zig". The digest covers every path and its bytes, so the manifest can tell
    two std trees apart even though they are not one downloaded file.
    """
    records, not_utf8 = [], []
    digest, size = hashlib.sha256(), 0
    files = sorted((p for p in std_dir.rglob("*.zig") if p.is_file()), key=lambda p: p.relative_to(std_dir).as_posix())
    with Progress("lib/std", total=len(files), unit="files") as progress:
        for file in files:
            path = "std/" + file.relative_to(std_dir).as_posix()
            data = file.read_bytes()
            digest.update(path.encode() + b"\0" + data)
            size += len(data)
            text, valid = decode_utf8(data)
            if not valid:
                not_utf8.append(path)
            records.append({"path": path, "text": text})
            progress.update()
    return records, not_utf8, {"bytes": size, "sha256": digest.hexdigest()}


def std_dir_of(zig_version: str, zig_source: Path | None, compiler: str | None) -> tuple[Path, dict]:
    """Where lib/std lives, and where it came from (url and, for PyPI's, the compiler pin) for the stage record."""
    if zig_source is not None:
        std = Path(zig_source) / "lib" / "std"
        if not std.is_dir():
            raise NoStdlib(f"{std} is not a directory; --zig-source must be a Zig source tree holding lib/std")
        return std, {"url": f"file://{std.resolve()}"}
    pin = resolve_pin(zig_version, "compiler", compiler)
    print(f"Zig {zig_version}: {pin}")
    zig = ensure_zig(zig_version, pin.value)
    return zig.lib_dir / "std", {"url": f"pypi:ziglang=={zig.version}", "pins": {pin.name: pin.record()}}


@dataclass
class StdlibBuild:
    out: Path  # stdlib.jsonl
    std: Path  # the lib/std read
    files: int
    not_utf8: list[str]


def build_stdlib(zig_version: str, out_root: Path, zig_source: Path | None = None,
                 compiler: str | None = None) -> StdlibBuild:
    """Write the release's stdlib.jsonl (sorted by path, so the same tree gives the same bytes) and its stage
    record; `zig_source` and `compiler` as in std_dir_of."""
    std, origin = std_dir_of(zig_version, zig_source, compiler)
    records, not_utf8, tree = stdlib_records(std)
    if not records:
        raise NoStdlib(f"no .zig files under {std}")
    rel_dir = release_dir(zig_version, out_root)
    out = rel_dir / "stdlib.jsonl"
    write_jsonl(out, records)
    for path in not_utf8:
        print(f"warning: {path} is not valid UTF-8; decoded with replacement characters", file=sys.stderr)
    record_stage(
        rel_dir, SCRIPT,
        sources=[{"name": "lib/std", **origin, **tree, "files": len(records), "not_utf8": not_utf8}],
        outputs=[output_entry(rel_dir, out, "stdlib", len(records))],
    )
    return StdlibBuild(out, std, len(records), not_utf8)
