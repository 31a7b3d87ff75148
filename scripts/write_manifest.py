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

import sys

from ziglora.data import cli
from ziglora.data.manifest import ManifestError, write_manifest

ERRORS = (ManifestError, *cli.USER_ERRORS)  # reported as one line by cli.run


def main(argv: list[str] | None = None) -> int:
    args = cli.release_parser(__doc__).parse_args(argv)
    path, manifest, changed = write_manifest(args.zig_version, args.out_root, args.requested_version)
    print(f"manifest {'written' if changed else 'unchanged'}: {len(manifest['outputs'])} outputs, "
          f"{len(manifest['sources'])} sources -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, errors=ERRORS))
