#!/usr/bin/env bash
# Device side of the GPU memory plans' measurement (ziglora/train/memory.py): on one GPU, the raw Unsloth loop and
# train_lora.py one after the other in the same call under a 22 GiB cap (tokens/s against the raw loop, the kept
# layers' speed and bytes, the loss with and without them), then the full default run's peak. Back-to-back calls to
# one warm machine, as bench/facts_sweep.sh does (nothing there reaches a registry; a call carries at most 64 MiB
# with the tree, and the next call removes what the last one carried). bench/prepare.sh builds .dev/base here.
#   bash bench/memory.sh stash && bash bench/memory.sh start     carry [".dev/base"]: install, then the jobs detached
#   WAIT_S=540 bash bench/memory.sh wait                         until done or WAIT_S; results so far to $OUT
#   DRY_RUN=1 DATA=raw_data/zig-0.14.0 bash bench/memory.sh jobs print what the jobs would run (any machine)
# The jobs, in order; everything before default_run runs alone on the GPU (it is the speed comparison; SPEED=0
# leaves raw to rows out, for a call that measures only the default run):
#   make            the random-weight Qwen3-8B-shape checkpoint
#   raw             raw loop 4096 x 2, 20 measured steps: the baseline (every layer checkpointed)
#   defaults        train_lora.py's defaults (4096 x 1 x 8, kept layers from the cap), 33 steps, no probe
#   defaults_b2     (B2=1) as defaults at 4096 x 2 x 4 (the same tokens per optimizer step): its loss and speed
#                   against defaults'
#   accum1          one micro-step per optimizer step, no general answers
#   defaults_keep0  (KEEP0=1) as defaults with every layer checkpointed: its loss against defaults'
#   accum1_auto     (CEILING=1) accum1 under the auto cap (what the card has free), so every layer kept: the speed
#                   ceiling and the bytes a kept layer holds (against raw's peak, every layer checkpointed)
#   rows            (ROWS=1) bench/decode_rows.py: the same answers with Unsloth's decode cache sized to the answer
#   default_run     --gpu-memory-cap-gib 22 and nothing else (DEFAULT_RUN_EPOCHS=N: --max-epochs N; empty: all;
#                   DEFAULT_RUN_FLAGS: more flags; DEFAULT_RUN=0: not run)
#   teacher         (TEACHER=1) the defaults with --distill facts,general, 3 steps: the teacher pass's time and peak
#   gpu1, gpu2      (DDP=1, nvidia-h200-x2) the defaults under the cap, 33 steps, no probe: on GPU 0, then data
#                   parallel on both through accelerate launch (summarize.py's data_parallel: the speed-up)
# Every job but gpu2 sees GPU 0 alone, as on a one-card machine.
# Results: $OUT/memory.json (bench/summarize.py: tokens/s against the raw loop, peaks per phase, kept layers, the
# loss comparison) and memory-files.tar.gz (every log and report).
set -uo pipefail
export DEV=/tmp/dev W=/tmp/mem MODEL=/tmp/qwen3-8b-random
# nothing is installed there: the wheels go to /tmp/site, and the jobs run from a copy of the repo (`start`)
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
export SPEED=${SPEED:-1} B2=${B2:-1} KEEP0=${KEEP0:-0} CEILING=${CEILING:-1} ROWS=${ROWS:-0} TEACHER=${TEACHER:-1}
export DDP=${DDP:-0} DEFAULT_RUN=${DEFAULT_RUN:-1} CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1  # the host's rule for NVLink
export DEFAULT_RUN_EPOCHS=${DEFAULT_RUN_EPOCHS-1}

run_jobs() {
  DATA=${DATA:-/tmp/data/zig-$(python3 -m ziglora.release.site ${ZIG_VERSION:-})} || return 1
  say() { if [ -n "${DRY_RUN:-}" ]; then echo "$*"; else "$@"; fi; }
  tl() {  # NAME FLAGS...: one train_lora.py run (LAUNCH: its launcher), its log NAME.log, its report run_NAME.json
    local name=$1; shift
    if [ -n "${DRY_RUN:-}" ]; then
      echo "${LAUNCH:-python3} train_lora.py --model $MODEL --data $DATA --output $W/$name $*"; return
    fi
    ${LAUNCH:-python3} train_lora.py --model "$MODEL" --data "$DATA" --output "$W/$name" "$@" > "$W/$name.log" 2>&1
    local rc=$?
    cp "$W/$name/train_report.json" "$W/run_$name.json" 2>/dev/null
    echo "$name rc=$rc $(date +%T)"
  }
  say nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv
  [ -f "$MODEL/config.json" ] || say env TOKENIZER_DIR=$DEV/tok python3 $DEV/raw_qlora_loop.py make "$MODEL"
  echo "make done $(date +%T)"
  if [ "$SPEED" = 1 ]; then speed_jobs; fi
  [ "$DEFAULT_RUN" != 1 ] || tl default_run --gpu-memory-cap-gib 22 ${DEFAULT_RUN_EPOCHS:+--max-epochs "$DEFAULT_RUN_EPOCHS"} \
    ${DEFAULT_RUN_FLAGS:-}
  [ "$TEACHER" != 1 ] || tl teacher --gpu-memory-cap-gib 22 --distill facts,general --max-steps 3 --facts-eval none
  [ "$DDP" != 1 ] || ddp_jobs
}

ddp_jobs() {  # the defaults under the cap on one GPU, then on two (summarize.py: run_gpu2 against run_gpu1)
  local short=(--gpu-memory-cap-gib 22 --warmup-steps-excluded 3 --facts-eval none --logging-steps 1 --max-steps 33)
  tl gpu1 "${short[@]}"
  CUDA_VISIBLE_DEVICES=0,1 LAUNCH="python3 -m accelerate.commands.launch --num_processes 2 --multi_gpu" \
    tl gpu2 "${short[@]}"
}

speed_jobs() {  # raw loop to rows, in run_jobs' shell
  if [ -n "${DRY_RUN:-}" ]; then
    echo "OUT=$W SEQ=4096 BATCH=2 STEPS=20 CAP_GIB=22 python3 $DEV/raw_qlora_loop.py bench $MODEL unsloth"
  else
    OUT=$W SEQ=4096 BATCH=2 STEPS=20 CAP_GIB=22 python3 $DEV/raw_qlora_loop.py bench "$MODEL" unsloth \
      > "$W/raw_4096x2.log" 2>&1
    echo "raw rc=$? $(date +%T)"
  fi
  short=(--gpu-memory-cap-gib 22 --warmup-steps-excluded 3 --facts-eval none --logging-steps 1)
  tl defaults "${short[@]}" --max-steps 33
  [ "$B2" != 1 ] || tl defaults_b2 "${short[@]}" --max-steps 33 --batch-size 2 --grad-accum 4
  tl accum1 "${short[@]}" --grad-accum 1 --max-steps 33 --general-prompts none --eval-share 0
  [ "$KEEP0" != 1 ] || tl defaults_keep0 "${short[@]}" --max-steps 33 --kept-layers 0
  [ "$CEILING" != 1 ] || tl accum1_auto --gpu-memory-cap-gib auto --warmup-steps-excluded 3 --facts-eval none \
    --logging-steps 1 --grad-accum 1 --max-steps 23 --general-prompts none --eval-share 0
  say touch "$W/speed_done"
  if [ "$ROWS" = 1 ] && [ -n "${DRY_RUN:-}" ]; then
    echo "python3 bench/decode_rows.py --model $MODEL --data $DATA"
  elif [ "$ROWS" = 1 ]; then  # exit status 1: an answer differs
    python3 bench/decode_rows.py --model "$MODEL" --data "$DATA" > "$W/rows.log" 2>&1
    echo "rows rc=$? $(date +%T)"
  fi
}

case "${1:-}" in
  stash)
    mkdir -p $DEV && cp -r .dev/* $DEV/ && ls $DEV ;;
  start)
    if [ ! -f /tmp/site/.base ]; then  # once per machine (bench/facts_sweep.sh installs the same)
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        $DEV/base/whl/*.whl && touch /tmp/site/.base || exit 1
      mkdir -p /tmp/data && tar xzf $DEV/base/data.tar.gz -C /tmp/data || exit 1
      cp $DEV/base/raw_qlora_loop.py $DEV/ && mkdir -p $DEV/tok && tar xzf $DEV/base/tok.tar.gz -C $DEV/tok
    fi
    [ ! -f "$W.pid" ] || kill -- -"$(cat "$W.pid")" 2>/dev/null  # a start again: the last one's jobs end
    rm -rf "$W" "$W-repo" && mkdir -p "$W" "$W-repo" || exit 1
    tar cf - --exclude=./.dev . | tar xf - -C "$W-repo" || exit 1  # the next call's tree replaces this one
    (cd "$W-repo" && { PYTHONPATH=/tmp/site:$W-repo setsid bash -c \
      "$(declare -f run_jobs speed_jobs ddp_jobs); run_jobs; touch $W/done" > "$W/jobs.log" 2>&1 < /dev/null & echo $! > "$W.pid"; })
    sleep "${START_WAIT_S:-30}"; tail -n 5 "$W/jobs.log" ;;
  jobs)  # the jobs in this shell (DRY_RUN=1: only what they would run)
    run_jobs ;;
  wait)
    for _ in $(seq 1 $((${WAIT_S:-540} / 5))); do [ -f "$W/done" ] && break; sleep 5; done
    tail -n 12 "$W/jobs.log"
    grep -h "GPU memory cap\|kept layers\|prompts in\|out of memory\|retrying\|\"identical\"" "$W"/*.log 2>/dev/null \
      | head -n 40
    mkdir -p "$OUT"
    (cd "$W-repo" && python3 bench/summarize.py "$W" > "$OUT/memory.json") && cat "$OUT/memory.json"
    tar czf "$OUT/memory-files.tar.gz" -C "$W" --exclude='*.safetensors' --exclude='*-checkpoints' . 2>/dev/null
    ls "$W" ;;
  *) echo "usage: $0 stash|start|wait|jobs" >&2; exit 2 ;;
esac
