"""ziglora.common.net.download against a real loopback server that fails in the ways networks do."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import serve

from ziglora.common.io import USUAL_FILE_MODE
from ziglora.common.net import DownloadError, download

FAST = {"timeout": (0.5, 0.3), "retries": 2, "backoff_s": 0.0}  # 3 attempts, no waiting between them


@pytest.fixture
def site(tmp_path: Path):
    root = tmp_path / "site"
    root.mkdir()
    (root / "page.html").write_bytes(b"<html>the whole page</html>" * 100)
    with serve(root) as s:
        yield s


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_server_error_then_success_is_retried(site, tmp_path):
    site.faults["/page.html"] = ["500", "ok"]
    dest = tmp_path / "out" / "page.html"
    got = download(f"{site.url}/page.html", dest, **FAST)
    assert dest.read_bytes() == (tmp_path / "site" / "page.html").read_bytes()
    assert got["cached"] is False and got["bytes"] == 2700
    assert site.hits.count("/page.html") == 2
    assert leftovers(dest.parent) == ["page.html", "page.html.url"]  # the page and the URL it came from
    assert dest.stat().st_mode & 0o777 == USUAL_FILE_MODE  # not mkstemp's private 0600


def test_persistent_server_error_names_url_and_leaves_no_file(site, tmp_path):
    site.faults["/page.html"] = "500"
    dest = tmp_path / "out" / "page.html"
    with pytest.raises(DownloadError, match=rf"after 3 attempts: {site.url}/page.html"):
        download(f"{site.url}/page.html", dest, **FAST)
    assert site.hits.count("/page.html") == 3
    assert leftovers(dest.parent) == []


def test_not_found_fails_at_once(site, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        download(f"{site.url}/missing.html", tmp_path / "missing.html", **FAST)
    assert site.hits == ["/missing.html"]


def test_hang_times_out_is_retried_then_fails(site, tmp_path):
    site.faults["/page.html"] = "hang"
    dest = tmp_path / "out" / "page.html"
    with pytest.raises(DownloadError, match=f"{site.url}/page.html"):
        download(f"{site.url}/page.html", dest, **FAST)
    assert site.hits.count("/page.html") == 3
    assert leftovers(dest.parent) == []


def test_hang_then_success_via_env_timeout(site, tmp_path, monkeypatch):
    # the scripts pass no timeout: the environment is how a test (or a slow link) sets it
    monkeypatch.setenv("ZIGLORA_HTTP_TIMEOUT", "0.3")
    monkeypatch.setenv("ZIGLORA_HTTP_BACKOFF", "0")
    site.faults["/page.html"] = ["hang", "ok"]
    dest = tmp_path / "page.html"
    download(f"{site.url}/page.html", dest)
    assert dest.read_bytes().endswith(b"</html>")
    assert site.hits.count("/page.html") == 2


def test_bad_env_timeout_is_a_clear_error(site, tmp_path, monkeypatch):
    monkeypatch.setenv("ZIGLORA_HTTP_TIMEOUT", "soon")
    with pytest.raises(DownloadError, match="ZIGLORA_HTTP_TIMEOUT"):
        download(f"{site.url}/page.html", tmp_path / "page.html")


def test_body_cut_short_is_retried_never_kept(site, tmp_path):
    site.faults["/page.html"] = ["cut", "ok"]
    dest = tmp_path / "page.html"
    got = download(f"{site.url}/page.html", dest, **FAST)
    assert got["bytes"] == 2700 and dest.stat().st_size == 2700
    assert site.hits.count("/page.html") == 2


def test_body_always_cut_short_leaves_no_partial_file(site, tmp_path):
    site.faults["/page.html"] = "cut"
    dest = tmp_path / "out" / "page.html"
    with pytest.raises(DownloadError, match=f"{site.url}/page.html"):
        download(f"{site.url}/page.html", dest, **FAST)
    assert site.hits.count("/page.html") == 3
    assert leftovers(dest.parent) == []


def test_cached_file_means_no_request(site, tmp_path):
    dest = tmp_path / "page.html"
    download(f"{site.url}/page.html", dest, **FAST)
    site.stop()
    again = download(f"{site.url}/page.html", dest, **FAST)
    assert again["cached"] is True and again["bytes"] == 2700


def test_refresh_downloads_again_and_leaves_an_unchanged_file_untouched(site, tmp_path):
    dest = tmp_path / "page.html"
    download(f"{site.url}/page.html", dest, **FAST)
    os.utime(dest, (1_000_000_000, 1_000_000_000))
    again = download(f"{site.url}/page.html", dest, refresh=True, **FAST)
    assert site.hits.count("/page.html") == 2 and again["cached"] is False
    assert dest.stat().st_mtime == 1_000_000_000  # same bytes: not rewritten
    (tmp_path / "site" / "page.html").write_bytes(b"<html>changed</html>")
    changed = download(f"{site.url}/page.html", dest, refresh=True, **FAST)
    assert dest.read_bytes() == b"<html>changed</html>" and changed["bytes"] == 20
    assert leftovers(tmp_path) == ["page.html", "page.html.url", "site"]


def test_cached_file_from_another_url_is_reported(site, tmp_path, capsys):
    dest = tmp_path / "page.html"
    download(f"{site.url}/page.html", dest, **FAST)
    other = f"http://localhost:{site.url.rsplit(':', 1)[1]}/page.html"  # another mirror's address
    again = download(other, dest, **FAST)
    assert site.hits.count("/page.html") == 1  # the cached copy is used
    assert again["url"] == f"{site.url}/page.html"  # and recorded as what it is
    err = capsys.readouterr().err
    assert f"{dest} was downloaded from {site.url}/page.html, not {other}" in err and "--refresh" in err
    download(f"{site.url}/page.html", dest, **FAST)
    assert capsys.readouterr().err == ""  # the same URL: nothing to report
