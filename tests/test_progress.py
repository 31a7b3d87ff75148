"""ziglora/common/progress.py: a long step that writes to a log (stdout not a terminal) says it is alive."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# One item finishes, then a long wait with nothing finishing, as when one compile takes minutes.
STEP = """
import time
from ziglora.common.progress import Progress
with Progress("validate", total=3, unit="samples") as progress:
    progress.update()
    time.sleep(1.3)
print("done")
"""


def test_lines_come_every_period_into_a_log_even_while_nothing_finishes():
    env = {**os.environ, "PYTHONPATH": str(REPO), "ZIGLORA_PROGRESS_S": "0.3"}
    proc = subprocess.run([sys.executable, "-c", STEP], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "done"
    ticks = lines[:-1]
    assert 3 <= len(ticks) <= 5  # every 0.3 s over 1.3 s
    assert all(line.startswith("validate: 1/3 samples after ") for line in ticks)
    assert proc.stderr == ""  # no terminal bar in a log

