"""The Zig compiler of a given release, from PyPI's `ziglang` wheel (which also carries lib/std).

The release's compiler is the one in this environment when the installed `ziglang` matches;
otherwise it is installed once into the cache ($ZIGLORA_CACHE, default ~/.cache/ziglora) with
pip, so any release PyPI has works without touching the environment. Which `ziglang` version a release
uses is its `compiler` pin (ziglora/release/versions.py: the table, $ZIGLORA_COMPILER, or the release itself).

Validation (scripts/validate_examples.py) and evaluation (ziglora/evaluate/sandbox.py) run Zig the same way: files
written into a fresh temporary directory (`files_in_temp_dir`), then the compiler and what it built run there under a
time limit (`Zig.run`, `run_process`), each in a process group of its own that is killed as a whole when the limit
passes.
"""
from __future__ import annotations

import importlib.metadata
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ziglora.common.io import cache_dir
from ziglora.release.versions import resolve_pin


@dataclass(frozen=True)
class Finished:
    """One process, run to its end or to its time limit."""
    returncode: int | None  # None: killed at the time limit
    output: str  # stdout and stderr interleaved, as a terminal shows them

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def wait_or_kill(proc: subprocess.Popen, timeout: float) -> tuple[int | None, str | bytes]:
    """Collect the output of `proc`, started in a session of its own, and its exit status (None when it ran past
    `timeout` seconds: then its whole process group is killed, so a child it started, such as the test binary
    `zig test` runs, cannot outlive it)."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out
    return proc.returncode, out


def run_process(argv: list[str], cwd: Path, timeout: float, env: dict | None = None) -> Finished:
    """Run argv in `cwd` (a relative argv[0] such as "./prog" is found there) under a time limit."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", start_new_session=True)
    return Finished(*wait_or_kill(proc, timeout))


@contextmanager
def files_in_temp_dir(files: dict[str, str], prefix: str, parent: str | None = None) -> Iterator[Path]:
    """A fresh temporary directory (in `parent`, default the usual temp dir) holding `files` (name -> text; a name
    may have folders), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix, dir=parent) as tmp:
        work = Path(tmp)
        for name, text in files.items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(text, encoding="utf-8")
        yield work


@dataclass(frozen=True)
class Zig:
    version: str
    exe: Path  # the compiler binary
    lib_dir: Path  # holds std/, the standard library source

    def run(self, args: list[str], cwd: Path, timeout: float, env: dict | None = None) -> Finished:
        """`zig <args>` in `cwd` under a time limit (`run_process`)."""
        return run_process([str(self.exe), *args], cwd, timeout, env)


def _from_package_dir(version: str, pkg: Path) -> Zig:
    return Zig(version=version, exe=pkg / "zig", lib_dir=pkg / "lib")


class CompilerNotOnPyPI(RuntimeError):
    pass


def pypi_versions(package: str = "ziglang") -> str:
    """What the package index offers, as pip reports it (pip's own words when it cannot tell)."""
    proc = subprocess.run([sys.executable, "-m", "pip", "index", "versions", package], capture_output=True, text=True)
    listed = [line for line in proc.stdout.splitlines() if line.startswith("Available versions:")]
    return listed[0] if listed else (proc.stderr.strip() or proc.stdout.strip())


def ensure_zig(zig_version: str, compiler: str | None = None) -> Zig:
    """Return the compiler for `zig_version`, installing it if needed. `compiler` (a --compiler flag)
    overrides the release's compiler pin; a version PyPI lacks raises CompilerNotOnPyPI listing what it has."""
    wanted = resolve_pin(zig_version, "compiler", compiler).value
    try:
        if importlib.metadata.version("ziglang") == wanted:
            import ziglang

            return _from_package_dir(wanted, Path(ziglang.__file__).parent)
    except importlib.metadata.PackageNotFoundError:
        pass
    target = cache_dir() / "ziglang" / wanted
    pkg = target / "ziglang"
    if not (pkg / "zig").is_file():
        # pip --target into a temp dir, then rename: an interrupted install never looks complete.
        tmp = target.with_name(f".{wanted}.tmp")
        subprocess.run(["rm", "-rf", str(tmp)], check=True)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp), f"ziglang=={wanted}"],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise CompilerNotOnPyPI(
                f"could not install the compiler for Zig {zig_version} from PyPI (ziglang=={wanted}); "
                f"{pypi_versions()}. Name another with --compiler or $ZIGLORA_COMPILER. pip said: "
                + " ".join(line for line in proc.stderr.splitlines() if line.startswith("ERROR"))
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["rm", "-rf", str(target)], check=True)
        os.replace(tmp, target)
    return _from_package_dir(wanted, pkg)
