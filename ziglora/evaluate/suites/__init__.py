"""The evaluation suites: each module here defines SUITE, an instance of ziglora.evaluate.harness.Suite.

Adding a suite is adding a module; ziglora/evaluate/run.py finds it here.
"""
from __future__ import annotations

import importlib
import pkgutil

from ziglora.evaluate.harness import Suite


def registry() -> dict[str, Suite]:
    """{suite name: suite}, in the order the report lists them (facts, exercism, aider, then the others)."""
    suites = {}
    for info in pkgutil.iter_modules(__path__):
        suite = importlib.import_module(f"{__name__}.{info.name}").SUITE
        suites[suite.name] = suite
    first = ["facts", "exercism", "aider"]
    return dict(sorted(suites.items(), key=lambda kv: (first.index(kv[0]) if kv[0] in first else len(first), kv[0])))
