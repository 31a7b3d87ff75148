"""Does the server give the same greedy answer to the same prompt? A few natural test questions asked with their own
release-notes section (the oracle's prompt, as evaluate.py sends it), each alone twice, then once among other
questions in flight. Prints, per question, whether the answers matched (docs/RETRIEVAL.md, "The same prompt,
another answer").

    python bench/same_prompt.py --base-url http://127.0.0.1:8000/v1 --zig-version 0.14.0 --ids n065,n066,n108
"""
from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ziglora.common.io import read_jsonl
from ziglora.evaluate.harness import Client
from ziglora.evaluate.questions import fact_prompt, load_facts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-url", required=True)
    p.add_argument("--zig-version", required=True)
    p.add_argument("--ids", required=True, help="comma-separated natural question ids")
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--others", type=int, default=13, help="questions in flight beside them the third time")
    p.add_argument("--max-tokens", type=int, default=768)
    args = p.parse_args()
    ver = args.zig_version
    sections = {tuple(r["title_path"]): r["text"]
                for r in read_jsonl(Path("raw_data") / f"zig-{ver}" / "release_notes_sections.jsonl")}
    tasks = {t.id: t for t in load_facts(Path("evals") / f"zig-{ver}" / "natural.jsonl") if t.section in sections}
    ids = args.ids.split(",")
    others = [i for i in tasks if i not in ids][: args.others]
    client = Client(args.base_url, 900, args.max_tokens)

    def ask(task_id: str) -> str:
        task = tasks[task_id]
        return client.chat(args.model, fact_prompt(task, ver, sections[task.section]))

    alone = {i: (ask(i), ask(i)) for i in ids}
    with ThreadPoolExecutor(len(ids) + len(others)) as pool:
        futures = {i: pool.submit(ask, i) for i in ids + others}
        batched = {i: futures[i].result() for i in ids}
    for i in ids:
        first, second = alone[i]
        print(f"{i}: alone twice the same: {first == second}; in a batch the same as alone: "
              f"{batched[i] in (first, second)}")
        for label, answer in (("alone 1", first), ("alone 2", second), ("batch", batched[i])):
            print(f"  {label}: {answer[:160]!r}")


if __name__ == "__main__":
    main()
