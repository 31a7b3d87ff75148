"""`latest` and releases the version table does not know, against a Zig site and a GitHub of our own on loopback.

The fixture site's index.json names 0.18.2 as its newest release, which ziglora/release/versions.py does not know. Its
pages are the mirror's real 0.15.2 language reference and 0.15.1 release notes cut to their first sections (test
input built here, nothing of them is kept in the repository), served at the 0.18 paths; its cookbook has only a
main branch, with one recipe written for these tests.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_script, serve, shared_dir

from tests.test_cookbook import SUM_ZIG, make_archive
from ziglora.common.io import read_jsonl
from ziglora.common.net import DownloadError
from ziglora.release.site import ReleaseNotPublished, newest_release, resolve_version
from ziglora.release.versions import DEFAULT_VERSION, DERIVATIONS, RELEASES, UnknownRelease, resolve_pin, url_exists

NEWEST = "0.18.2"  # not in the version table
COMPILER = "0.15.2"  # what the fixture's pages are written for; tests that compile pass it as $ZIGLORA_COMPILER
MIRROR = shared_dir() / "zig-mirror" / "ziglang.org"
SMD_SUM = b"""---
.title = "Sum in a test",
---

Check a sum with a test.

[]($code.siteAsset('src/01-01.zig').language('zig'))
"""


def first_sections(page: str, after: str, h2_count: int, tail: str) -> str:
    """The page up to its `h2_count`-th <h2> after the marker `after`, closed with `tail`."""
    start = page.index(after)
    cuts = [m.start() for m in re.finditer(r"<h2 id=", page) if m.start() > start]
    return page[:cuts[h2_count]] + tail


def write_site(root: Path, index: dict, notes_at: str = "0.18.1", cookbook_branches: tuple = ("main",)) -> None:
    langref = (MIRROR / "documentation" / "0.15.2" / "index.html").read_text(encoding="utf-8")
    notes = (MIRROR / "download" / "0.15.1" / "release-notes.html").read_text(encoding="utf-8")
    files = {
        "download/index.json": json.dumps(index).encode(),
        # up to "Comments": 3 sections, 2 examples (hello.zig, hello_again.zig)
        f"documentation/{NEWEST}/index.html": first_sections(langref, "<main", 3, "</main></body></html>").encode(),
        # the introduction and "Target Support": prose only
        f"download/{notes_at}/release-notes.html": first_sections(notes, "<h1", 2, "</div></body></html>").encode(),
    }
    for branch in cookbook_branches:
        files[f"github/zigcc/zig-cookbook/archive/refs/heads/{branch}.tar.gz"] = make_archive(
            {"src/en-US/01-01-sum.smd": SMD_SUM, "assets/src/01-01.zig": SUM_ZIG}, top=f"zig-cookbook-{branch}")
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)


INDEX = {"master": {"version": "0.19.0-dev.1"}, "0.9.1": {}, NEWEST: {}, "0.15.2": {}}  # not in version order


@pytest.fixture
def site(tmp_path, monkeypatch):
    write_site(tmp_path / "site", INDEX)
    with serve(tmp_path / "site") as running:
        monkeypatch.setenv("ZIG_SITE_URL", running.url)
        monkeypatch.setenv("GITHUB_URL", f"{running.url}/github")
        for name in ("ZIGLORA_NOTES_VERSION", "ZIGLORA_COOKBOOK_BRANCH", "ZIGLORA_COMPILER", "ZIGLORA_EXERCISM_REF"):
            monkeypatch.delenv(name, raising=False)
        yield running


def test_make_data_latest_builds_a_release_the_table_does_not_know(site, tmp_path):
    out = tmp_path / "raw"
    env = {**os.environ, "ZIGLORA_COMPILER": COMPILER}
    # -o: the environment is the one running this test, `make setup` is not what is tested here
    proc = subprocess.run(
        ["make", "-o", "/nonexistent/.stamp", "data", "ZIG_VERSION=latest", f"OUT_ROOT={out}",
         "VENV=/nonexistent", f"PY={sys.executable}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert f"Zig latest = {NEWEST} (the newest release in {site.url}/download/index.json)" in log
    assert "notes_version = 0.18.1 (derived: the first 0.18.x notes page on the site)" in log
    assert "cookbook_branch = main (derived: zig-cookbook has no 0.18 branch; falling back to main" in log
    assert f"compiler = {COMPILER} (from $ZIGLORA_COMPILER)" in log
    release = out / f"zig-{NEWEST}"
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["zig_version"] == NEWEST and manifest["requested_version"] == "latest"
    assert manifest["compiler"] == COMPILER
    assert {name: pin["value"] for name, pin in manifest["pins"].items()} == {
        "compiler": COMPILER, "cookbook_branch": "main", "notes_version": "0.18.1"}
    assert manifest["pins"]["cookbook_branch"]["origin"].startswith("derived: zig-cookbook has no 0.18 branch")
    assert {o["path"]: o["records"] for o in manifest["outputs"]}.items() >= {
        "langref_examples.jsonl": 2, "release_notes_examples.jsonl": 0, "cookbook.jsonl": 1}.items()
    assert "stdlib.jsonl" in {o["path"] for o in manifest["outputs"]}
    assert manifest["validation"]["total"] == {"ok": 3, "failed": 0, "skipped": 0}
    assert [s["url"] for s in manifest["sources"] if s["name"] == "release-notes"] == [
        f"{site.url}/download/0.18.1/release-notes.html"]
    assert next(read_jsonl(release / "release_notes_sections.jsonl"))["notes_version"] == "0.18.1"


def test_latest_is_the_highest_version_never_master(site, tmp_path):
    assert newest_release(INDEX, "index.json") == NEWEST  # not "0.9.1" (string order), not the file's order
    with pytest.raises(ReleaseNotPublished, match="lists no release"):
        newest_release({"master": {}}, "index.json")
    assert resolve_version("0.15.2") == "0.15.2"  # a named release is taken as is, without asking the site
    proc = subprocess.run([sys.executable, "-m", "ziglora.release.site", "latest"], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ})
    assert proc.returncode == 0 and proc.stdout == f"{NEWEST}\n"  # what the Makefile reads: the version alone
    # without a version: the default release, what bench/*.sh name their data folder by
    proc = subprocess.run([sys.executable, "-m", "ziglora.release.site"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == f"{DEFAULT_VERSION}\n"


def test_scripts_take_latest_and_a_named_unknown_release(site, tmp_path):
    out = tmp_path / "raw"
    proc = run_script("build_langref", "--zig-version", "latest", "--out-root", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"Zig latest = {NEWEST}" in proc.stderr
    assert len(list(read_jsonl(out / f"zig-{NEWEST}" / "langref_sections.jsonl"))) == 3
    proc = run_script("build_release_notes", "--zig-version", NEWEST, "--out-root", str(out),
                      "--notes-version", "0.18.1")
    assert proc.returncode == 0, proc.stderr
    assert "notes_version = 0.18.1 (given on the command line)" in proc.stdout


def test_pins_come_from_flag_then_environment_then_table_then_derivation(site, monkeypatch):
    assert str(resolve_pin("0.14.0", "cookbook_branch")) == (
        "cookbook_branch = 0.14 (verified in ziglora/release/versions.py)")
    monkeypatch.setenv("ZIGLORA_COOKBOOK_BRANCH", "main")
    assert resolve_pin("0.14.0", "cookbook_branch").origin == "from $ZIGLORA_COOKBOOK_BRANCH"
    assert resolve_pin("0.14.0", "cookbook_branch", "0.13").value == "0.13"
    monkeypatch.delenv("ZIGLORA_COOKBOOK_BRANCH")
    # a verified compiler in a row whose other pins are not verified (0.17.1): the rest is derived
    assert resolve_pin("0.17.1", "compiler").origin == "verified in ziglora/release/versions.py"
    assert resolve_pin("0.17.1", "cookbook_branch").value == "main"
    exercism = resolve_pin(NEWEST, "exercism_commit")
    assert exercism.value == "main" and "track's main branch" in exercism.origin


def test_cookbook_branch_of_the_minor_release_is_taken_when_it_exists(tmp_path, monkeypatch):
    write_site(tmp_path / "site", INDEX, cookbook_branches=("main", "0.18"))
    with serve(tmp_path / "site") as running:
        monkeypatch.setenv("GITHUB_URL", f"{running.url}/github")
        monkeypatch.delenv("ZIGLORA_COOKBOOK_BRANCH", raising=False)
        assert str(resolve_pin(NEWEST, "cookbook_branch")) == \
            "cookbook_branch = 0.18 (derived: zig-cookbook has a 0.18 branch)"


def test_notes_are_probed_from_the_minor_releases_first_patch(tmp_path, monkeypatch):
    write_site(tmp_path / "site", INDEX, notes_at="0.18.0")
    with serve(tmp_path / "site") as running:
        monkeypatch.setenv("ZIG_SITE_URL", running.url)
        assert resolve_pin(NEWEST, "notes_version").value == "0.18.0"
        assert running.hits == []  # probes are HEAD requests: no page is downloaded to choose one
        with pytest.raises(UnknownRelease, match=r"no release notes for Zig 0\.19\.x.*0\.19\.0/release-notes\.html, "
                           r".*0\.19\.1/release-notes\.html\); name them with --notes-version"):
            resolve_pin("0.19.1", "notes_version")


def test_an_unreachable_probe_is_an_error_not_a_fallback(monkeypatch):
    with serve(Path("/nonexistent")) as running:
        url = running.url
    monkeypatch.setenv("GITHUB_URL", url)  # nothing listens there any more
    monkeypatch.delenv("ZIGLORA_COOKBOOK_BRANCH", raising=False)
    with pytest.raises(DownloadError, match="could not probe"):
        resolve_pin(NEWEST, "cookbook_branch")


def test_a_compiler_pypi_lacks_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("ZIGLORA_COMPILER", raising=False)
    proc = run_script("build_stdlib", "--zig-version", "0.13.5", "--out-root", str(tmp_path))
    assert proc.returncode == 2
    err = proc.stderr
    assert "could not install the compiler for Zig 0.13.5 from PyPI (ziglang==0.13.5)" in err
    assert re.search(r"Available versions: .*0\.14\.0", err) and "--compiler or $ZIGLORA_COMPILER" in err
    assert not (tmp_path / "zig-0.13.5" / "stdlib.jsonl").exists()


@pytest.mark.parametrize("version", ["0.14.0", "0.14.1", "0.15.1", "0.15.2"])
def test_derived_notes_agree_with_the_verified_table_on_the_real_mirror(mirror_env, version):
    derived = DERIVATIONS["notes_version"](version, url_exists)
    assert derived.value == RELEASES[version].notes_version  # 0.15.2 -> 0.15.1 (0.15.0 has no notes page)
