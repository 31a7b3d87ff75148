"""aider: the exercism exercises the way users work, through the real Aider (.venv-aider, aider-chat 0.86.2).

Per exercise: a fresh git repository holding the stub, its test file and INSTRUCTIONS.md; Aider, with the repo's
model settings (.aider.model.settings.yaml, applied to whichever model is asked), edits the stub against the
served model (`hosted_vllm/<model>`), the instructions as its message and the test file in view, read-only;
the release's compiler runs the tests, the test binary sandboxed
(ziglora/evaluate/sandbox.py). On failure Aider gets one more try that sees the test output and its first chat
(as Aider's polyglot benchmark does): pass@1 and pass@2. Aider only edits; it runs no tests, linters or shell commands.

Every reply is capped at --max-tokens (Aider's `aider/extra_params` settings entry puts max_tokens into every
request): Aider applies nothing from a reply cut there, and a try is killed after --aider-timeout seconds.
Reported per model: the share of replies Aider could not apply (it said the reply did not follow the edit
format), the share of tries whose code did not compile, the tries that hit the token limit or the time limit,
tokens (Aider's own count, which leaves out replies cut at the token limit) and seconds per exercise.
Logs per exercise in logs/<model>/aider/<slug>/: chat.md (Aider's chat), llm-history.txt (every message as
sent), aider-N.txt (its console), diff-N.patch (its edit), test-N.txt (the test output), analytics.jsonl.

--answers reference|stub: a stand-in server (ziglora/evaluate/standin.py) answers Aider in the `whole` edit format with
the exercise's reference solution or its unchanged stub; Aider itself is the real one.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from ziglora.evaluate.exercism_track import Exercise, load_exercises
from ziglora.evaluate.harness import Context, EvalInputError, Outcome, Suite, safe_name
from ziglora.evaluate.sandbox import RunResult, run_zig_test
from ziglora.evaluate.standin import StandIn

REPO = Path(__file__).resolve().parents[3]
# The settings entry the repo's Aider files hold for the served adapter; copied under each evaluated model's name.
SETTINGS_MODEL = "hosted_vllm/ziglora"
NOT_APPLIED = "did not conform to the edit format"  # what Aider prints when it cannot apply a reply
# what Aider prints when a reply stopped at max_tokens or the prompt did not fit the context: it applies nothing
# and ends the try (at most once a try)
TOKEN_LIMIT = "has hit a token limit!"
# Aider's own settings entry whose extra_params go into every model's requests
EVERY_MODEL = "aider/extra_params"
TEST_OUTPUT_CHARS = 6000  # the tail of the test output the second try sees: the failures come last
# Aider summarizes a chat history longer than 1/16 of the context (at least 1,024, at most 8,192 tokens) with the
# weak model, here the model under test: at our 16k context the second try would see that summary (an unlogged
# request of up to --max-tokens) instead of its first chat. Aider's benchmark runs both tries in one session with
# large-context models, whose threshold is the 8,192 ceiling: that keeps an exercise's first chat whole.
CHAT_HISTORY_TOKENS = 8192


def first_message(ex: Exercise, zig_version: str) -> str:
    return (
        f"{ex.instructions.strip()}\n\n---\n\nSolve the exercise above in Zig {zig_version} by editing "
        f"{ex.stub_file}. The tests in {ex.test_file} are run with `zig test {ex.test_file}`: keep the names "
        "they use, and use only Zig's standard library."
    )


def retry_message(ex: Exercise, test_output: str) -> str:
    return (
        f"{test_output[-TEST_OUTPUT_CHARS:].strip()}\n\n---\n\nThat is what `zig test {ex.test_file}` printed for "
        f"your {ex.stub_file}: the tests did not pass. The tests are correct; change {ex.stub_file} so that they do."
    )


def whole_file_reply(filename: str, code: str) -> str:
    """A reply in Aider's `whole` edit format: the file name on its own line, then the whole file fenced."""
    return f"{filename}\n```zig\n{code.rstrip()}\n```\n"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


class AiderSuite(Suite):
    name = "aider"
    tries = 2

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--aider", type=Path, default=REPO / ".venv-aider" / "bin" / "aider",
                            help="the Aider program (default: %(default)s, `make .venv-aider/.stamp`)")
        parser.add_argument("--aider-timeout", type=float, default=1800,
                            help="seconds for one Aider run (one try) before it is killed and its try fails; the "
                                 "report counts such tries (default %(default)s)")

    def settings(self, args: argparse.Namespace) -> dict:
        return {"aider_timeout_s": args.aider_timeout}

    def load(self, ctx: Context) -> tuple[list[Exercise], int]:
        if not ctx.args.aider.is_file():
            raise EvalInputError(f"{ctx.args.aider}: no Aider there; install it with `make .venv-aider/.stamp`")
        exercises, incomplete = load_exercises(ctx.zig_version, ctx.data_dir, ctx.args.exercism_archive,
                                                ctx.args.exercism_ref)
        ctx.zig  # noqa: B018 - install the compiler once, before the tasks run in parallel
        self.exercises = exercises
        return exercises, len(incomplete)

    def start(self, ctx: Context, models: list[str]) -> None:
        self.standin = None
        self.api_base = ctx.args.base_url
        if ctx.answers != "model":
            self.standin = StandIn(self._standin_reply, models).__enter__()
            self.api_base = self.standin.url
        # the repo's settings, under each model's name: base and adapter are asked with the same settings
        self.settings_dir = Path(tempfile.mkdtemp(prefix="ziglora-aider-settings-"))
        for model in models:
            for name in (".aider.model.settings.yaml", ".aider.model.metadata.json"):
                text = (REPO / name).read_text(encoding="utf-8")
                if SETTINGS_MODEL not in text:
                    raise EvalInputError(f"{REPO / name}: no entry for {SETTINGS_MODEL} to apply to the evaluated "
                                         "models")
                text = text.replace(SETTINGS_MODEL, f"hosted_vllm/{model}")
                if name.endswith(".yaml"):
                    # --max-tokens caps each reply as in the other suites; without it the server lets a model that
                    # never stops fill the whole context, minutes a reply on a CPU
                    text += f"- name: {EVERY_MODEL}\n  extra_params:\n    max_tokens: {ctx.args.max_tokens}\n"
                target = self._settings_file(model, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")

    def stop(self) -> None:
        if getattr(self, "standin", None) is not None:
            self.standin.__exit__(None, None, None)
        if getattr(self, "settings_dir", None) is not None:
            shutil.rmtree(self.settings_dir, ignore_errors=True)

    def _settings_file(self, model: str, name: str) -> Path:
        return self.settings_dir / safe_name(model) / name

    def _standin_reply(self, model: str, messages: list[dict]) -> str:
        """The reference solution (model 'reference') or the stub ('stub') of the exercise whose stub file Aider
        put into the chat: Aider lists an added file by its name on a line of its own."""
        text = "\n".join(m["content"] for m in messages if isinstance(m.get("content"), str))
        for ex in self.exercises:
            if re.search(rf"^{re.escape(ex.stub_file)}\s*$", text, re.M):
                return whole_file_reply(ex.stub_file, ex.example if model == "reference" else ex.stub)
        return "I see no exercise file in this chat."

    def _aider(self, ctx: Context, model: str, repo: Path, home: Path, logs: Path, ex: Exercise, message: str,
               attempt: int) -> tuple[str, int | None]:
        """Run Aider once on the stub with `message`; (its console output, exit status or None if killed)."""
        message_file = home / f"message-{attempt}.txt"
        message_file.write_text(message, encoding="utf-8")
        argv = [
            str(ctx.args.aider), "--model", f"hosted_vllm/{model}",
            "--model-settings-file", str(self._settings_file(model, ".aider.model.settings.yaml")),
            "--model-metadata-file", str(self._settings_file(model, ".aider.model.metadata.json")),
            "--message-file", str(message_file), "--yes-always", "--no-auto-commits", "--no-dirty-commits",
            "--no-pretty", "--no-fancy-input", "--no-show-model-warnings", "--no-check-update",
            "--no-show-release-notes", "--analytics-disable", "--analytics-log", str(logs / "analytics.jsonl"),
            "--chat-history-file", str(logs / "chat.md"), "--input-history-file", str(home / "input.history"),
            "--llm-history-file", str(logs / "llm-history.txt"), "--no-auto-lint", "--no-suggest-shell-commands",
            "--no-detect-urls", "--no-gitignore", "--encoding", "utf-8", "--timeout", str(ctx.args.request_timeout),
            # the settings say use_repo_map: false, but Aider's command line sizes a map from the context unless
            # told otherwise (main.py: map_tokens from get_repo_map_tokens())
            "--map-tokens", "0", "--max-chat-history-tokens", str(CHAT_HISTORY_TOKENS),
            # the tests in view but not editable: named in the message, Aider would add them as editable files
            "--read", ex.test_file,
            *(["--restore-chat-history"] if attempt > 1 else []), ex.stub_file,
        ]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
               "HOSTED_VLLM_API_BASE": self.api_base,
               "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # LiteLLM's bundled price list, not a download
        proc = subprocess.Popen(argv, cwd=repo, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=ctx.args.aider_timeout)
            return out, proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            return out + f"\n[killed: Aider ran past {ctx.args.aider_timeout:g} s]\n", None

    def run(self, ctx: Context, model: str, ex: Exercise) -> tuple[Outcome, str]:
        start = time.monotonic()
        logs = (ctx.log_dir(model, self.name) / ex.slug).resolve()  # Aider runs in the exercise's repo
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True)
        results: list[RunResult] = []
        not_applied = token_limit = timed_out = 0
        summary = [f"# aider on {ex.slug} ({model})"]
        with tempfile.TemporaryDirectory(prefix="ziglora-aider-") as tmp:
            repo, home = Path(tmp) / "repo", Path(tmp) / "home"
            repo.mkdir()
            home.mkdir()
            for name, text in ((ex.stub_file, ex.stub), (ex.test_file, ex.test), ("INSTRUCTIONS.md", ex.instructions)):
                (repo / name).write_text(text, encoding="utf-8")
            _git(repo, "init", "-q")
            _git(repo, "config", "user.name", "ziglora")  # for our commits, and Aider asks for one otherwise
            _git(repo, "config", "user.email", "eval@ziglora")
            (repo / ".git" / "info").mkdir(exist_ok=True)
            (repo / ".git" / "info" / "exclude").write_text(".aider*\n")  # Aider's caches stay out of the diffs
            _git(repo, "add", "-A")
            _git(repo, "commit", "-q", "-m", "exercise")
            message = first_message(ex, ctx.zig_version)
            for attempt in range(1, self.tries + 1):
                out, status = self._aider(ctx, model, repo, home, logs, ex, message, attempt)
                (logs / f"aider-{attempt}.txt").write_text(out, encoding="utf-8")
                not_applied += _said(out, NOT_APPLIED)
                token_limit += _said(out, TOKEN_LIMIT) > 0
                timed_out += status is None
                _git(repo, "add", "-A")
                (logs / f"diff-{attempt}.patch").write_text(_git(repo, "diff", "--cached"), encoding="utf-8")
                _git(repo, "commit", "-q", "--allow-empty", "-m", f"try {attempt}")
                code = (repo / ex.stub_file).read_text(encoding="utf-8") if (repo / ex.stub_file).is_file() else ""
                with ctx.compile_slots:
                    result = run_zig_test(ctx.zig, {ex.stub_file: code, ex.test_file: ex.test}, ex.test_file,
                                          ctx.args.test_timeout)
                results.append(result)
                (logs / f"test-{attempt}.txt").write_text(result.output, encoding="utf-8")
                summary.append(f"try {attempt}: aider exit {status}, zig test {result.status} "
                               f"({result.seconds:.1f} s) {result.reason}".rstrip())
                if result.status == "passed":
                    break
                message = retry_message(ex, result.output)
        sent, received = _usage(logs / "analytics.jsonl")
        metrics = {"tries": len(results), "replies": _replies(logs / "llm-history.txt"), "not_applied": not_applied,
                   "token_limit": token_limit, "timed_out": timed_out,
                   "not_compiled": sum(r.status == "compile_error" for r in results),
                   "prompt_tokens": sent, "completion_tokens": received, "seconds": round(time.monotonic() - start, 1)}
        summary.append(json.dumps(metrics))
        passed = results[-1].status == "passed"
        outcome = Outcome(model, self.name, ex.slug, passed, results[-1].status,
                          passed_first=results[0].status == "passed", metrics=metrics)
        return outcome, "\n".join(summary) + "\n"

    def notes(self, outcomes: dict[str, list[Outcome]], base: str | None) -> dict[str, str]:
        notes = {}
        for label, mine in outcomes.items():
            if not mine:
                continue
            total = {k: sum(o.metrics.get(k, 0) for o in mine) for k in
                     ("tries", "replies", "not_applied", "token_limit", "timed_out", "not_compiled", "prompt_tokens",
                      "completion_tokens", "seconds")}
            n = len(mine)
            notes[label] = (
                f"not applied {_share(total['not_applied'], total['replies'])} of {total['replies']} replies; "
                f"of {total['tries']} tries {_share(total['not_compiled'], total['tries'])} did not compile, "
                f"{total['token_limit']} hit the token limit, {total['timed_out']} were killed at the time limit; "
                f"{(total['prompt_tokens'] + total['completion_tokens']) / n:,.0f} tokens "
                f"({total['completion_tokens'] / n:,.0f} out) and {total['seconds'] / n:.0f} s per exercise"
            )
        return notes


def _said(console: str, phrase: str) -> int:
    """How often Aider's console output holds `phrase`. Aider wraps its lines at 80 columns, so a long model name
    can put a line break between any two of its words."""
    return len(re.findall(r"\s+".join(map(re.escape, phrase.split())), console))


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "n/a"


def _replies(llm_history: Path) -> int:
    """The model's replies in Aider's llm-history log, those cut at the token limit included: a response header
    followed by content (a request the server refused leaves the header alone)."""
    if not llm_history.is_file():
        return 0
    return len(re.findall(r"^LLM RESPONSE .*\n(?=ASSISTANT )", llm_history.read_text(encoding="utf-8"), re.M))


def _usage(analytics_log: Path) -> tuple[int, int]:
    """(prompt tokens, completion tokens) from Aider's analytics log, one message_send event a reply. Aider counts
    only the replies it went on to apply or reject: one cut at the token limit is in neither number."""
    sent = received = 0
    if analytics_log.is_file():
        for line in analytics_log.read_text(encoding="utf-8").splitlines():
            event = json.loads(line)
            if event.get("event") == "message_send":
                props = event.get("properties", {})
                sent += int(props.get("prompt_tokens", 0))
                received += int(props.get("completion_tokens", 0))
    return sent, received


SUITE = AiderSuite()
