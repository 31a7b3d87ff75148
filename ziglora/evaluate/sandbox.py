"""Compile and test model-written Zig, running the program the model wrote inside a sandbox.

`zig test` does two things: the compiler builds a test binary, then that binary runs. The compiler is the
release's own, trusted program; model-written code reaches it only as comptime code, which cannot make system
calls. So the compiler runs outside the sandbox with the shared Zig global cache (a cache inside each run's
temporary directory would rebuild the standard library's part for every exercise, several times the work of a
warm cache), under the time limit. Only the test binary, the model's program, runs inside the sandbox:
- bubblewrap (Debian `bubblewrap`): new user, PID, IPC, UTS and network namespaces (the new network namespace
  has only a loopback of its own: the host's 127.0.0.1 and every other address are unreachable), the whole
  filesystem read-only except the program's own temporary directory, a private /dev and /proc, the environment
  cleared;
- as root, the program runs as `nobody`, so the process limit counts only sandboxed processes and it holds no
  capabilities;
- resource limits (setrlimit): CPU seconds, address space, file size, processes;
- its own process group (session), killed as a whole at the time limit.
Without bubblewrap the limits still apply but there is neither a network nor a filesystem barrier; `isolation()`
says which one ran and the reports carry it.
"""
from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ziglora.release.zig import Zig, files_in_temp_dir, wait_or_kill

NOBODY = 65534


@dataclass(frozen=True)
class Limits:
    cpu_s: int = 60
    memory_bytes: int = 2 << 30  # address space: a Zig debug test binary reserves little; 2 GiB leaves room
    file_bytes: int = 64 << 20
    processes: int = 64


@dataclass(frozen=True)
class RunResult:
    status: str  # passed | failed | compile_error | timeout
    output: str
    seconds: float
    reason: str = ""  # why it failed, in words: "exit status 1", "killed by SIGXCPU (CPU time limit)", ...


@functools.cache
def isolation() -> str:
    """'bubblewrap' when a probe run inside bubblewrap works here, else 'none'."""
    if shutil.which("bwrap") is None:
        return "none"
    with tempfile.TemporaryDirectory(prefix="ziglora-probe-") as tmp:
        proc = _popen(["/bin/true"], Path(tmp), Limits(), use_bwrap=True)
        proc.wait(timeout=60)
        return "bubblewrap" if proc.returncode == 0 else "none"


def _own_process_count() -> int:
    uid = os.getuid()
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                count += 1
        except OSError:
            continue
    return count


def _preexec(limits: Limits, drop_to_nobody: bool, process_allowance: int) -> None:
    os.setsid()  # its own process group: the time limit kills every process it started
    # hard limit a second later: at the soft limit the kernel sends SIGXCPU, which names the cause; at the hard one
    # only SIGKILL
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # RLIMIT_NPROC counts every process of the user, and root is exempt from it: hence the switch to nobody
    resource.setrlimit(resource.RLIMIT_NPROC, (process_allowance, process_allowance))
    if drop_to_nobody:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


def _popen(argv: list[str], workdir: Path, limits: Limits, use_bwrap: bool) -> subprocess.Popen:
    as_root = os.geteuid() == 0
    if as_root:
        os.chown(workdir, NOBODY, NOBODY)
        allowance = limits.processes
    else:
        allowance = _own_process_count() + limits.processes
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "LANG": "C.UTF-8"}
    if use_bwrap:
        wd = str(workdir)
        argv = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--bind", wd, wd,
                "--unshare-all", "--die-with-parent", "--clearenv",
                *(a for k, v in env.items() for a in ("--setenv", k, v)), "--chdir", wd, "--", *argv]
    return subprocess.Popen(
        argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        preexec_fn=functools.partial(_preexec, limits, as_root, allowance),
    )


def _reason(returncode: int, limits: Limits, under_bwrap: bool) -> str:
    if under_bwrap and 128 < returncode < 128 + signal.NSIG:
        returncode = 128 - returncode  # bubblewrap exits with 128 + the signal that killed the program
    if returncode >= 0:
        return f"exit status {returncode}"
    sig = signal.Signals(-returncode)
    why = {signal.SIGXCPU: f" (CPU time limit of {limits.cpu_s} s)",
           signal.SIGXFSZ: f" (file size limit of {limits.file_bytes >> 20} MiB)"}.get(sig, "")
    return f"killed by {sig.name}{why}"


def run_sandboxed(argv: list[str], workdir: Path, time_limit: float, limits: Limits) -> tuple[int | None, str, str]:
    """Run argv in `workdir` inside the sandbox. Returns (exit status or None at the time limit, output, reason)."""
    use_bwrap = isolation() == "bubblewrap"
    code, out = wait_or_kill(_popen(argv, workdir, limits, use_bwrap), time_limit)
    if code is None:
        return None, out.decode("utf-8", "replace"), f"killed: time limit of {time_limit:g} s reached"
    return code, out.decode("utf-8", "replace"), _reason(code, limits, use_bwrap)


def _workdir_parent() -> str | None:
    """Where run folders go: the usual temp dir, unless `nobody` cannot reach it (e.g. TMPDIR inside a private
    folder), then /tmp; bubblewrap, running as nobody, could not mount an unreachable folder."""
    if os.geteuid() != 0:
        return None
    here = Path(tempfile.gettempdir()).resolve()
    if all(p.stat().st_mode & stat.S_IXOTH for p in (here, *here.parents)):
        return None
    return "/tmp"


def run_zig_test(zig: Zig, files: dict[str, str], test_file: str, time_limit: float,
                 limits: Limits = Limits()) -> RunResult:
    """Write `files` into a fresh temporary directory, compile `test_file`'s tests there, run them sandboxed.

    The compiler and the test binary each run in their own process group, killed as a whole when the time
    limit (shared by both) passes: an endless loop in generated code must not outlive the run.
    """
    start = time.monotonic()
    with files_in_temp_dir(files, "ziglora-eval-", _workdir_parent()) as work:
        binary = "test-binary"
        compiled = zig.run(["test", test_file, "--test-no-exec", f"-femit-bin={binary}"], work, time_limit)
        if compiled.timed_out:
            reason = f"killed: time limit of {time_limit:g} s reached"
            return RunResult("timeout", compiled.output + f"\n[{reason}]\n", time.monotonic() - start, reason)
        if compiled.returncode != 0:
            return RunResult("compile_error", compiled.output, time.monotonic() - start, "did not compile")
        left = max(time_limit - (time.monotonic() - start), 1.0)
        code, run_out, reason = run_sandboxed([f"./{binary}"], work, left, limits)
    output = compiled.output + run_out
    if code is None:  # the limit covers compiling and running: name the whole of it
        reason = f"killed: time limit of {time_limit:g} s reached"
        return RunResult("timeout", output + f"\n[{reason}]\n", time.monotonic() - start, reason)
    status = "passed" if code == 0 else "failed"
    if status == "failed":
        output += f"\n[{reason}]\n"
    return RunResult(status, output, time.monotonic() - start, "" if status == "passed" else reason)
