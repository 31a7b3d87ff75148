"""manifest.json, the hand-off from the data stages to training: written last from the stage records (every output
checked against its recorded sha256 first), and read by training, which trusts it only where every sha256 holds."""
from __future__ import annotations

import json
from pathlib import Path

from ziglora.common.io import read_jsonl, sha256_file, write_json
from ziglora.data.stages import release_dir
from ziglora.release.versions import resolve_pin

REMAKE = "re-run `make data ZIG_VERSION=<ver>` to rebuild it"

# ---------------------------------------------------------------------------------------------- writing


class ManifestError(ValueError):
    """The stage records disagree with each other or with the files: nothing is written."""


def load_stages(release_path: Path) -> list[dict]:
    paths = sorted((release_path / "stages").glob("*.json"))
    if not paths:
        raise ManifestError(f"no stage records in {release_path / 'stages'}; run the data scripts first (make data)")
    stages = []
    for path in paths:
        try:
            stages.append(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path}: not valid JSON ({e}); re-run the script that wrote it") from None
    return stages


def merge_sources(stages: list[dict]) -> list[dict]:
    """Sources in first-seen order; a source two stages share (index.json) is listed once, and must be the
    same bytes in both, or the stages were built from different downloads."""
    merged: dict[str, dict] = {}
    for stage in stages:
        for src in stage["sources"]:
            seen = merged.setdefault(src["name"], src)
            if seen["sha256"] != src["sha256"]:
                raise ManifestError(
                    f"source {src['name']!r} differs between stages ({seen['sha256'][:12]} vs {src['sha256'][:12]}); "
                    f"re-run the stages that read it ({stage['script']} and the one before)"
                )
    return list(merged.values())


def stale_outputs(release_path: Path, stages: list[dict]) -> list[str]:
    """One line per output that is missing or no longer has its recorded sha256."""
    problems = []
    for stage in stages:
        for out in stage["outputs"]:
            path = release_path / out["path"]
            if not path.is_file():
                problems.append(f"{out['path']} is missing (re-run {stage['script']})")
            elif sha256_file(path) != out["sha256"]:
                problems.append(f"{out['path']} changed since {stage['script']} recorded it (re-run {stage['script']})")
    return problems


def merge_pins(sources: list[dict]) -> dict[str, dict]:
    """The pins recorded with the sources ({name: {value, origin}}); two stages that chose differently (a
    flag given to one and not the other) would make a corpus of two releases, so that is an error."""
    pins: dict[str, dict] = {}
    for src in sources:
        for name, pin in src.get("pins", {}).items():
            seen = pins.setdefault(name, pin)
            if seen["value"] != pin["value"]:
                raise ManifestError(f"pin {name} differs between stages ({seen['value']} vs {pin['value']}); "
                                    "re-run the stages with the same flags and environment")
    return pins


def collect_outputs(stages: list[dict]) -> list[dict]:
    outputs: dict[str, dict] = {}
    for stage in stages:
        for out in stage["outputs"]:
            if out["path"] in outputs:
                raise ManifestError(f"{out['path']} is claimed by two stages; one stage, one file")
            outputs[out["path"]] = out
    return list(outputs.values())


def validation_summary(release_path: Path) -> dict | None:
    path = release_path / "validation.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return data.get("summary", data) if isinstance(data, dict) else data


def build_manifest(zig_version: str, release_path: Path, requested_version: str | None = None) -> dict:
    stages = load_stages(release_path)
    problems = stale_outputs(release_path, stages)
    if problems:
        raise ManifestError("outputs do not match their stage records:\n  " + "\n  ".join(problems))
    sources = merge_sources(stages)
    pins = merge_pins(sources)
    # Without a std stage that recorded it, the compiler pin needs no network: table, $ZIGLORA_COMPILER or the release.
    pins.setdefault("compiler", resolve_pin(zig_version, "compiler").record())
    manifest = {
        "zig_version": zig_version,
        "requested_version": requested_version or zig_version,
        "compiler": pins["compiler"]["value"],
        "pins": dict(sorted(pins.items())),
        "sources": sources,
        "outputs": collect_outputs(stages),
    }
    summary = validation_summary(release_path)
    if summary is not None:
        manifest["validation"] = summary
    return manifest


def write_manifest(zig_version: str, out_root: Path, requested_version: str | None = None) -> tuple[Path, dict, bool]:
    """(where it is, the manifest, whether the file changed): an unchanged manifest is not rewritten."""
    release_path = release_dir(zig_version, out_root)
    manifest = build_manifest(zig_version, release_path, requested_version)
    path = release_path / "manifest.json"
    return path, manifest, write_json(path, manifest)


# ---------------------------------------------------------------------------------------------- reading


class DataError(RuntimeError):
    """The release directory is not what the data stage promises (missing, changed or empty files)."""


def load_manifest(release: Path) -> dict:
    """Read `release/manifest.json` and verify every output's sha256; raise DataError saying what to do."""
    path = Path(release) / "manifest.json"
    if not path.is_file():
        raise DataError(f"{path} is missing: {REMAKE}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is not valid JSON ({e.msg}): {REMAKE}") from None
    outputs = manifest.get("outputs") or []
    if not outputs or not manifest.get("zig_version"):
        raise DataError(f"{path} lists no outputs or no zig_version: {REMAKE}")
    for out in outputs:
        file = Path(release) / out["path"]
        if not file.is_file():
            raise DataError(f"{file} is listed in manifest.json but missing: {REMAKE}")
        if sha256_file(file) != out["sha256"]:
            raise DataError(f"{file} does not match its sha256 in manifest.json (changed since `make data`): {REMAKE}")
    return manifest


def outputs_of_kind(release: Path, manifest: dict, kind: str) -> list[tuple[str, list[dict]]]:
    """(path, records) for every manifest output of `kind`, in manifest order."""
    return [(o["path"], list(read_jsonl(Path(release) / o["path"]))) for o in manifest["outputs"] if o["kind"] == kind]
