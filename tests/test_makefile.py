"""The Makefile's proof target follows the release it is given (issue 15): a dry run prints its commands."""
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
    assert "--facts evals/zig-0.15.2/natural.jsonl --split test --context none,retrieved,oracle" in out
    assert "0.14.0" not in out
