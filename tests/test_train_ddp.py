"""Data parallel training: `torchrun` (what `accelerate launch` starts) with two CPU processes over gloo.

The same train_lora.py, unchanged: each process trains on its shard of the packed sequences, gradients are
all-reduced, and only rank 0 writes the adapter and the report.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

from test_train_lora import run_args, write_release
from vllm_server import free_port

REPO = Path(__file__).resolve().parents[1]


def test_two_gloo_processes_train_and_save_one_adapter(tiny_qwen3_dir, tmp_path):
    rel, prompts = write_release(tmp_path)
    out = tmp_path / "adapter"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
         "--master_port", str(free_port()),
         str(REPO / "train_lora.py"), *run_args(tiny_qwen3_dir, rel, prompts, out, "--max-steps", "3",
                                                 "--eval-share", "0")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "train_report.json").read_text())
    assert report["world_size"] == 2 and report["steps"] == 3
    assert report["adapter_problems"] == []
    # Rank 0 alone saves: one adapter dir, no second partial copy left behind by rank 1.
    assert sorted(p.name for p in tmp_path.iterdir() if "adapter" in p.name) == ["adapter", "adapter-checkpoints"]
    assert proc.stdout.count("adapter in ") == 1
