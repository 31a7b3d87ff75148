"""Every command README.md and docs/*.md show in a ```bash block runs as written: a make target is run with `make -n`
(what it would do, nothing done), a Python entry point with --help, and every --option the command passes must be
one its --help lists (a flag that was renamed or retired fails here, not in a newcomer's terminal)."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest
from conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)
ASSIGNMENT = re.compile(r"[A-Z_][A-Z0-9_]*=.*")
# Commands the docs may show that are not the project's own (shell set-up around them).
OTHERS = {"cd", "git", "export", "curl", "ls", "cat", "tail", "nvidia-smi", "apt-get", "npm"}
# How a launcher hands the rest of its command line to a Python entry point.
LAUNCHERS = {"accelerate", "torchrun", "python", "python3"}


def commands() -> list[tuple[str, str]]:
    """(page, command) for every command line of every ```bash block, continuation lines joined."""
    found = []
    for page in PAGES:
        for block in BLOCK.findall(page.read_text(encoding="utf-8")):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words:
                    found.append((page.name, shlex.join(words)))
    return found


def entry_point(words: list[str]) -> tuple[list[str], list[str]] | None:
    """(the command that prints the entry point's help, the arguments the docs give it); None for a make target."""
    if words[0] == "make":
        return None
    for i, word in enumerate(words):
        if word.endswith(".py"):
            return [sys.executable, word], words[i + 1:]
        if word == "-m" and i + 1 < len(words):
            return [sys.executable, "-m", words[i + 1]], words[i + 2:]
    raise AssertionError(f"not a make target or Python entry point: {shlex.join(words)}")


@pytest.mark.parametrize(("page", "command"), commands())
def test_the_command_runs_as_written(page, command):
    words = shlex.split(command)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    while words and ASSIGNMENT.fullmatch(words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if words[0] in OTHERS:
        return
    assert words[0] in ("make", *LAUNCHERS), f"{page}: {command}: show it as ```text, or teach this test it"
    target = entry_point(words)
    if target is None:
        done = subprocess.run(["make", "-n", *words[1:]], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, f"{page}: {command}\n{done.stderr[-2000:]}"
        return
    program, args = target
    args = args[:args.index("--")] if "--" in args else args  # after `--`: another program's arguments
    shown = subprocess.run([*program, "--help"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, f"{page}: {command}\n{shown.stderr[-2000:]}"
    flags = {a.split("=")[0] for a in args if a.startswith("--")}
    unknown = sorted(f for f in flags if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", shown.stdout))
    assert not unknown, f"{page}: {command}: {unknown} not in {' '.join(program[1:])} --help"


def test_the_pages_show_commands():
    assert len(commands()) >= 20 and any(c.startswith("make all") for _, c in commands())
