"""The editable install `make setup` does is what lets every entry point import `ziglora` from any directory: no
script puts the repo on sys.path. Installed here, with real pip and setuptools, into a fresh venv that borrows this
environment's packages, so the check does not depend on which checkout the test's own venv was installed from."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import REPO

# Every entry point that imports ziglora (bench/summarize.py imports nothing of ours and takes no --help).
ENTRY_POINTS = [*sorted((REPO / "scripts").glob("*.py")),
                *sorted(p for p in (REPO / "bench").glob("*.py") if p.name != "summarize.py"), REPO / "train_lora.py"]


def test_every_entry_point_runs_from_another_directory_once_installed(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # the dependencies are this environment's (the Makefile installs them from requirements*.txt, then the package)
    here = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "deps.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in here))
    # as the Makefile does, but with this environment's setuptools (no build isolation: nothing is downloaded)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-build-isolation", "-e", str(REPO)], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # conftest's, for the other tests' children
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    where = "import ziglora; print(ziglora.__file__)"
    imported = subprocess.run([python, "-c", where], cwd=elsewhere, env=env, check=True, capture_output=True,
                              text=True).stdout.split()
    assert imported == [str(REPO / "ziglora" / "__init__.py")]
    top_level = "import importlib.metadata as m; print(m.distribution('ziglora').read_text('top_level.txt'))"
    shipped = subprocess.run([python, "-c", top_level], cwd=elsewhere, env=env, check=True, capture_output=True,
                             text=True).stdout.split()
    assert shipped == ["ziglora"]  # no entry point ships as a top-level module

    def help_of(script: Path) -> subprocess.CompletedProcess:
        return subprocess.run([python, str(script), "--help"], cwd=elsewhere, env=env, capture_output=True,
                              text=True, timeout=300)

    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = dict(zip(ENTRY_POINTS, pool.map(help_of, ENTRY_POINTS), strict=True))
    failed = {str(s.relative_to(REPO)): p.stderr[-800:] for s, p in runs.items()
              if p.returncode != 0 or not p.stdout.startswith("usage:")}
    assert not failed, failed
