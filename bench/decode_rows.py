"""Are the answers the same when Unsloth's decode cache is sized to the answer (ziglora/train/model.py
unsloth_decode_rows) as with Unsloth's own rows? Asks the facts probe's dev questions of one model twice, greedy, in
one batch each (no cap, so both plans take every prompt at once: the same padding), and prints the token-identical
share and both plans as JSON. Meant for the GPU (on CPU there is no Unsloth: both runs are transformers').

    python bench/decode_rows.py --model DIR --data raw_data/zig-<ver> [--questions 58] [--tokens 128]
"""
from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from dataclasses import replace


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="a release directory (its dev questions are asked)")
    p.add_argument("--questions", type=int, default=58, help="dev questions asked (from the first)")
    p.add_argument("--tokens", type=int, default=128, help="new tokens per answer")
    args = p.parse_args()

    from ziglora.evaluate.questions import fact_prompt
    from ziglora.train import backend
    from ziglora.train.settings import Settings

    s, be = backend.prepare(Settings(model=args.model, data=args.data, gpu_memory_cap_gib="0", kept_layers="0"))
    from ziglora.train.generate import generating, greedy_answers
    from ziglora.train.memory import UNSLOTH_ROWS_AHEAD
    from ziglora.train.model import inference_modes, load_model
    from ziglora.train.trainset import probe_questions, read_release

    version = read_release(s).version
    prompts = [fact_prompt(t, version) for t in probe_questions(s, version).dev[:args.questions]]
    model, tokenizer, gpu = load_model(s, be)
    sized = gpu.planner
    own = replace(sized, decode_rows=lambda new_tokens: nullcontext(UNSLOTH_ROWS_AHEAD), calls=[]) if sized else None
    with generating(model, inference_modes(be)):
        answers = {name: greedy_answers(model, tokenizer, prompts, args.tokens, planner, name)
                   for name, planner in (("rows_sized_to_answer", sized), ("unsloth_own_rows", own))}
    a, b = answers.values()
    same = sum(x == y for x, y in zip(a, b, strict=True))
    print(json.dumps({"backend": be.name, "questions": len(prompts), "new_tokens": args.tokens, "identical": same,
                      "plans": [*(sized.calls if sized else []), *(own.calls if own else [])],
                      "first_difference": next(([x, y] for x, y in zip(a, b, strict=True) if x != y), None)},
                     indent=2))
    return 0 if same == len(prompts) else 1


if __name__ == "__main__":
    sys.exit(main())
