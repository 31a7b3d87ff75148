"""The exercism/zig practice exercises of a release: read from the track's commit archive."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ziglora.common.archive import read_text_members
from ziglora.common.net import DownloadError, download
from ziglora.evaluate.harness import EvalInputError
from ziglora.release.versions import exercism_url, resolve_pin


@dataclass(frozen=True)
class Exercise:
    slug: str  # the folder name, with hyphens: armstrong-numbers
    instructions: str
    stub: str
    test: str
    example: str

    @property
    def module(self) -> str:
        """The stub's file stem: Zig files use underscores (armstrong_numbers.zig, test_armstrong_numbers.zig)."""
        return self.slug.replace("-", "_")

    @property
    def stub_file(self) -> str:
        return f"{self.module}.zig"

    @property
    def test_file(self) -> str:
        return f"test_{self.module}.zig"


def exercises_from_members(members: dict[str, bytes]) -> tuple[list[Exercise], list[str]]:
    """Group archive members into exercises. Returns (complete exercises, slugs missing a file)."""
    root = "exercises/practice/"
    slugs = sorted({p[len(root):].split("/", 1)[0] for p in members if p.startswith(root) and p.count("/") >= 3})
    complete, incomplete = [], []
    for slug in slugs:
        base = f"{root}{slug}/"
        module = slug.replace("-", "_")
        names = [f"{module}.zig", f"test_{module}.zig", ".docs/instructions.md", ".meta/example.zig"]
        files = [members.get(base + n) for n in names]
        if any(f is None for f in files):
            incomplete.append(slug)
            continue
        stub, test, instructions, example = (f.decode("utf-8", "replace") for f in files)
        # the track's Zig-specific notes (error sets, allocators to use) belong to the task
        append = members.get(base + ".docs/instructions.append.md")
        if append is not None:
            instructions = instructions.rstrip() + "\n\n" + append.decode("utf-8", "replace")
        complete.append(Exercise(slug, instructions, stub, test, example))
    return complete, incomplete


def load_exercises(zig_version: str, data_dir: Path, archive: Path | None,
                   ref: str | None = None) -> tuple[list[Exercise], list[str]]:
    """The release's exercises from `archive`, or from the archive of `ref` (--exercism-ref, else the pin of
    ziglora/release/versions.py) downloaded once into sources/."""
    if archive is None:
        pin = resolve_pin(zig_version, "exercism_commit", ref)
        print(f"Zig {zig_version}: {pin}")
        archive = data_dir / "sources" / f"exercism-zig-{pin.value}.tar.gz"
        try:
            download(exercism_url(pin.value), archive)  # cached: a whole file, fetched once
        except DownloadError as e:
            raise EvalInputError(f"{e}\nPass a local copy of the track with --exercism-archive FILE.") from None
    exercises, incomplete = exercises_from_members(read_text_members(str(archive), (".zig", ".md")))
    if not exercises:
        raise EvalInputError(f"{archive}: no exercism exercise found (expected exercises/practice/<slug>/...)")
    return exercises, incomplete
