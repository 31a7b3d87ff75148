"""Build cookbook.jsonl: every zig-cookbook recipe of the release as a problem/solution chat pair.

The zigcc/zig-cookbook branch written for the release is downloaded once to sources/cookbook-<branch>.tar.gz.
The branch is the release's `cookbook_branch` pin (ziglora/release/versions.py): --cookbook-branch, else
$ZIGLORA_COOKBOOK_BRANCH, else the table's verified pin, else branch X.Y when GITHUB_URL has its archive, else
main (said so: main follows Zig master). The archive is read without unpacking (ziglora/common/archive.py
refuses absolute paths, `..` and links that escape). Two layouts are understood:

- current (Zine): `src/en-US/**/*.smd` pages with a `.title` front matter; code is included with
  `[]($code.siteAsset('src/NN-MM.zig').language('zig'))`, which names `assets/src/NN-MM.zig`;
- older (mdbook): `book-src/*.md` pages titled by their `# ` heading; code is included with
  `{{#include ../src/NN-MM.zig }}` inside a ```zig fence, relative to the page.

One recipe = one page with at least one include. The user asks for the recipe the way a user
would: its title and its problem statement, the first paragraph of prose (a paragraph that only
repeats the title, or a Markdown heading, is not one: a heading names the topic instead). The
assistant turn is the rest of the prose with every included file as a ```zig block, in page
order; link targets, images and upstream links broken into prose are cleaned out.

Pages left out, each reported with the reason, never dropped silently: one whose include names a
file the archive lacks, and one that includes only code belonging to another recipe (pages and
files share their NN-MM number; upstream's 0.14 "10-03 base64" page shows 10-02's ZON program,
which would teach a wrong answer).
"""
from __future__ import annotations

import sys

from ziglora.data import cli
from ziglora.data.cookbook import CookbookError, build_cookbook

ERRORS = (*cli.USER_ERRORS, CookbookError)


def main(argv: list[str] | None = None) -> int:
    parser = cli.release_parser(__doc__, downloads=True)
    parser.add_argument("--cookbook-branch", help="read this zig-cookbook branch instead of the release's pin")
    args = parser.parse_args(argv)
    built = build_cookbook(args.zig_version, args.out_root, args.cookbook_branch, args.refresh)
    print(f"{built.out}: {built.recipes} recipes, {len(built.skipped)} skipped, {len(built.pages_without_code)} "
          f"pages without code, {len(built.not_utf8)} files not UTF-8")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, errors=ERRORS))
