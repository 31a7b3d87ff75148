"""Parsing the Zig site's docgen pages (language reference, release notes) into sections and examples.

Both pages come out of the same generator (docgen), so one parser serves both:
- headings are `<hN id="Slug"><a href="#toc-Slug">Title</a> <a class="hdr" href="#Slug">§</a></hN>`;
- a code example is `<figure><figcaption class="zig-cap"><cite class="file">x.zig</cite></figcaption>
  <pre><code>…</code></pre></figure>`, usually followed at once by a shell figure
  `<figure><figcaption class="shell-cap">Shell</figcaption><pre><samp>$ <kbd>zig test x.zig</kbd>\n…`
  whose output marks compile errors with `<span class="sgr-31m">error: </span>`;
- the page chrome (head, style, script, the version and table-of-contents `<nav>`s, `<header>`) carries no
  content and is dropped before anything else is looked at.

The markup is machine-generated and regular, so small regular expressions over it are enough; everything
here is a pure function of the page text (no I/O), so it is tested on fixtures and on the real pages.

Measured on the language references of 0.14.0, 0.15.1 and 0.15.2 and the 0.14.0 and 0.15.1 release notes:
the markup above is the same in all five (the references add token-colouring spans inside code, the notes do
not), every <figure> has a `*-cap` caption with a <pre><code> or <pre><samp>, every h2..h6 has an id, and no
heading is more than one level deeper than the one before it. Anything else means the site's markup changed
(or the page is not what we think it is), so parse_page stops with PageStructureError naming the URL and
what it expected, instead of writing a corpus with code silently dropped or sections silently merged.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import html2text

HEADING_LEVELS = "2-6"  # docgen nests headings h2..h6; h1 is the page title
TOC_ANCHOR = "Table-of-Contents"  # the release notes' TOC is a heading whose whole body is a <nav>


class PageStructureError(ValueError):
    """The page lacks the docgen structure we parse (wrong URL, error page, changed site)."""


@dataclass(frozen=True)
class CodeFigure:
    language: str  # from the caption class: "zig", "c", "shell", …
    file: str | None  # <cite class="file"> when the figure names one
    code: str  # plain text, entities decoded


@dataclass(frozen=True)
class ShellFigure:
    commands: list[str]  # every `$ <kbd>…</kbd>` line, in order
    output: str  # the lines that are not commands
    transcript: str  # the whole figure as shown on the page
    is_error: bool  # the output holds a compiler `error:` (rendered in red)


@dataclass
class Section:
    title_path: list[str]
    level: int
    anchor: str | None
    blocks: list = field(default_factory=list)  # str (prose HTML) | CodeFigure | ShellFigure


# --- small text helpers ---------------------------------------------------------------------------

_TAG = re.compile(r"<[^>]+>")


def html_text(fragment: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded."""
    return html.unescape(_TAG.sub("", fragment))


def decode_page(data: bytes) -> tuple[str, int]:
    """Decode page bytes as UTF-8 (what the site serves). Bytes that are not UTF-8 become U+FFFD;
    the second value counts them so the caller can report it instead of failing or hiding it."""
    try:
        return data.decode("utf-8"), 0
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        return text, text.count("\ufffd") - data.count("\ufffd".encode())


# --- page structure -------------------------------------------------------------------------------

_CHROME = re.compile(
    r"<!--.*?-->|<head\b.*?</head>|<script\b.*?</script>|<style\b.*?</style>|<nav\b.*?</nav>|<header\b.*?</header>",
    re.S | re.I,
)
_H1 = re.compile(r"<h1\b[^>]*>(.*?)</h1>", re.S | re.I)
_BODY = re.compile(r"<body\b[^>]*>(.*)</body>", re.S | re.I)
_BLOCK = re.compile(
    rf"<h(?P<level>[{HEADING_LEVELS}])\b[^>]*\bid=\"(?P<anchor>[^\"]*)\"[^>]*>(?P<title>.*?)</h(?P=level)>"
    r"|<figure\b[^>]*>(?P<figure>.*?)</figure>",
    re.S | re.I,
)
_CAPTION = re.compile(r"<figcaption\b[^>]*class=\"(?P<lang>[\w-]+)-cap\"[^>]*>(?P<cap>.*?)</figcaption>", re.S)
_FILE = re.compile(r"<cite class=\"file\">(.*?)</cite>", re.S)
_CODE = re.compile(r"<pre\b[^>]*>\s*<code\b[^>]*>(.*?)</code>\s*</pre>", re.S)
_SAMP = re.compile(r"<pre\b[^>]*>\s*<samp\b[^>]*>(.*?)</samp>\s*</pre>", re.S)
_COMMAND = re.compile(r"^(?:</span>)*\$ <kbd>(.*?)</kbd>\s*$")
_COMPILE_ERROR = re.compile(r"<span class=\"sgr-31m\">\s*error:")


def page_title(page: str) -> str | None:
    m = _H1.search(page)
    return html_text(m.group(1)).strip() if m else None


def content_html(page: str) -> str:
    """The page body without its chrome (head, scripts, styles, navigation, header) and without the h1."""
    m = _BODY.search(page)
    body = m.group(1) if m else page
    return _H1.sub("", _CHROME.sub("", body))


def heading_title(inner_html: str) -> str:
    """'<a href="#toc-X">Title</a> <a class="hdr" href="#X">§</a>' -> 'Title'."""
    return " ".join(html_text(inner_html).replace("§", " ").split())


def parse_figure(inner_html: str) -> CodeFigure | ShellFigure | None:
    caption = _CAPTION.search(inner_html)
    if caption is None:
        return None
    language = caption.group("lang")
    if language == "shell":
        samp = _SAMP.search(inner_html)
        return parse_shell(samp.group(1)) if samp else None
    code = _CODE.search(inner_html)
    if code is None:
        return None
    file = _FILE.search(caption.group("cap"))
    return CodeFigure(language, html_text(file.group(1)).strip() if file else None, html_text(code.group(1)))


def parse_shell(samp_html: str) -> ShellFigure:
    commands, output = [], []
    for line in samp_html.split("\n"):
        m = _COMMAND.match(line)
        if m:
            commands.append(html_text(m.group(1)).strip())
        else:
            output.append(html_text(line))
    return ShellFigure(
        commands=commands,
        output="\n".join(output).strip("\n"),
        transcript=html_text(samp_html).strip("\n"),
        is_error=bool(_COMPILE_ERROR.search(samp_html)),
    )


_ANY_HEADING = re.compile(rf"<h[{HEADING_LEVELS}]\b[^>]*>.*?</h[{HEADING_LEVELS}]>", re.S | re.I)


def _check_headings(content: str) -> None:
    """Every h2..h6 has an id (a heading without one would be merged into the section before it)."""
    for m in _ANY_HEADING.finditer(content):
        if not _BLOCK.match(m.group(0)):
            raise PageStructureError(
                f"expected every <h2>..<h6> to carry an id (docgen headings), found {m.group(0)[:120]!r}"
            )


def split_sections(page: str) -> list[Section]:
    """Cut the page's content into one Section per heading (h2..h6), in page order.

    Text before the first heading becomes a level-1 section titled by the page's h1, but only when it
    has content (the release notes' introduction; the language reference has none). The release notes'
    "Table of Contents" heading is dropped: its whole body is the TOC <nav>, i.e. chrome.
    Raises PageStructureError (without the URL: parse_page adds it) on markup the module docstring rules out.
    """
    title = page_title(page) or "Introduction"
    sections = [Section([title], 1, None)]
    stack: list[tuple[int, str]] = []  # (level, title) of the enclosing headings
    pos = 0
    content = content_html(page)
    _check_headings(content)
    previous_level = 1  # the page title
    for m in _BLOCK.finditer(content):
        sections[-1].blocks.append(content[pos : m.start()])
        pos = m.end()
        if m.group("level"):
            level, name = int(m.group("level")), heading_title(m.group("title"))
            if level > previous_level + 1:
                raise PageStructureError(
                    f"expected each heading at most one level below the one before it, found <h{level}> "
                    f"{name!r} right after an <h{previous_level}> (headings nested wrongly)"
                )
            previous_level = level
            if m.group("anchor") == TOC_ANCHOR:
                sections.append(Section([name], level, TOC_ANCHOR))  # collects the chrome, dropped below
                continue
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, name))
            sections.append(Section([t for _, t in stack], level, m.group("anchor")))
        else:
            figure = parse_figure(m.group("figure"))
            if figure is None:
                where = " > ".join(sections[-1].title_path)
                raise PageStructureError(
                    f"expected every <figure> to hold a <figcaption class=\"LANG-cap\"> and a <pre><code> "
                    f"(a shell caption: <pre><samp>), found {m.group(0)[:160]!r} in {where!r}"
                )
            sections[-1].blocks.append(figure)
    sections[-1].blocks.append(content[pos:])
    intro, rest = sections[0], sections[1:]
    if _has_content(intro):
        rest.insert(0, intro)
    return [s for s in rest if s.anchor != TOC_ANCHOR]


def _has_content(section: Section) -> bool:
    if any(not isinstance(b, str) for b in section.blocks):
        return True
    return bool(prose_markdown("".join(section.blocks)).strip())


# --- Markdown -------------------------------------------------------------------------------------

_PRE = re.compile(r"<pre\b[^>]*>(?P<body>.*?)</pre>", re.S)
_LANG_CLASS = re.compile(r"<code\b[^>]*class=\"language-([\w-]+)\"")
_TABLE = re.compile(r"<table\b.*?</table>", re.S)
_PLACEHOLDER = "ZIGLORABLOCK{}X"  # survives html2text untouched (letters and digits only)


def _converter() -> html2text.HTML2Text:
    h = html2text.HTML2Text()
    h.body_width = 0  # never re-wrap: line breaks inside code-like text matter
    h.ignore_links = True  # in-page anchors and site links are navigation, not content
    h.ignore_images = True
    h.unicode_snob = True  # keep characters as they are instead of ASCII look-alikes
    return h


def fenced(code: str, language: str = "") -> str:
    fence = "````" if "```" in code else "```"
    return f"{fence}{language}\n{code.rstrip()}\n{fence}"


def code_markdown(fig: CodeFigure) -> str:
    block = fenced(fig.code, fig.language)
    return f"`{fig.file}`\n\n{block}" if fig.file else block


def prose_markdown(fragment: str) -> str:
    """HTML prose -> Markdown. Tables and standalone <pre> blocks are laid out here, not by html2text, which
    indents code instead of fencing it and breaks table rows at every line of a cell's code or list."""
    blocks: list[str] = []

    def hold(markdown: str) -> str:
        blocks.append(markdown)
        return f"<p>{_PLACEHOLDER.format(len(blocks) - 1)}</p>"

    def pre(m: re.Match) -> str:
        lang = _LANG_CLASS.search(m.group(0))
        return hold(fenced(html_text(m.group("body")).strip("\n"), lang.group(1) if lang else ""))

    fragment = _TABLE.sub(lambda m: hold(table_markdown(m.group(0))), fragment)
    text = _converter().handle(_PRE.sub(pre, fragment))
    for i, block in enumerate(blocks):
        text = text.replace(_PLACEHOLDER.format(i), block)
    return text


_ROW = re.compile(r"<tr\b[^>]*>(.*?)</tr>", re.S)
_CELL = re.compile(r"<t([hd])\b[^>]*>(.*?)</t\1>", re.S)


def cell_markdown(cell_html: str) -> str:
    """One table cell on one line: code lines become inline code, list items are joined with '; '."""
    def inline_code(m: re.Match) -> str:
        lines = [line.strip() for line in html_text(m.group("body")).splitlines() if line.strip()]
        return " ".join(f"<code>{html.escape(line)}</code>" for line in lines)

    flat = _PRE.sub(inline_code, cell_html)
    flat = re.sub(r"</li>\s*<li\b[^>]*>", "; ", flat)
    flat = re.sub(r"</?(?:ul|ol|li|p|br)\b[^>]*>", " ", flat)
    return " ".join(_converter().handle(flat).split()).replace("|", "\\|")


def table_markdown(table_html: str) -> str:
    rows = [[cell_markdown(c) for _, c in _CELL.findall(row)] for row in _ROW.findall(table_html)]
    rows = [r for r in rows if r]
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    lines = ["| " + " | ".join(r + [""] * (width - len(r))) + " |" for r in rows]
    return "\n".join([lines[0], "|" + " --- |" * width, *lines[1:]])


def section_markdown(section: Section) -> str:
    """The section's Markdown, heading line first; figures become fenced blocks in place."""
    parts = [f"{'#' * section.level} {section.title_path[-1]}"]
    prose: list[str] = []

    def flush() -> None:
        md = re.sub(r"\n{3,}", "\n\n", prose_markdown("".join(prose))).strip()
        if md:
            parts.append(md)
        prose.clear()

    for block in section.blocks:
        if isinstance(block, str):
            prose.append(block)
            continue
        flush()
        if isinstance(block, CodeFigure):
            parts.append(code_markdown(block))
        else:
            parts.append(fenced(block.transcript, "shell"))
    flush()
    return "\n\n".join(parts) + "\n"


# --- records --------------------------------------------------------------------------------------


def section_record(section: Section, source: str) -> dict:
    return {
        "source": source,
        "title_path": section.title_path,
        "level": section.level,
        "anchor": section.anchor,
        "text": section_markdown(section),
        "code_blocks": [
            {"file": b.file, "code": b.code}
            for b in section.blocks
            if isinstance(b, CodeFigure) and b.language == "zig"
        ],
    }


def example_records(sections: list[Section], source: str) -> list[dict]:
    """One record per Zig code figure that names its file, with the shell figure right after it (if any):
    its first command is how the docs ran the example, its output what they expected."""
    records: list[dict] = []
    seen: dict[str, int] = {}
    for section in sections:
        # prose between two figures that is only whitespace does not separate them
        blocks = [b for b in section.blocks if not (isinstance(b, str) and not b.strip())]
        for i, block in enumerate(blocks):
            if not (isinstance(block, CodeFigure) and block.language == "zig" and block.file):
                continue
            shell = blocks[i + 1] if i + 1 < len(blocks) and isinstance(blocks[i + 1], ShellFigure) else None
            seen[block.file] = seen.get(block.file, 0) + 1
            suffix = f"#{seen[block.file]}" if seen[block.file] > 1 else ""
            records.append({
                "id": f"{source}/{block.file}{suffix}",
                "source": source,
                "file": block.file,
                "code": block.code,
                "command": shell.commands[0] if shell and shell.commands else None,
                "expected_output": shell.output if shell and not shell.is_error else None,
                "expected_error": shell.output if shell and shell.is_error else None,
                "section": section.title_path,
            })
    return records


@dataclass
class ParsedPage:
    title: str | None
    sections: list[Section]
    section_records: list[dict]
    example_records: list[dict]

    def markdown(self) -> str:
        # a level-1 section is the page's introduction, already headed by the title
        has_intro = bool(self.section_records) and self.section_records[0]["level"] == 1
        head = f"# {self.title}\n\n" if self.title and not has_intro else ""
        return head + "\n".join(r["text"] for r in self.section_records)


def parse_page(page: str, *, url: str, source: str, require_examples: bool) -> ParsedPage:
    """Parse one docgen page. Raises PageStructureError (naming `url`) when the page has no headings,
    or no examples where they are required, or markup the module docstring rules out: an empty or half
    output would look like success downstream."""
    try:
        sections = split_sections(page)
    except PageStructureError as e:
        raise PageStructureError(f"{url}: {e}; the site's markup changed or this is not a Zig docs page") from None
    if not any(s.anchor for s in sections):
        raise PageStructureError(
            f"{url}: no section headings (<h2>..<h6> with an id) found; the page is not a Zig docs page "
            "(wrong URL or ZIG_SITE_URL, an error page, or the site's markup changed)"
        )
    examples = example_records(sections, source)
    if require_examples and not examples:
        raise PageStructureError(
            f"{url}: no code examples (<figure> with <figcaption class=\"zig-cap\"><cite class=\"file\">) found; "
            "the page is not a complete Zig language reference (or the site's markup changed)"
        )
    records = [section_record(s, source) for s in sections]
    return ParsedPage(page_title(page), sections, records, examples)
