"""The one call train_lora.py makes: choose the training library for this model and device, then run the recipe.

The backend comes first because Unsloth must be imported before transformers, and whether it is used depends on
the settings resolved for the model's size; the recipe, which imports transformers, is imported only after it.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ziglora.train import backend
from ziglora.train.settings import Settings


def run(settings: Settings, recipe: Path | None = None, extra_callbacks: Sequence = ()) -> dict:
    """Train with `settings` (defaults left open are resolved here); the report. Raises TrainingError for what a
    user must fix."""
    resolved, chosen = backend.prepare(settings)
    from ziglora.train import recipe as steps

    return steps.train(resolved, chosen, recipe, extra_callbacks)
