"""Data parallel training: `torchrun` (what `accelerate launch` starts) with two CPU processes over gloo.

The same train_lora.py, unchanged: each process trains on its shard of the packed sequences, gradients are
all-reduced, and only rank 0 writes the adapter and the report. One process that sees several GPUs trains on one.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from test_train_lora import run_args, write_release
from transformers import TrainingArguments
from vllm_server import free_port

from ziglora.train.trainer import one_gpu_per_process

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


def test_one_process_that_sees_two_gpus_trains_on_one_at_the_planned_micro_batch(monkeypatch, tmp_path, capsys):
    # The one test double here: no GPU on this machine, so torch is made to report two, as on a two-GPU host.
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=3)
    assert args.n_gpu == 2 and args.train_batch_size == 6  # what the Trainer would feed the model on cuda:0
    args = one_gpu_per_process(args)
    assert args.n_gpu == 1 and args.train_batch_size == 3
    assert "accelerate launch --num_processes 2 --multi_gpu train_lora.py" in capsys.readouterr().out
