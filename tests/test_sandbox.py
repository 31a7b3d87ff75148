"""ziglora/evaluate/sandbox.py with the real Zig 0.14.0 compiler and bubblewrap: what a model-written test program
may not do (reach a server on 127.0.0.1, write outside its directory, fork without end) fails it, with the reason in its
output. Each escape is also run without the sandbox where that is safe, to show the program really tries."""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from ziglora.evaluate import sandbox
from ziglora.release.zig import ensure_zig

PASSING = 'const std = @import("std");\ntest "ok" {\n    try std.testing.expect(1 + 1 == 2);\n}\n'


@pytest.fixture(scope="module")
def zig():
    return ensure_zig("0.14.0")


@pytest.fixture(autouse=True)
def bubblewrap_present():
    if sandbox.isolation() != "bubblewrap":
        pytest.fail("bubblewrap does not run here: `apt-get install -y bubblewrap` (make test installs it)")


def test_a_passing_program_passes_in_the_sandbox(zig):
    result = sandbox.run_zig_test(zig, {"test_ok.zig": PASSING}, "test_ok.zig", 120)
    assert result.status == "passed", result.output


def test_a_private_temp_dir_still_works(zig, tmp_path, monkeypatch):
    """pytest's tmp_path sits in a folder only root may enter, like a TMPDIR inside a home directory."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = sandbox.run_zig_test(zig, {"test_ok.zig": PASSING}, "test_ok.zig", 120)
    assert result.status == "passed", result.output


def test_a_compile_error_is_told_apart_from_a_failing_test(zig):
    broken = 'test "x" {\n    undefined_name();\n}\n'
    result = sandbox.run_zig_test(zig, {"test_b.zig": broken}, "test_b.zig", 120)
    assert result.status == "compile_error" and "undefined_name" in result.output
    failing = 'const std = @import("std");\ntest "no" {\n    try std.testing.expect(false);\n}\n'
    result = sandbox.run_zig_test(zig, {"test_f.zig": failing}, "test_f.zig", 120)
    assert result.status == "failed" and result.reason == "exit status 1", result.output


@pytest.fixture
def listener():
    """A TCP server on 127.0.0.1 that records whether anyone connected."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.2)
    accepted: list[bool] = []
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                accepted.append(True)
                conn.close()
            except OSError:
                continue

    threading.Thread(target=loop, daemon=True).start()
    yield sock.getsockname()[1], accepted
    stop.set()
    sock.close()


def test_no_network_not_even_loopback(zig, listener, monkeypatch):
    port, accepted = listener
    program = (
        'const std = @import("std");\ntest "connect" {\n'
        f'    const addr = try std.net.Address.parseIp4("127.0.0.1", {port});\n'
        "    const stream = try std.net.tcpConnectToAddress(addr);\n    stream.close();\n}\n"
    )
    result = sandbox.run_zig_test(zig, {"test_net.zig": program}, "test_net.zig", 120)
    assert result.status == "failed", result.output
    # its own namespace has a loopback of its own, where nothing listens
    assert "ConnectionRefused" in result.output and result.reason == "exit status 1"
    assert accepted == []
    # the same program without the sandbox's namespaces does connect
    monkeypatch.setattr(sandbox, "isolation", lambda: "none")
    assert sandbox.run_zig_test(zig, {"test_net.zig": program}, "test_net.zig", 120).status == "passed"
    assert accepted == [True]


def test_no_writes_outside_its_directory(zig, monkeypatch):
    # a world-writable folder: file permissions alone would let it write here, only the read-only mount stops it
    outside = Path(tempfile.mkdtemp(prefix="ziglora-outside-"))
    outside.chmod(0o777)
    target = outside / "escaped.txt"
    program = (
        'const std = @import("std");\ntest "write" {\n'
        f'    const f = try std.fs.createFileAbsolute("{target}", .{{}});\n'
        '    defer f.close();\n    try f.writeAll("out");\n}\n'
    )
    result = sandbox.run_zig_test(zig, {"test_w.zig": program}, "test_w.zig", 120)
    assert result.status == "failed", result.output
    assert "unexpected errno: 30" in result.output  # EROFS: Zig 0.14's createFile has no error name for it
    assert not target.exists()
    monkeypatch.setattr(sandbox, "isolation", lambda: "none")
    assert sandbox.run_zig_test(zig, {"test_w.zig": program}, "test_w.zig", 120).status == "passed"
    assert target.read_text() == "out"
    shutil.rmtree(outside)


def _processes_of(uid: int) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                found.append(entry.name)
        except OSError:
            continue
    return found


def test_a_fork_bomb_hits_the_process_limit(zig):
    program = (
        'const std = @import("std");\ntest "bomb" {\n    var n: usize = 0;\n    while (true) : (n += 1) {\n'
        "        const pid = std.posix.fork() catch |err| {\n"
        '            std.debug.print("fork failed after {d} forks: {s}\\n", .{ n, @errorName(err) });\n'
        "            return err;\n        };\n"
        "        if (pid == 0) {\n            std.time.sleep(60 * std.time.ns_per_s);\n"
        "            std.posix.exit(0);\n        }\n    }\n}\n"
    )
    limits = sandbox.Limits(processes=16)
    result = sandbox.run_zig_test(zig, {"test_bomb.zig": program}, "test_bomb.zig", 120, limits)
    assert result.status == "failed", result.output
    assert "fork failed after" in result.output and "SystemResources" in result.output
    forks = int(result.output.split("fork failed after ")[1].split()[0])
    assert forks <= limits.processes
    # the sleeping children die with the sandbox's PID namespace (the kernel reaps them within moments),
    # long before their 60 s sleep ends
    if os.geteuid() == 0:
        deadline = time.monotonic() + 10
        while _processes_of(sandbox.NOBODY) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_of(sandbox.NOBODY) == []


def test_cpu_and_file_size_limits_kill_with_their_reason(zig):
    spin = (
        'test "spin" {\n    var x: u64 = 0;\n    while (true) {\n        x +%= 1;\n'
        '        @import("std").mem.doNotOptimizeAway(x);\n    }\n}\n'
    )
    result = sandbox.run_zig_test(zig, {"test_s.zig": spin}, "test_s.zig", 120, sandbox.Limits(cpu_s=1))
    assert result.status == "failed" and "SIGXCPU" in result.reason and "CPU time limit" in result.reason
    big = (
        'const std = @import("std");\ntest "big" {\n    const f = try std.fs.cwd().createFile("big", .{});\n'
        "    defer f.close();\n    const chunk = [_]u8{0} ** 4096;\n"
        "    while (true) try f.writeAll(&chunk);\n}\n"
    )
    result = sandbox.run_zig_test(zig, {"test_big.zig": big}, "test_big.zig", 120, sandbox.Limits(file_bytes=1 << 20))
    assert result.status == "failed" and "SIGXFSZ" in result.reason, result.output
