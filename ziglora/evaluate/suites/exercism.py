"""exercism: the exercism/zig practice exercises at the commit written for the release. The model gets the
instructions and the stub in one chat turn; the Zig block of its answer is compiled with the release's compiler
and its tests run in the sandbox (ziglora/evaluate/sandbox.py) under a time limit: pass@1, greedy.

Under --answers reference|stub the answer is the exercise's `.meta/example.zig` or the unchanged stub.
"""
from __future__ import annotations

import re

from ziglora.evaluate.exercism_track import Exercise, load_exercises
from ziglora.evaluate.harness import Context, Outcome, RequestRejected, Suite
from ziglora.evaluate.questions import strip_think
from ziglora.evaluate.sandbox import RunResult, run_zig_test


def exercise_prompt(ex: Exercise, zig_version: str) -> str:
    return (
        f"Solve this Exercism exercise in Zig {zig_version}.\n\n{ex.instructions.strip()}\n\n"
        f"Complete the file `{ex.stub_file}`; it is tested with `zig test {ex.test_file}`.\n\n"
        f"```zig\n{ex.stub.rstrip()}\n```\n\n"
        f"Reply with the whole completed `{ex.stub_file}` in one ```zig code block."
    )


_FENCE = re.compile(r"```([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.S)


def extract_zig(answer: str) -> str | None:
    """The Zig file in a chat answer: the longest ```zig block, else the longest unlabeled one.

    Longest, because models often add a short usage snippet next to the full file.
    """
    blocks = [(lang.lower(), code) for lang, code in _FENCE.findall(strip_think(answer))]
    for wanted in ("zig", ""):
        codes = [code for lang, code in blocks if lang == wanted]
        if codes:
            return max(codes, key=len)
    return None


class ExercismSuite(Suite):
    name = "exercism"

    def load(self, ctx: Context) -> tuple[list[Exercise], int]:
        exercises, incomplete = load_exercises(ctx.zig_version, ctx.data_dir, ctx.args.exercism_archive,
                                                ctx.args.exercism_ref)
        ctx.zig  # noqa: B018 - install the compiler once, before the tasks run in parallel
        return exercises, len(incomplete)

    def run(self, ctx: Context, model: str, ex: Exercise) -> tuple[Outcome, str]:
        prompt = exercise_prompt(ex, ctx.zig_version)
        try:
            answer = ctx.ask(model, prompt, reference=f"```zig\n{ex.example}```", stub=f"```zig\n{ex.stub}```")
        except RequestRejected as e:
            return Outcome(model, self.name, ex.slug, False, str(e)), f"# prompt\n{prompt}\n\n# request rejected\n{e}\n"
        code = extract_zig(answer)
        if code is None:
            run = RunResult("failed", "[no Zig code block in the answer]", 0.0, "no Zig code block")
        else:
            with ctx.compile_slots:
                run = run_zig_test(ctx.zig, {ex.stub_file: code, ex.test_file: ex.test}, ex.test_file,
                                   ctx.args.test_timeout)
        log = (f"# prompt\n{prompt}\n\n# answer\n{answer}\n\n# zig test {ex.test_file}: {run.status} "
               f"({run.seconds:.1f} s)\n{run.output}\n")
        return Outcome(model, self.name, ex.slug, run.status == "passed", run.status), log


SUITE = ExercismSuite()
