"""A settings dataclass as a command line, and recipes as YAML files over its defaults.

The field `max_seq_len` is the flag `--max-seq-len` (dash forms only, as README writes them); a bool field is a
plain flag with a `--no-` twin. A field's metadata gives its help, its choices, the --help group it is listed in,
and how its default reads there (`default_text`); a default of None is chosen later, so its help says how.
`--config FILE` reads a recipe: a YAML mapping of field names (dashes or underscores) to values, which replaces the
defaults, while flags given on the command line still win — the convention of TRL, torchtune and Axolotl. Nothing
here imports torch, so `--help` answers at once.
"""
from __future__ import annotations

import argparse
import dataclasses
import textwrap
import types
import typing
from pathlib import Path


class ConfigError(ValueError):
    """A recipe file that cannot be read or names a setting that does not exist."""


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (a size or a count where 0 would silently do nothing)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _scalar_type(hint) -> type:
    """`int | None` -> int; `str` -> str."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return inner
    return hint


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Wraps help at spaces only, so a value like qa-facts=0.35 is never split at its hyphen."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=26)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def settings_parser(cls: type, description: str, groups: dict[str, str]) -> argparse.ArgumentParser:
    """A parser of every field of `cls`, listed under `groups` ({name: title}, in --help's order); every field's
    metadata names one of them."""
    parser = argparse.ArgumentParser(description=description, formatter_class=_HelpFormatter,
                                     usage="%(prog)s [--config FILE] [--SETTING VALUE ...]")
    parser.add_argument("--config", type=Path, metavar="FILE", help=(
        "A recipe: YAML of settings (names as below) over the defaults; flags still win. See recipes/."))
    sections = {name: parser.add_argument_group(title) for name, title in groups.items()}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = _scalar_type(hints[f.name])
        shown = f.metadata.get("default_text", f.default)
        help_text = f.metadata["help"] + ("" if shown is None else f" (default: {shown})")
        # SUPPRESS: a flag not given stays absent, so a recipe's value is not overwritten by the default.
        common = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        section = sections[f.metadata["group"]]
        if kind is bool:
            section.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction, **common)
        else:
            choices = f.metadata.get("choices")
            metavar = "{" + ",".join(choices) + "}" if choices else {int: "N", float: "X"}.get(kind, "TEXT")
            section.add_argument(_flag(f.name), type=kind, choices=choices, metavar=metavar, **common)
    return parser


def read_recipe(path: Path, cls: type) -> dict:
    """The settings a recipe file sets, by field name; a misspelt key fails here, naming the file and the key."""
    import yaml  # transformers' own dependency; imported here so --help never pays for it

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise ConfigError(f"--config {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"--config {path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a mapping of setting: value")
    hints = typing.get_type_hints(cls)
    settings = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(settings) - set(hints))
    if unknown:
        raise ConfigError(f"--config {path}: unknown settings {', '.join(unknown)}; see --help")
    return {name: _as_type(value, _scalar_type(hints[name]), path, name) for name, value in settings.items()}


def _as_type(value, kind: type, path: Path, name: str):
    """A recipe's value as its flag would parse it: `max_epochs: 7` is the float 7.0, as `--max-epochs 7` is."""
    if value is None or isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    if kind is bool or isinstance(value, bool):
        raise ConfigError(f"--config {path}: {name}: expected {kind.__name__}, got {value!r}")
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"--config {path}: {name}: expected {kind.__name__}, got {value!r}") from None


def parse_settings(cls: type, argv: list[str] | None, description: str, groups: dict[str, str]
                   ) -> tuple[object, Path | None]:
    """(an instance of `cls` from defaults < recipe file < command-line flags, the recipe file or None)."""
    given = vars(settings_parser(cls, description, groups).parse_args(argv))
    recipe = given.pop("config", None)
    values = read_recipe(recipe, cls) if recipe else {}
    values.update(given)
    return cls(**values), recipe
