"""What every evaluation suite shares: the chat client, one task's outcome, the run's context, the Suite contract.

A suite (one module in ziglora/evaluate/suites/) declares its own options, loads its tasks, asks and judges one task for
one model, and sums its outcomes up in a row note; ziglora/evaluate/run.py runs whatever suites are registered.
"""
from __future__ import annotations

import argparse
import functools
import re
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from ziglora.release.zig import Zig, ensure_zig
from ziglora.serve.contract import THINKING_OFF


class EndpointDown(RuntimeError):
    pass


class EvalInputError(ValueError):
    """An input the run needs is missing or unusable (a facts file, the exercism track, Aider, a model name): the
    run stops before it asks anything, with this message."""


class RequestRejected(RuntimeError):
    """A 4xx for one request (e.g. a prompt longer than the served context): that task fails, the run goes on."""


class Client:
    """A minimal OpenAI-compatible chat client: greedy, thinking off, retries on 5xx and connection errors."""

    def __init__(self, base_url: str, timeout: float, max_tokens: int, retries: int = 3, backoff_s: float = 2.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.retries = retries
        self.backoff_s = backoff_s

    def model_list(self) -> list[dict]:
        try:
            resp = requests.get(f"{self.base_url}/models", timeout=30)
            resp.raise_for_status()
        except requests.RequestException as e:
            raise EndpointDown(
                f"no OpenAI-compatible server answers at {self.base_url} ({e.__class__.__name__}).\n"
                "Start one with `make serve ADAPTER=<adapter dir>` (or pass --base-url), then re-run."
            ) from None
        return resp.json().get("data", [])

    def models(self) -> list[str]:
        return [m["id"] for m in self.model_list()]

    def chat(self, model: str, prompt: str) -> str:
        body = {
            "model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0.0,
            "max_tokens": self.max_tokens, "chat_template_kwargs": THINKING_OFF,  # as in training and serving
        }
        for attempt in range(self.retries + 1):
            try:
                resp = requests.post(f"{self.base_url}/chat/completions", json=body, timeout=self.timeout)
                if 400 <= resp.status_code < 500:  # this request is wrong: retrying will not help
                    raise RequestRejected(f"HTTP {resp.status_code}: {resp.text[:500]}")
                if resp.status_code < 400:
                    return resp.json()["choices"][0]["message"].get("content") or ""
                error: Exception = requests.HTTPError(f"{resp.status_code}: {resp.text[:300]}")
            except (requests.ConnectionError, requests.Timeout) as e:
                error = e
            if attempt < self.retries:
                time.sleep(self.backoff_s * 2**attempt)
        raise EndpointDown(f"{self.base_url}: chat request for {model!r} failed {self.retries + 1} times: {error}")


@dataclass
class Outcome:
    model: str  # the report row's label: the model, or a variant of it such as "<model> (open book)"
    suite: str
    task: str
    passed: bool  # after every try the suite gives (pass@2 for a two-try suite)
    detail: str  # what the log holds beyond the answer: the compiler status or the regex
    passed_first: bool | None = None  # pass@1 where the suite gives a second try; None: same as `passed`
    metrics: dict[str, Any] = field(default_factory=dict)  # suite-specific numbers (tokens, seconds, ...)

    @property
    def pass1(self) -> bool:
        return self.passed if self.passed_first is None else self.passed_first


@dataclass
class Context:
    """One evaluate.py run as the suites see it."""
    args: argparse.Namespace  # every option, the suites' own included
    zig_version: str
    data_dir: Path  # raw_data/zig-<ver>
    answers: str  # model | reference | stub
    client: Client | None  # None unless answers == "model"
    logs_dir: Path
    compile_slots: threading.Semaphore  # compiling is CPU-bound: at most --jobs at once
    base_model: str | None = None  # the served base model (--base-model, or the adapters' parent the server lists)
    # Each (model, prompt) is asked once a run: vLLM's CPU build does not give the same greedy answer to the same
    # prompt every time, and two contexts that send the same prompt (a retrieved section that is the oracle's own)
    # must not score differently for that (docs/RETRIEVAL.md).
    _answers: dict[tuple[str, str], Future] = field(default_factory=dict, repr=False)
    _answers_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @functools.cached_property
    def zig(self) -> Zig:
        return ensure_zig(self.zig_version)

    def ask(self, model: str, prompt: str, reference: str, stub: str) -> str:
        """The model's answer, or under --answers reference|stub the task's own reference or stub answer."""
        if self.answers == "reference":
            return reference
        if self.answers == "stub":
            return stub
        assert self.client is not None
        with self._answers_lock:
            answer = self._answers.get((model, prompt))
            first = answer is None
            if first:
                answer = self._answers[(model, prompt)] = Future()
        if first:
            try:
                answer.set_result(self.client.chat(model, prompt))
            except BaseException as e:  # every asker of this prompt gets the same error
                answer.set_exception(e)
        return answer.result()

    def log_dir(self, model: str, suite: str) -> Path:
        return self.logs_dir / safe_name(model) / suite


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


class Suite:
    """One suite: subclass it in a module of ziglora/evaluate/suites/ and name the instance SUITE there."""

    name = ""
    tries = 1  # 2: the suite gives a failed task a second try, and the report shows pass@1 and pass@2

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The suite's own command-line options."""

    def settings(self, args: argparse.Namespace) -> dict[str, Any]:
        """The suite's own settings, for the report's `settings` beside the run's."""
        return {}

    def load(self, ctx: Context) -> tuple[list[Any], int]:
        """(the tasks, how many were skipped as incomplete). Raises EvalInputError when its input is missing."""
        raise NotImplementedError

    def work(self, ctx: Context, models: list[str], tasks: list[Any]) -> list[tuple[str, Any]]:
        """The (model, task) pairs to run; a suite may add variants of a task."""
        return [(m, t) for m in models for t in tasks]

    def start(self, ctx: Context, models: list[str]) -> None:
        """Called once before any task runs (e.g. to start a helper server)."""

    def stop(self) -> None:
        """Called once after the last task, even after an error."""

    def run(self, ctx: Context, model: str, task: Any) -> tuple[Outcome, str]:
        """Ask and judge one task: (its outcome, the log text). May raise EndpointDown."""
        raise NotImplementedError

    def notes(self, outcomes: dict[str, list[Outcome]], base: str | None) -> dict[str, str]:
        """{row label: a note for the report's table} from every label's outcomes; `base` is the base model."""
        return {}

    def details(self, outcomes: list[Outcome]) -> tuple[dict[str, Any], str]:
        """What the report gives beside the suite's rows: (for eval_report.json, a markdown section); ({}, "")
        for nothing."""
        return {}, ""
