"""The Makefile as `make -n` prints it: the proof target follows the release it is given, serve puts the
retrieval proxy in front when asked, eval asks the facts in every context."""
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_facts_proof_asks_the_questions_of_the_release_it_trains_on():
    out = subprocess.run(["make", "-s", "facts-proof", "FACTS_DRY=1", "ZIG_VERSION=0.15.2"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert "make train MODEL=smollm2-135m" in out
    evaluations = [line for line in out.splitlines() if "scripts/evaluate.py" in line]
    assert len(evaluations) == 3
    assert all("--zig-version 0.15.2" in line for line in evaluations)
    assert ("--facts evals/zig-0.15.2/natural.jsonl --split test --context none,retrieved,oracle "
            "--retrieval-budget 3000 --retrieval-sections 1") in out
    assert "0.14.0" not in out


def _planned(*args: str) -> list[str]:
    """The commands `make -n` would run, one a line (a command continued over lines joined, its spaces single)."""
    out = subprocess.run(["make", "-s", "-n", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [re.sub(r"[ \t]+", " ", line) for line in out.replace("\\\n", " ").splitlines()]


def test_serve_puts_the_retrieval_proxy_in_front_only_when_asked():
    assert _planned("serve", "ADAPTER=a")[-1].endswith("scripts/serve.py a ")
    assert _planned("serve", "ADAPTER=a", "RETRIEVE=1")[-1].endswith("scripts/serve.py a --retrieve ")
    chosen = _planned("serve", "ADAPTER=a", "RETRIEVE=1", "RETRIEVE_DATA=raw_data/zig-0.15.2")[-1]
    assert chosen.endswith("scripts/serve.py a --retrieve --data raw_data/zig-0.15.2 ")
    small = _planned("serve", "ADAPTER=a", "RETRIEVE=1", "RETRIEVAL_BUDGET=600")[-1]
    assert small.split()[-4:] == ["a", "--retrieve", "--retrieval-budget", "600"]
    one = _planned("serve", "ADAPTER=a", "RETRIEVE=1", "RETRIEVAL_BUDGET=600", "RETRIEVAL_SECTIONS=1")[-1]
    assert one.split()[-6:] == ["a", "--retrieve", "--retrieval-budget", "600", "--retrieval-sections", "1"]
    assert _planned("serve", "ADAPTER=a", "RETRIEVAL_BUDGET=600")[-1].endswith("scripts/serve.py a ")


def test_eval_asks_the_facts_in_every_context():
    [command] = [line for line in _planned("eval") if "scripts/evaluate.py" in line]
    assert "--suites facts,exercism,aider --context none,retrieved,oracle " in command
