"""The cookbook stage: every zig-cookbook recipe of a release as a problem/solution chat pair, read from the branch's
archive without unpacking it (the layouts and the pages left out: scripts/build_cookbook.py --help)."""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ziglora.common.archive import UnsafeArchive, read_text_members
from ziglora.common.io import decode_utf8, write_jsonl
from ziglora.common.net import DownloadError, download
from ziglora.data.stages import keep_validation, output_entry, record_stage, release_dir
from ziglora.release.versions import cookbook_url, resolve_pin

SCRIPT = "build_cookbook"

SMD_INCLUDE = re.compile(r"\[\]\(\$code\.siteAsset\('([^']+)'\)(?:\.\w+\([^)]*\))*\)")
MDBOOK_INCLUDE = re.compile(r"\{\{#include\s+([^\s}]+)\s*\}\}")
# A fence that holds nothing but an mdbook include: the include replaces the whole fence.
MDBOOK_FENCED_INCLUDE = re.compile(r"```[a-z]*\n\s*(\{\{#include\s+[^\s}]+\s*\}\})\s*\n```")
FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)
SMD_TITLE = re.compile(r'^\.title\s*=\s*"((?:[^"\\]|\\.)*)"', re.M)
OTHER_DIRECTIVE = re.compile(r"\[[^\]]*\]\(\$[^)]*\)")  # Zine directives other than code includes
LINK_DEFINITION = re.compile(r"^\[[^\]]+\]:\s*\S+.*$", re.M)
IMAGE = re.compile(r"\[?!\[[^\]]*\]\([^)]*\)(?:\]\([^)]*\))?")  # an image, or an image that is a link
INLINE_LINK = re.compile(r"\[([^\]]+)\]\([^)\s]+\)")
# Words put in a link's target by mistake (`[`Mutex`](**Mut**ually **ex**clusive flag)`): kept, in parentheses.
PROSE_AS_TARGET = re.compile(r"\[([^\]]+)\]\(([^)]*\s[^)]*)\)")
REFERENCE_LINK = re.compile(r"\[([^\]]+)\](?!\()")
RECIPE_NUMBER = re.compile(r"^(\d+-\d+)(?:-|\.)")


@dataclass
class Page:
    path: str  # inside the archive, below its top folder
    title: str
    # The page body as alternating pieces: str for prose, ("include", archive path) for code.
    pieces: list = field(default_factory=list)


class MissingInclude(ValueError):
    pass


class ForeignCode(ValueError):
    """A recipe's included code is all another recipe's."""


class CookbookError(ValueError):
    """The archive can't be used (unsafe, or no recipes in it): nothing is written."""


def _split_includes(body: str, pattern: re.Pattern, resolve) -> list:
    pieces: list = []
    pos = 0
    for m in pattern.finditer(body):
        pieces.append(body[pos:m.start()])
        pieces.append(("include", resolve(m.group(1))))
        pos = m.end()
    pieces.append(body[pos:])
    return pieces


def parse_smd(path: str, text: str) -> Page:
    """A Zine page: front matter with .title, then Markdown with siteAsset code includes."""
    title = PurePosixPath(path).stem
    m = FRONT_MATTER.match(text)
    if m:
        t = SMD_TITLE.search(m.group(1))
        if t:
            title = t.group(1).replace('\\"', '"')
        text = text[m.end():]
    return Page(path, title, _split_includes(text, SMD_INCLUDE, lambda name: f"assets/{name}"))


def parse_mdbook(path: str, text: str) -> Page:
    """An mdbook page: `# Title`, then Markdown with `{{#include ../src/x.zig }}` relative to the page."""
    title = PurePosixPath(path).stem
    m = re.search(r"^# +(.+)$", text, re.M)
    if m:
        title = m.group(1).strip()
        text = text[:m.start()] + text[m.end():]
    text = MDBOOK_FENCED_INCLUDE.sub(r"\1", text)

    def resolve(name: str) -> str:
        # mdbook allows `file.zig:10:20` or `file.zig:anchor`; the whole file is what the recipe shows.
        target = PurePosixPath(path).parent / name.split(":", 1)[0]
        parts: list[str] = []
        for part in target.parts:
            if part == "..":
                if parts:
                    parts.pop()
            elif part != ".":
                parts.append(part)
        return "/".join(parts)

    return Page(path, title, _split_includes(text, MDBOOK_INCLUDE, resolve))


def clean_prose(text: str) -> str:
    """Markdown prose without link targets and Zine directives: the words stay, the URLs go."""
    text = LINK_DEFINITION.sub("", text)
    text = OTHER_DIRECTIVE.sub("", text)
    text = IMAGE.sub("", text)
    text = INLINE_LINK.sub(r"\1", text)
    text = PROSE_AS_TARGET.sub(r"\1 (\2)", text)
    text = REFERENCE_LINK.sub(r"\1", text)
    text = re.sub(r"[ \t]+$", "", text, flags=re.M)  # what a removed image or link leaves at a line's end
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def number(path: str) -> str | None:
    """The NN-MM a recipe page or code file is numbered with (`10-02-zon.smd`, `src/10-02.zig`)."""
    m = RECIPE_NUMBER.match(PurePosixPath(path).name)
    return m.group(1) if m else None


def foreign_includes(page: Page, includes: list[str], numbered: dict[str, str]) -> list[str]:
    """`includes` as "file (page)" when every one is another numbered recipe's and none the page's own; else []."""
    own = number(page.path)
    if own is None or any(number(name) == own for name in includes):
        return []
    owners = [numbered.get(number(name) or "") for name in includes]
    if not all(owners):
        return []
    return [f"{name} ({owner})" for name, owner in zip(includes, owners, strict=True)]


def same_words(a: str, b: str) -> bool:
    return re.sub(r"\W+", " ", a).strip().lower() == re.sub(r"\W+", " ", b).strip().lower()


def question(title: str, paragraphs: list[str], zig_version: str) -> tuple[str, list[str]]:
    """(the user turn, the paragraphs left for the answer). The task is the first paragraph that is prose:
    not a heading (it names the topic, e.g. a page with only `## String to number/enum` before its code)
    and not the title again."""
    title = title.strip().rstrip(".")
    topic, task = title, ""
    rest = list(paragraphs)
    while rest and not task:
        first = rest.pop(0)
        heading = re.fullmatch(r"#+\s+(.+)", first)
        if heading:
            if not same_words(heading.group(1), title):
                topic = f"{title}: {heading.group(1).strip()}"
        elif not same_words(first, title):
            task = first
    statement = f"{topic}. {task}" if task else f"{topic}."
    return f"In Zig {zig_version}: {statement}\n\nHow do I do this? Please show the code.", rest


def recipe_record(page: Page, files: dict[str, str], zig_version: str, numbered: dict[str, str]) -> dict | None:
    """The chat pair for one page, or None for a page without code. Raises MissingInclude, ForeignCode.
    `numbered`: NN-MM -> the page of that number, to tell a recipe's own code from another one's."""
    includes = [p[1] for p in page.pieces if isinstance(p, tuple)]
    if not includes:
        return None
    missing = [name for name in includes if name not in files]
    if missing:
        raise MissingInclude(f"{page.path}: included file(s) not in the archive: {', '.join(missing)}")
    foreign = foreign_includes(page, includes, numbered)
    if foreign:
        raise ForeignCode(f"{page.path}: shows only other recipes' code: {', '.join(foreign)}")
    # Prose before the first include holds the problem statement; everything else is the worked answer.
    answer: list[str] = []
    user = ""
    for piece in page.pieces:
        if isinstance(piece, tuple):
            if not user:
                user, _ = question(page.title, [], zig_version)
            answer.append(f"```zig\n{files[piece[1]].rstrip()}\n```")
            continue
        paragraphs = [p.strip() for p in clean_prose(piece).split("\n\n") if p.strip()]
        if not user:
            user, paragraphs = question(page.title, paragraphs, zig_version)
        answer.extend(paragraphs)
    slug = PurePosixPath(page.path).with_suffix("").as_posix().split("/", 2)[-1]
    return {
        "id": f"cookbook/{slug}",
        "source": "cookbook",
        "title": page.title,
        "page": page.path,
        "file": includes[0],
        "code": files[includes[0]],
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": "\n\n".join(answer)}],
    }


def recipe_pages(texts: dict[str, str]) -> list[Page]:
    """The recipe pages of whichever layout the archive has (the current one wins if both are there)."""
    smd = sorted(p for p in texts if p.startswith("src/en-US/") and p.endswith(".smd"))
    if smd:
        return [parse_smd(p, texts[p]) for p in smd]
    md = sorted(p for p in texts if p.startswith("book-src/") and p.endswith(".md") and not p.endswith("SUMMARY.md"))
    return [parse_mdbook(p, texts[p]) for p in md]


def recipe_records(texts: dict[str, str], zig_version: str) -> tuple[list[dict], list[dict], list[str]]:
    """Return (records, skipped [{page, reason}], pages without code)."""
    records, skipped, no_code = [], [], []
    pages = recipe_pages(texts)
    numbered = {number(page.path): PurePosixPath(page.path).stem for page in pages if number(page.path)}
    for page in pages:
        try:
            record = recipe_record(page, texts, zig_version, numbered)
        except (MissingInclude, ForeignCode) as e:
            skipped.append({"page": page.path, "reason": str(e)})
            continue
        if record is None:
            no_code.append(page.path)
        else:
            records.append(record)
    return records, skipped, no_code


@dataclass
class CookbookBuild:
    out: Path  # cookbook.jsonl
    recipes: int
    skipped: list[dict]  # {page, reason}
    pages_without_code: list[str]
    not_utf8: list[str]


def build_cookbook(zig_version: str, out_root: Path, branch: str | None = None,
                   refresh: bool = False) -> CookbookBuild:
    """Download the release's cookbook branch (its `cookbook_branch` pin, or `branch` given; said as chosen) and
    write cookbook.jsonl with the stage record; each page left out is reported on stderr with the reason."""
    pin = resolve_pin(zig_version, "cookbook_branch", branch)
    print(f"Zig {zig_version}: {pin}")
    rel_dir = release_dir(zig_version, out_root)
    archive = rel_dir / "sources" / f"cookbook-{pin.value}.tar.gz"

    try:
        source = download(cookbook_url(pin.value), archive, refresh=refresh)
    except DownloadError as e:
        raise DownloadError(f"{e}; check GITHUB_URL and the cookbook branch ({pin})") from None
    try:
        raw = read_text_members(str(archive), (".smd", ".md", ".zig"))
    except UnsafeArchive as e:
        archive.unlink(missing_ok=True)  # never trusted again as a cached download: the next run fetches anew
        raise CookbookError(f"refusing the cookbook archive from {source['url']}: {e}. Nothing was written.") \
            from None

    texts, not_utf8 = {}, []
    for path, data in raw.items():
        texts[path], valid = decode_utf8(data)
        if not valid:
            not_utf8.append(path)
    records, skipped, no_code = recipe_records(texts, zig_version)
    if not records:
        raise CookbookError(
            f"no recipes found in {archive} (expected src/en-US/*.smd or book-src/*.md pages that include "
            f"code); {len(skipped)} skipped. Is {pin.value!r} the right branch ({pin.origin})?"
        )
    out = rel_dir / "cookbook.jsonl"
    write_jsonl(out, keep_validation(out, records))
    for path in sorted(not_utf8):
        print(f"warning: {path} is not valid UTF-8; decoded with replacement characters", file=sys.stderr)
    for skip in skipped:
        print(f"warning: recipe skipped: {skip['reason']}", file=sys.stderr)
    record_stage(
        rel_dir, SCRIPT,
        sources=[{"name": f"cookbook-{pin.value}", "url": source["url"], "bytes": source["bytes"],
                  "sha256": source["sha256"], "pins": {pin.name: pin.record()},
                  "recipes": len(records), "skipped": skipped,
                  "pages_without_code": no_code, "not_utf8": sorted(not_utf8)}],
        outputs=[output_entry(rel_dir, out, "chat", len(records))],
    )
    return CookbookBuild(out, len(records), skipped, no_code, sorted(not_utf8))
