"""Progress of a long step, on a terminal and in a log file alike.

On a terminal this is tqdm's bar. When stdout is not a terminal (`make data > log`, CI) tqdm shows nothing,
and a 9-minute validation looked hung; so there a background thread prints one plain line every
`period_s` seconds (default 30, $ZIGLORA_PROGRESS_S overrides), whether or not anything finished since,
so a slow single item (one long compile, one big download) still shows the step is alive.
"""
from __future__ import annotations

import os
import sys
import threading
import time

from tqdm import tqdm

PERIOD_S = 30.0


def _period() -> float:
    value = os.environ.get("ZIGLORA_PROGRESS_S")
    return float(value) if value else PERIOD_S


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """`with Progress("validate", total=n, unit="sample") as p: ... p.update()`; total None: no known end."""

    def __init__(self, desc: str, total: int | None = None, unit: str = "it", period_s: float | None = None):
        self.desc, self.total, self.unit = desc, total, unit
        self.done = 0
        self._start = time.monotonic()
        self._stop = threading.Event()
        self._bar = None
        self._thread = None
        if sys.stdout.isatty():
            self._bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B")
        else:
            self._period = period_s if period_s is not None else _period()
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()

    def line(self) -> str:
        count = f"{self.done}/{self.total}" if self.total is not None else str(self.done)
        return f"{self.desc}: {count} {self.unit} after {_elapsed(time.monotonic() - self._start)}"

    def _tick(self) -> None:
        while not self._stop.wait(self._period):
            print(self.line(), flush=True)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
