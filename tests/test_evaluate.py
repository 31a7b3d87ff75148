"""scripts/evaluate.py with real parts: an exercism-layout archive served over HTTP on 127.0.0.1, the real
Zig 0.14.0 compiler, and a real loopback HTTP server standing in for the model endpoint where the test is
about the client (retries, a server that is down). The exercises are tiny ones written here."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from ziglora.common.io import sha256_file, write_json, write_jsonl
from ziglora.evaluate.exercism_track import exercises_from_members
from ziglora.evaluate.harness import Client, Context, Outcome
from ziglora.evaluate.questions import FactTask, fact_passes, passes_on_provenance_alone, provenance
from ziglora.evaluate.sandbox import run_zig_test
from ziglora.evaluate.standin import StandIn
from ziglora.evaluate.suites.exercism import exercise_prompt, extract_zig
from ziglora.evaluate.suites.facts import SUITE as FACTS_SUITE
from ziglora.evaluate.suites.facts import Question
from ziglora.release.versions import release
from ziglora.release.zig import ensure_zig

REPO = Path(__file__).resolve().parents[1]

COMMIT = release("0.14.0").exercism_commit

# Our own exercises in exercism's layout: {slug: {path inside the exercise folder: text}}.
EXERCISES = {
    "add-one": {
        ".docs/instructions.md": "# Add one\n\nReturn the number after `x`.\n",
        ".docs/instructions.append.md": "# Instructions append\n\nNo overflow checks needed.\n",
        "add_one.zig": 'pub fn addOne(x: i32) i32 {\n    _ = x;\n    @compileError("implement addOne");\n}\n',
        "test_add_one.zig": (
            'const std = @import("std");\nconst add_one = @import("add_one.zig");\n\n'
            'test "adds one" {\n    try std.testing.expectEqual(@as(i32, 3), add_one.addOne(2));\n}\n'
            'test "negative" {\n    try std.testing.expectEqual(@as(i32, 0), add_one.addOne(-1));\n}\n'
        ),
        ".meta/example.zig": "pub fn addOne(x: i32) i32 {\n    return x + 1;\n}\n",
    },
    "vowel-count": {
        ".docs/instructions.md": "# Vowel count\n\nCount the ASCII vowels (a, e, i, o, u, either case) in a string.\n",
        "vowel_count.zig": (
            'pub fn count(s: []const u8) usize {\n    _ = s;\n    @compileError("implement count");\n}\n'
        ),
        "test_vowel_count.zig": (
            'const std = @import("std");\nconst vowel_count = @import("vowel_count.zig");\n\n'
            'test "mixed" {\n    try std.testing.expectEqual(@as(usize, 4), vowel_count.count("hEllo yOu"));\n}\n'
            'test "none" {\n    try std.testing.expectEqual(@as(usize, 0), vowel_count.count("rhythm"));\n}\n'
        ),
        ".meta/example.zig": (
            'const std = @import("std");\n\npub fn count(s: []const u8) usize {\n    var n: usize = 0;\n'
            '    for (s) |c| {\n        if (std.mem.indexOfScalar(u8, "aeiou", std.ascii.toLower(c)) != null) n += 1;\n'
            "    }\n    return n;\n}\n"
        ),
    },
    # no .meta/example.zig: counted as skipped, never as a task
    "half-done": {
        ".docs/instructions.md": "# Half done\n",
        "half_done.zig": "pub fn f() void {}\n",
        "test_half_done.zig": 'const h = @import("half_done.zig");\ntest "f" {\n    h.f();\n}\n',
    },
}

FACTS = [
    {"q": "Which keyword declares a compile-time known parameter?", "accept": r"\bcomptime\b",
     "answer": "The `comptime` keyword.", "section": ["comptime"], "split": "dev"},
    {"q": "What does `defer` do?", "accept": r"end of (the )?(enclosing )?(block|scope)",
     "answer": "It runs an expression at the end of the enclosing block.", "section": ["defer"], "split": "test"},
    # no section: asked closed-book only
    {"q": "Which file does `zig build` read?", "accept": r"build\.zig", "answer": "build.zig", "split": "test"},
]
# release_notes_sections.jsonl records (docs/DATA.md doc_sections) for --context; written here in our own words
SECTIONS = [
    {"source": "release-notes", "title_path": ["comptime"], "level": 2, "anchor": "comptime",
     "text": "## comptime\n\nMarks a parameter as known while compiling.", "code_blocks": []},
    {"source": "release-notes", "title_path": ["defer"], "level": 2, "anchor": "defer",
     "text": "## defer\n\nRuns its expression when the block is left.", "code_blocks": []},
]


def make_exercism_archive(path: Path, commit: str, exercises: dict[str, dict[str, str]] = EXERCISES) -> None:
    """A GitHub-style commit archive: one top folder `zig-<commit>/`, then the exercism layout."""
    with tarfile.open(path, "w:gz") as tar:
        for slug, files in exercises.items():
            for name, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(f"zig-{commit}/exercises/practice/{slug}/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        readme = b"# fixture track\n"
        info = tarfile.TarInfo(f"zig-{commit}/README.md")
        info.size = len(readme)
        tar.addfile(info, io.BytesIO(readme))


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def github_mirror(tmp_path_factory):
    """A GITHUB_URL serving exercism/zig/archive/<commit>.tar.gz over real HTTP on 127.0.0.1."""
    root = tmp_path_factory.mktemp("github")
    target = root / "exercism" / "zig" / "archive"
    target.mkdir(parents=True)
    make_exercism_archive(target / f"{COMMIT}.tar.gz", COMMIT)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="session")
def facts_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("facts") / "facts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in FACTS))
    return path


def run_evaluate(cwd: Path, env_extra: dict, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, str(REPO / "scripts" / "evaluate.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


# ---------------------------------------------------------------- pure parsing


def test_extract_zig_takes_the_longest_zig_block_and_ignores_thinking():
    answer = ("<think>```zig\nnot this, it is thinking and long long long\n```</think>Here:\n"
              "```zig\npub fn a() void {}\npub fn b() void {}\n```\nUse it as:\n```zig\na();\n```\n")
    assert extract_zig(answer) == "pub fn a() void {}\npub fn b() void {}\n"
    assert extract_zig("```\nconst x = 1;\n```") == "const x = 1;\n"
    assert extract_zig("no code at all") is None


def test_fact_regex_is_case_insensitive_search():
    task = FactTask("q1", "?", r"\bcomptime\b", "")
    assert fact_passes(task, "Use COMPTIME here.")
    assert not fact_passes(task, "use comptimes")
    assert not fact_passes(task, "<think>comptime</think> no idea")


def test_the_provenance_line_is_not_judged_and_what_it_alone_carried_is_counted():
    """A trained answer ends by naming its section; a title holding the accepted word must not pass an answer that
    states another fact (the line as build_qa writes it, for a section and for the introduction)."""
    task = FactTask("q1", "Which function was added to Allocator.VTable?", r"\bremap\b", "")
    wrong = ("`std.heap.VTable.add(value, time)`.\n\n"
             + provenance("0.14.0", "Allocator API Changes (remap)", 3))
    assert not fact_passes(task, wrong) and passes_on_provenance_alone(task, wrong)
    right = "`remap` was added to Allocator.VTable.\n\n" + provenance("0.14.0", "Allocator API Changes (remap)", 3)
    assert fact_passes(task, right) and not passes_on_provenance_alone(task, right)
    intro = FactTask("q2", "Who funds Zig?", r"introduction", "")
    assert passes_on_provenance_alone(intro, "Nobody.\n" + provenance("0.14.0", "0.14.0 Release Notes", 1))
    report = {label: [Outcome(label, "facts", str(i), ok, "", metrics={"provenance_only": True} if carried else {})
                      for i, (ok, carried) in enumerate(rows)]
              for label, rows in {"base": [(True, False), (False, False)],
                                  "ziglora": [(True, False), (False, True)]}.items()}
    assert FACTS_SUITE.notes(report, "base") == {"ziglora": "kept 1 of 1; 1 more on the provenance line alone"}


def test_exercises_grouped_by_folder_with_underscored_files():
    members = {f"exercises/practice/{slug}/{name}": text.encode()
               for slug, files in EXERCISES.items() for name, text in files.items()}
    complete, incomplete = exercises_from_members(members)
    assert [e.slug for e in complete] == ["add-one", "vowel-count"]
    assert complete[0].module == "add_one" and "addOne" in complete[0].example
    prompt = exercise_prompt(complete[0], "0.14.0")
    assert "Return the number after `x`." in prompt and "No overflow checks needed." in prompt
    assert "```zig\npub fn addOne(x: i32) i32 {\n    _ = x;" in prompt
    assert incomplete == ["half-done"]


# ---------------------------------------------------------------- the harness against itself


@pytest.mark.parametrize("answers, expect_passed", [("reference", 2), ("stub", 0)])
def test_harness_reference_passes_and_stub_fails(tmp_path, github_mirror, facts_file, answers, expect_passed):
    out = tmp_path / "report"
    proc = run_evaluate(tmp_path, {"GITHUB_URL": github_mirror}, "--answers", answers, "--facts", str(facts_file),
                        "--suites", "facts,exercism", "--zig-version", "0.14.0", "--output", str(out), "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "eval_report.json").read_text())
    facts_passed = 3 if answers == "reference" else 0
    rows = {(r["suite"], r["model"], r["pass@1"], r["pass@2"], r["total"], r["skipped"]) for r in report["results"]}
    assert rows == {("facts", answers, facts_passed, None, 3, 0), ("exercism", answers, expect_passed, None, 2, 1)}
    assert report["sandbox"] == "bubblewrap"
    # the archive was fetched through GITHUB_URL into the release's sources, and each task left a log
    assert (tmp_path / "raw_data" / "zig-0.14.0" / "sources" / f"exercism-zig-{COMMIT}.tar.gz").is_file()
    log = (out / "logs" / answers / "exercism" / "vowel-count.log").read_text()
    assert "zig test test_vowel_count.zig: " + ("passed" if answers == "reference" else "compile_error") in log
    if answers == "stub":
        assert "implement count" in log  # the stub's @compileError is what failed it
    md = (out / "eval_report.md").read_text()
    assert "| exercism |" in md and "ran in a bubblewrap sandbox" in md
    assert (out / "eval_report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_endless_answer_is_killed_at_the_time_limit(monkeypatch):
    zig = ensure_zig("0.14.0")
    ex = EXERCISES["add-one"]
    files = {"test_add_one.zig": ex["test_add_one.zig"], "add_one.zig": ex[".meta/example.zig"]}
    assert run_zig_test(zig, files, "test_add_one.zig", 300).status == "passed"  # compiles here
    # every temp dir the harness makes lands in a folder of this test's, so its processes are findable by their
    # paths; one the sandbox's user (nobody) can reach, as the usual temp dir
    tmp_path = Path(tempfile.mkdtemp(prefix="ziglora-endless-"))
    tmp_path.chmod(0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    files["add_one.zig"] = "pub fn addOne(x: i32) i32 {\n    _ = x;\n    while (true) {}\n}\n"
    result = run_zig_test(zig, files, "test_add_one.zig", 20)
    assert result.status == "timeout", result.output
    assert "killed: time limit of 20 s" in result.output
    # the test binary lives in zig's global cache but runs in the temp dir: find survivors by their cwd
    left = []
    for proc in Path("/proc").iterdir():
        try:
            if str(tmp_path) in os.readlink(proc / "cwd"):
                left.append(proc.name)
        except OSError:
            continue
    assert left == [], "the test binary outlived the time limit"
    shutil.rmtree(tmp_path)


# ---------------------------------------------------------------- the client


class _Flaky(BaseHTTPRequestHandler):
    """/v1/models lists 'm'; the first chat request gets a 503, later ones an answer; model 'too-long' a 400."""

    calls: list[dict] = []

    def do_GET(self):
        self._send(200, {"object": "list", "data": [{"id": "m", "object": "model"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append(body)
        if body["model"] == "too-long":
            self._send(400, {"error": "This model's maximum context length is 2048 tokens"})
        elif len(type(self).calls) == 1:
            self._send(503, {"error": "warming up"})
        else:
            self._send(200, {"choices": [{"message": {"role": "assistant", "content": "use comptime"}}]})

    def _send(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_client_retries_5xx_and_turns_thinking_off():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = Client(f"http://127.0.0.1:{server.server_address[1]}/v1", timeout=30, max_tokens=64,
                                 backoff_s=0.01)
        assert client.models() == ["m"]
        assert client.chat("m", "hi") == "use comptime"
    finally:
        server.shutdown()
    assert len(_Flaky.calls) == 2
    assert _Flaky.calls[1]["chat_template_kwargs"] == {"enable_thinking": False}
    assert _Flaky.calls[1]["temperature"] == 0.0 and _Flaky.calls[1]["model"] == "m"


def test_a_rejected_request_fails_its_task_only():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = Client(f"http://127.0.0.1:{server.server_address[1]}/v1", timeout=30, max_tokens=64,
                                 backoff_s=0.01)
        ctx = Context(args=SimpleNamespace(), zig_version="0.14.0", data_dir=Path("."),
                      answers="model", client=client, logs_dir=Path("."), compile_slots=threading.Semaphore(1))
        question = Question(FactTask("q1", "What is comptime?", "comptime", ""))
        outcome, log = FACTS_SUITE.run(ctx, "too-long", question)
    finally:
        server.shutdown()
    assert not outcome.passed and "HTTP 400" in outcome.detail
    assert "maximum context length" in log


def test_endpoint_down_is_a_clear_error(tmp_path, facts_file):
    with ThreadingHTTPServer(("127.0.0.1", 0), _Flaky) as probe:
        port = probe.server_address[1]  # a port that was free; nothing listens once closed
    proc = run_evaluate(tmp_path, {}, "--base-url", f"http://127.0.0.1:{port}/v1", "--suites", "facts",
                        "--facts", str(facts_file), "--output", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert "no OpenAI-compatible server answers" in proc.stderr and "make serve" in proc.stderr
    assert not (tmp_path / "r" / "eval_report.json").exists()


def test_bad_input_is_a_one_line_error_and_exit_status_2(tmp_path, facts_file):
    unknown = run_evaluate(tmp_path, {}, "--answers", "reference", "--suites", "facts,quiz",
                           "--output", str(tmp_path / "r"))
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines() == ["error: unknown suite(s) ['quiz']: choose from facts, exercism, aider"]
    no_facts = run_evaluate(tmp_path, {}, "--answers", "reference", "--suites", "facts", "--zig-version", "0.14.0",
                            "--output", str(tmp_path / "r"))
    assert no_facts.returncode == 2
    assert no_facts.stderr.splitlines() == ["error: raw_data/zig-0.14.0/qa_heldout.jsonl: no facts file; build it with "
                                            "scripts/build_qa.py (make data) or pass --facts"]
    with StandIn(lambda model, messages: "", ["base", "lora"], parents={"lora": "base"}) as server:
        absent = run_evaluate(tmp_path, {}, "--base-url", server.url, "--models", "lora,other", "--suites", "facts",
                              "--facts", str(facts_file), "--output", str(tmp_path / "r"))
    assert absent.returncode == 2
    assert absent.stderr.splitlines() == [f"error: {server.url} does not serve ['other']; it serves ['base', 'lora']. "
                                          "Pass --models with names from that list."]
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------- facts: splits, contexts, what is kept

LANGREF = [{"source": "langref", "title_path": ["Build System"], "level": 2, "anchor": "build",
            "text": "## Build System\n\n`zig build` runs the build script.", "code_blocks": []}]


def write_release(data: Path) -> None:
    """The release's sections as `make data` lays them out, with manifest.json: what the retriever reads."""
    write_jsonl(data / "release_notes_sections.jsonl", SECTIONS)
    write_jsonl(data / "langref_sections.jsonl", LANGREF)
    outputs = [{"path": name, "kind": "doc_sections", "sha256": sha256_file(data / name)}
               for name in ("release_notes_sections.jsonl", "langref_sections.jsonl")]
    write_json(data / "manifest.json", {"zig_version": "0.14.0", "outputs": outputs})


def _facts_reply(model: str, messages: list[dict]) -> str:
    """The base model knows comptime and build.zig; the adapter knows defer and build.zig but lost comptime."""
    prompt = messages[-1]["content"]
    if "Here is part of the Zig 0.14.0 documentation" in prompt:
        return "It runs at the end of the block; comptime."  # with the docs in view, both are answered
    return "comptime, build.zig" if model == "base" else "at the end of the scope; build.zig"


def test_facts_contexts_split_and_kept(tmp_path, facts_file):
    write_release(tmp_path / "raw_data" / "zig-0.14.0")
    out = tmp_path / "report"
    with StandIn(_facts_reply, ["base", "lora"], parents={"lora": "base"}) as server:
        proc = run_evaluate(tmp_path, {}, "--base-url", server.url, "--suites", "facts", "--facts", str(facts_file),
                            "--zig-version", "0.14.0", "--context", "oracle,none,retrieved", "--output", str(out))
        assert proc.returncode == 0, proc.stderr
        report = json.loads((out / "eval_report.json").read_text())
        rows = {r["model"]: (r["pass@1"], r["total"], r["note"]) for r in report["results"]}
        assert report["base_model"] == "base"  # from the server's listing: lora's parent
        # retrieved: every question (the third names no section, and its docs do not say build.zig); oracle: those
        # that name their section
        assert rows == {"base": (2, 3, ""), "lora": (2, 3, "kept 1 of 2"),
                        "base (oracle)": (2, 2, ""), "lora (oracle)": (2, 2, ""),
                        "base (retrieved)": (2, 3, ""), "lora (retrieved)": (2, 3, "")}
        oracle = (out / "logs" / "lora_oracle_" / "facts" / "q0001.log").read_text()
        assert "Marks a parameter as known while compiling." in oracle  # the section's text was in the prompt
        retrieved = (out / "logs" / "lora_retrieved_" / "facts" / "q0002.log").read_text()
        # found, not handed, and pasted as the oracle pastes a section: from its own heading, no id line before it
        assert "documentation:\n\n## defer\n\nRuns its expression" in retrieved and "--- release-notes" not in retrieved
        assert report["settings"]["context"] == ["none", "retrieved", "oracle"]

        details = report["details"]["facts"]
        contexts = details["contexts"]
        assert contexts["none"] == {"questions": 3, "tokens_added_mean": 0, "tokens_added_max": 0}
        assert contexts["oracle"]["questions"] == 2 and contexts["oracle"]["tokens_added_max"] > 10
        found = contexts["retrieved"]
        assert found["questions"] == 3 and found["with_own_section"] == 2
        assert (found["recall@1"], found["recall@5"], found["in_context"]) == (1.0, 1.0, 1.0)
        assert 0 < found["tokens_added_mean"] <= found["tokens_added_max"] <= report["settings"]["retrieval"]["budget"]
        assert details["tokens_counted_by"].startswith("estimated")  # "base" is no model on this machine
        assert details["corpus"]["sections"] == 3
        ranks = {t["task"]: t["metrics"].get("own_section_rank", "none") for t in report["tasks"]
                 if t["model"] == "base (retrieved)"}
        assert ranks == {"q0001": 1, "q0002": 1, "q0003": "none"}
        md = (out / "eval_report.md").read_text()
        assert "kept 1 of 2" in md
        assert "| retrieved | 3 |" in md and "100.0% / 100.0% / 100.0% (of 2)" in md
        assert "sends at most 5 of them, 2,500 tokens, a question" in md  # the settings the rows were asked with
        assert "own section in the top" in proc.stdout  # printed, as `make eval` shows it

        # --retrieval-sections 1: only the best section goes into the prompt (this corpus has three)
        one = tmp_path / "one"
        proc = run_evaluate(tmp_path, {}, "--base-url", server.url, "--suites", "facts", "--facts", str(facts_file),
                            "--zig-version", "0.14.0", "--models", "base", "--context", "retrieved",
                            "--retrieval-sections", "1", "--output", str(one))
        assert proc.returncode == 0, proc.stderr
        assert json.loads((one / "eval_report.json").read_text())["settings"]["retrieval"]["k"] == 1
        assert "sends at most 1 of them, 2,500 tokens, a question" in (one / "eval_report.md").read_text()
        prompts = [r["messages"][-1]["content"] for r in server.requests[-3:]]
        assert [p.count("\n## ") for p in prompts] == [1, 1, 1]  # each section starts with its heading

        # a whole retrieved section that is the question's own is the oracle's very prompt: asked once, one answer
        asked = len(server.requests)
        proc = run_evaluate(tmp_path, {}, "--base-url", server.url, "--suites", "facts", "--facts", str(facts_file),
                            "--zig-version", "0.14.0", "--models", "base", "--context", "oracle,retrieved",
                            "--retrieval-sections", "1", "--output", str(tmp_path / "same"))
        assert proc.returncode == 0, proc.stderr
        assert len(server.requests) == asked + 3  # q0001 and q0002 once for both contexts, q0003 retrieved only
        same = json.loads((tmp_path / "same" / "eval_report.json").read_text())
        assert {r["model"]: (r["pass@1"], r["total"]) for r in same["results"]} == {
            "base (oracle)": (2, 2), "base (retrieved)": (2, 3)}

        # --split: only the records of that split are asked
        asked = len(server.requests)
        proc = run_evaluate(tmp_path, {}, "--base-url", server.url, "--suites", "facts", "--facts", str(facts_file),
                            "--split", "dev", "--models", "lora", "--output", str(tmp_path / "dev"))
        assert proc.returncode == 0, proc.stderr
        assert len(server.requests) == asked + 1
        assert "compile-time known parameter" in server.requests[-1]["messages"][-1]["content"]
        # the adapter asked alone still names its base model: whose tokenizer counts the contexts, were it on disk
        assert json.loads((tmp_path / "dev" / "eval_report.json").read_text())["base_model"] == "base"


def test_contexts_it_cannot_give_are_one_line_errors(tmp_path, facts_file):
    unknown = run_evaluate(tmp_path, {}, "--answers", "reference", "--suites", "facts", "--facts", str(facts_file),
                           "--zig-version", "0.14.0", "--context", "none,open", "--output", str(tmp_path / "r"))
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines() == ["error: --context 'none,open': choose one or more of none, retrieved, "
                                           "oracle, comma-separated"]
    no_corpus = run_evaluate(tmp_path, {}, "--answers", "reference", "--suites", "facts", "--facts", str(facts_file),
                             "--zig-version", "0.14.0", "--context", "retrieved", "--output", str(tmp_path / "r"))
    assert no_corpus.returncode == 2
    assert no_corpus.stderr.startswith("error: --context retrieved needs the release's corpus: ")
    assert "manifest.json is missing" in no_corpus.stderr and not (tmp_path / "r").exists()
    none = run_evaluate(tmp_path, {}, "--answers", "reference", "--suites", "facts", "--facts", str(facts_file),
                        "--context", "retrieved", "--retrieval-sections", "0", "--output", str(tmp_path / "r"))
    assert none.returncode == 2 and not (tmp_path / "r").exists()
    assert none.stderr.splitlines()[-1].endswith("argument --retrieval-sections: must be a whole number of at least "
                                                 "1, got '0'")


def test_kept_is_said_only_where_the_base_model_answered_something():
    from ziglora.evaluate.harness import Outcome
    from ziglora.evaluate.suites.facts import SUITE

    def outcomes(base: list[bool], lora: list[bool]) -> dict[str, list[Outcome]]:
        return {m: [Outcome(m, "facts", f"q{i}", ok, "") for i, ok in enumerate(passed)]
                for m, passed in (("base", base), ("lora", lora))}

    assert SUITE.notes(outcomes([True, True, False], [True, False, True]), "base") == {"lora": "kept 1 of 2"}
    assert SUITE.notes(outcomes([False, False], [True, False]), "base") == {}  # not "kept 0 of 0"


def test_a_suite_is_one_module(tmp_path, monkeypatch):
    """A module in the suites package that defines SUITE is all a new suite takes."""
    import ziglora.evaluate.suites

    (tmp_path / "echo.py").write_text(
        "from ziglora.evaluate.harness import Suite\n\nclass Echo(Suite):\n    name = 'echo'\n\nSUITE = Echo()\n")
    monkeypatch.setattr(ziglora.evaluate.suites, "__path__", [*ziglora.evaluate.suites.__path__, str(tmp_path)])
    assert list(ziglora.evaluate.suites.registry()) == ["facts", "exercism", "aider", "echo"]


def test_one_served_model_is_asked_at_a_time(tmp_path):
    """vLLM on CPU applied the adapter to base-model requests batched beside adapter requests (docs/RESULTS.md),
    so evaluate.py never has requests for two models in flight together; within one model it still asks
    --concurrency at once. The stand-in holds each request a moment, so that requests sent together are in flight
    together."""
    facts = tmp_path / "facts.jsonl"  # 10 questions: not whole waves of 4, so the pooled order would overlap
    facts.write_text("".join(json.dumps({"q": f"Question {i}?", "accept": "yes"}) + "\n" for i in range(10)))
    in_flight: dict[str, int] = {}
    overlaps: list[dict[str, int]] = []  # what was in flight whenever a request arrived
    lock = threading.Lock()

    def reply(model: str, messages: list[dict]) -> str:
        with lock:
            in_flight[model] = in_flight.get(model, 0) + 1
            overlaps.append({m: n for m, n in in_flight.items() if n})
        time.sleep(0.1)
        with lock:
            in_flight[model] -= 1
        return "yes"

    with StandIn(reply, ["base", "lora"], parents={"lora": "base"}) as server:
        proc = run_evaluate(tmp_path, {}, "--base-url", server.url, "--suites", "facts", "--facts", str(facts),
                            "--concurrency", "4", "--output", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stderr
    assert len(overlaps) == 20
    assert all(len(now) == 1 for now in overlaps), [now for now in overlaps if len(now) > 1]
    assert max(n for now in overlaps for n in now.values()) > 1  # one model's requests still go together
