"""Where a release's files live, and the per-script record that write_manifest.py collects.

Each data script ends with `record_stage(...)`: the sources it read (as returned by
ziglora.common.net.download) and the outputs it wrote. The manifest is built from these records,
so no script needs to know what the others produce.
"""
from __future__ import annotations

import json
from pathlib import Path

from ziglora.common.io import read_jsonl, sha256_file, write_json

DEFAULT_ROOT = Path("raw_data")


def release_dir(zig_version: str, root: Path = DEFAULT_ROOT) -> Path:
    return Path(root) / f"zig-{zig_version}"


def output_entry(release: Path, path: Path, kind: str, records: int | None) -> dict:
    return {
        "path": str(Path(path).relative_to(release)),
        "kind": kind,
        "records": records,
        "bytes": Path(path).stat().st_size,
        "sha256": sha256_file(path),
    }


def keep_validation(path: Path, records: list[dict]) -> list[dict]:
    """`records` as their builder is about to write them to `path`, each unchanged record with the `validation`
    that validate_examples.py gave it in the file there now. So a builder re-run on unchanged input writes the
    very bytes already there: nothing is rewritten, modification times included, and no stage record changes.
    A changed record goes out without it and is validated afresh."""
    try:
        previous = list(read_jsonl(path)) if Path(path).is_file() else []
    except ValueError:  # not JSONL: it is rewritten whole
        previous = []
    validations = {}
    for record in previous:
        validation = record.pop("validation", None)
        if validation is not None:
            validations[json.dumps(record, sort_keys=True)] = validation
    kept = []
    for record in records:
        validation = validations.get(json.dumps(record, sort_keys=True))
        kept.append(record if validation is None else {**record, "validation": validation})
    return kept


def record_stage(release: Path, script: str, sources: list[dict], outputs: list[dict],
                 stats: dict | None = None) -> Path:
    """Write stages/<script>.json. `sources`: {name, url, bytes, sha256}; `outputs`: output_entry(...) dicts;
    `stats`: the script's own counts, kept for the reader (the manifest does not use them)."""
    path = Path(release) / "stages" / f"{script}.json"
    write_json(path, {"script": script, "sources": sources, "outputs": outputs, **({"stats": stats} if stats else {})})
    return path


def refresh_outputs(release: Path, paths: list[Path]) -> list[str]:
    """After a later stage rewrote files another stage wrote (validate_examples.py adds `validation`
    to each record), update those files' bytes/sha256 in the owning stage's record, so the manifest's
    owner stays the stage that made the file. Returns the scripts whose records changed."""
    wanted = {str(Path(p).relative_to(release)): Path(p) for p in paths}
    changed = []
    for record_path in sorted((Path(release) / "stages").glob("*.json")):
        record = json.loads(record_path.read_text(encoding="utf-8"))
        outputs = record.get("outputs", [])
        hits = [o for o in outputs if o.get("path") in wanted]
        for out in hits:
            fresh = output_entry(release, wanted[out["path"]], out["kind"], out["records"])
            out.update(bytes=fresh["bytes"], sha256=fresh["sha256"])
        if hits and write_json(record_path, record):
            changed.append(record["script"])
    return changed
