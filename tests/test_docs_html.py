"""The docgen parser's small functions, on hand-written fragments in the site's markup."""
from __future__ import annotations

import pytest

from ziglora.data.docgen import (
    CodeFigure,
    PageStructureError,
    ShellFigure,
    decode_page,
    example_records,
    heading_title,
    parse_page,
    parse_shell,
    section_markdown,
    split_sections,
)


def h(level: int, anchor: str, title: str) -> str:
    return (f'<h{level} id="{anchor}"><a href="#toc-{anchor}">{title}</a> '
            f'<a class="hdr" href="#{anchor}">§</a></h{level}>')


def zig(file: str, code: str) -> str:
    return (f'<figure><figcaption class="zig-cap"><cite class="file">{file}</cite></figcaption>'
            f'<pre><code>{code}</code></pre></figure>')


def shell(samp: str) -> str:
    return f'<figure><figcaption class="shell-cap">Shell</figcaption><pre><samp>{samp}</samp></pre></figure>'


NL = "\n"
TEST_B_RUN = f"$ <kbd>zig test test_b.zig -lc</kbd>{NL}1/1 test_b.test.b...OK{NL}All 1 tests passed.{NL}"
BAD_RUN = (f'$ <kbd>zig build-obj bad.zig</kbd>{NL}<span class="sgr-1m">bad.zig:1:15: </span>'
           f'<span class="sgr-31m">error: </span>overflow{NL}')
PAGE = f"""<!doctype html><html><head><title>t</title><style>body{{color:red}}</style></head><body>
<header><h1>Test Reference</h1></header>
<nav aria-labelledby="table-of-contents"><ul><li><a href="#A">A</a></li></ul></nav>
<script>var x = 1;</script>
<main id="contents">
{h(2, "A", "Alpha")}
<p>Use <code>@as</code> &amp; friends.</p>
{h(3, "A-B", "Beta <code>x</code>")}
{zig("test_b.zig", "<span class='tok-kw'>test</span> &quot;b&quot; {}")}
{shell(TEST_B_RUN)}
<p>between</p>
{zig("bad.zig", "const x: u8 = 256;")}
{shell(BAD_RUN)}
{zig("alone.zig", "pub fn main() void {}")}
<p>no shell figure after alone.zig</p>
{h(2, "C", "Gamma")}
<pre><code class="language-diff">-old
+new</code></pre>
</main></body></html>"""


def test_heading_title_drops_link_chrome():
    assert heading_title('<a href="#toc-X">Title <code>y</code></a> <a class="hdr" href="#X">§</a>') == "Title y"


def test_parse_shell_separates_commands_output_and_errors():
    fig = parse_shell('$ <kbd>zig build-exe a.zig -target wasm32-wasi</kbd>\n$ <kbd>./a</kbd>\nhi &amp; bye\n')
    assert fig.commands == ["zig build-exe a.zig -target wasm32-wasi", "./a"]
    assert fig.output == "hi & bye" and not fig.is_error
    err = parse_shell('$ <kbd>zig test t.zig</kbd>\n<span class="sgr-31m">error: </span>no\n')
    assert err.is_error and err.output == "error: no"


def test_sections_follow_headings_and_drop_chrome():
    sections = split_sections(PAGE)
    assert [(s.title_path, s.level, s.anchor) for s in sections] == [
        (["Alpha"], 2, "A"), (["Alpha", "Beta x"], 3, "A-B"), (["Gamma"], 2, "C"),
    ]
    md = "".join(section_markdown(s) for s in sections)
    assert md.startswith("## Alpha\n\nUse `@as` & friends.")
    for chrome in ("§", "toc-", "color:red", "var x", "Test Reference", "<"):
        assert chrome not in md
    assert '`test_b.zig`\n\n```zig\ntest "b" {}\n```\n\n```shell\n$ zig test test_b.zig -lc\n1/1' in md
    assert "```diff\n-old\n+new\n```" in md


def test_examples_take_the_shell_figure_right_after_them():
    records = example_records(split_sections(PAGE), "langref")
    by_file = {r["file"]: r for r in records}
    assert list(by_file) == ["test_b.zig", "bad.zig", "alone.zig"]
    assert by_file["test_b.zig"]["command"] == "zig test test_b.zig -lc"
    assert by_file["test_b.zig"]["expected_output"] == "1/1 test_b.test.b...OK\nAll 1 tests passed."
    assert by_file["test_b.zig"]["expected_error"] is None
    assert by_file["bad.zig"]["expected_error"] == "bad.zig:1:15: error: overflow"
    assert by_file["bad.zig"]["expected_output"] is None
    assert by_file["alone.zig"]["command"] is None
    assert by_file["test_b.zig"]["section"] == ["Alpha", "Beta x"]
    assert by_file["test_b.zig"]["id"] == "langref/test_b.zig"


def test_intro_before_first_heading_becomes_a_section_only_with_content():
    page = f"<body><h1>Notes</h1><p>Welcome.</p>{h(2, 'Table-of-Contents', 'Table of Contents')}<nav>x</nav>" \
           f"{h(3, 'X', 'X')}<p>x</p></body>"
    sections = split_sections(page)
    assert [(s.title_path, s.level) for s in sections] == [(["Notes"], 1), (["X"], 3)]
    assert split_sections(f"<body><h1>T</h1>{h(2, 'X', 'X')}</body>")[0].title_path == ["X"]


def test_duplicate_example_file_names_get_distinct_ids():
    sections = split_sections(f"<body>{h(2, 'A', 'A')}{zig('a.zig', '1')}{zig('a.zig', '2')}</body>")
    assert [r["id"] for r in example_records(sections, "langref")] == ["langref/a.zig", "langref/a.zig#2"]


def test_decode_page_reports_non_utf8_bytes():
    assert decode_page("ok é".encode()) == ("ok é", 0)
    text, bad = decode_page(b"caf\xe9 \xff ok")
    assert bad == 2 and text == "caf\ufffd \ufffd ok"


def test_figure_types_are_distinct():
    assert isinstance(split_sections(f"<body>{h(2, 'A', 'A')}{zig('a.zig', '1')}</body>")[0].blocks[1], CodeFigure)
    assert isinstance(split_sections(f"<body>{h(2, 'A', 'A')}{shell('$ <kbd>zig</kbd>')}</body>")[0].blocks[1],
                      ShellFigure)


def test_tables_keep_one_row_per_line():
    table = ('<table><tr><th>Name</th><th>Syntax</th></tr><tr><td>Or</td><td><pre><code>a | b\na |= b</code></pre>'
             '</td></tr><tr><td><ul><li>x</li><li>y</li></ul></td></tr></table>')
    sections = split_sections(f"<body>{h(2, 'T', 'T')}{table}</body>")
    assert section_markdown(sections[0]) == (
        "## T\n\n| Name | Syntax |\n| --- | --- |\n| Or | `a \\| b` `a \\|= b` |\n| x; y |  |\n"
    )


# The two docgen markups met on the site (compared on the mirror's 0.14.0/0.15.1/0.15.2 references and
# 0.14.0/0.15.1 notes): the reference wraps content in <main> with token-colouring spans inside code; the notes
# wrap it in <div id="contents"> with plain code and a "Table of Contents" heading. Both parse the same way.
NOTES_PAGE = f"""<!doctype html><html><head><style>h1{{}}</style></head><body><div id="contents">
<h1>9.9.0 Release Notes</h1><p>Welcome.</p>
{h(2, "Table-of-Contents", "Table of Contents")}<nav><ul><li>toc</li></ul></nav>
{h(2, "Language", "Language")}<p>Changed.</p>
{h(3, "Loops", "Loops")}{zig("loop.zig", "test {}")}{shell(TEST_B_RUN)}
{h(4, "Detail", "Detail")}<p>More.</p>
{h(2, "Library", "Library")}<pre><code class="language-diff">-a
+b</code></pre>
</div></body></html>"""


def test_both_markups_parse_alike():
    reference = parse_page(PAGE, url="u", source="langref", require_examples=True)
    notes = parse_page(NOTES_PAGE, url="u", source="release-notes", require_examples=False)
    assert [(r["title_path"], r["level"]) for r in reference.section_records][:2] == [
        (["Alpha"], 2), (["Alpha", "Beta x"], 3)]
    assert [(r["title_path"], r["level"]) for r in notes.section_records] == [
        (["9.9.0 Release Notes"], 1), (["Language"], 2), (["Language", "Loops"], 3),
        (["Language", "Loops", "Detail"], 4), (["Library"], 2)]
    assert reference.example_records[0]["code"] == 'test "b" {}'  # the token spans are gone
    assert notes.example_records[0]["command"] == "zig test test_b.zig -lc"


@pytest.mark.parametrize("changed,expected", [
    # a code figure whose caption lost its `*-cap` class: its code would fall into the prose, uncounted
    (NOTES_PAGE.replace('class="zig-cap"', 'class="caption"'), 'expected every <figure> to hold a <figcaption'),
    # a figure with its code in a <div>, not <pre><code>
    (NOTES_PAGE.replace("<pre><code>test {}</code></pre>", "<div>test {}</div>"), "in 'Language > Loops'"),
    # a heading without its id: it would merge into the section before it
    (NOTES_PAGE.replace('<h4 id="Detail">', "<h4>"), "expected every <h2>..<h6> to carry an id"),
    # headings nested one level too deep, as an earlier rendering of the 0.14.0 notes did
    (NOTES_PAGE.replace("h3", "h4"), "found <h4> 'Loops' right after an <h2>"),
])
def test_changed_markup_is_an_error_naming_the_url_and_what_was_expected(changed, expected):
    with pytest.raises(PageStructureError) as e:
        parse_page(changed, url="http://site/notes.html", source="release-notes", require_examples=False)
    assert str(e.value).startswith("http://site/notes.html: ") and expected in str(e.value)
