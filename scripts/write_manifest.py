"""Write raw_data/zig-<version>/manifest.json, the hand-off from the data stages to training.

Collects every stage record (stages/*.json, one per data script) into one manifest (docs/DATA.md):
  zig_version, compiler     the release and the compiler that validated it (its `compiler` pin)
  requested_version         what --zig-version said: the release itself, or `latest` (resolved to zig_version)
  pins                      every pin a stage used, with its origin: verified in ziglora/release/versions.py,
                            given by a flag or environment variable, or derived (e.g. "derived: zig-cookbook
                            has no 0.18 branch; falling back to main, …")
  sources                   every downloaded source: name, url, bytes, sha256 (shared ones listed once)
  outputs                   every output file: path, kind, records, bytes, sha256
  validation                the summary of validation.json, when validate_examples.py has run

Every output is checked against its recorded sha256 first: a stage re-run by hand after another (or a
file edited since) would otherwise leave a manifest that lies. On a mismatch nothing is written and
the error names the files and the stage to re-run. Run it last; it reads files only (no network), except
that `--zig-version latest` asks the site's index.json which release that is now.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ziglora.common.io import sha256_file, write_json
from ziglora.data import cli
from ziglora.data.stages import release_dir
from ziglora.release.versions import resolve_pin


class ManifestError(ValueError):
    pass


ERRORS = (ManifestError, *cli.USER_ERRORS)  # reported as one line by cli.run


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


def main(argv: list[str] | None = None) -> int:
    args = cli.release_parser(__doc__).parse_args(argv)
    release_path = release_dir(args.zig_version, args.out_root)
    manifest = build_manifest(args.zig_version, release_path, args.requested_version)
    changed = write_json(release_path / "manifest.json", manifest)
    print(f"manifest {'written' if changed else 'unchanged'}: {len(manifest['outputs'])} outputs, "
          f"{len(manifest['sources'])} sources -> {release_path / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, errors=ERRORS))
