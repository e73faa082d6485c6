"""Source resolution, verification and downloads against a real, misbehaving HTTP server."""

import hashlib
import io
import os
import tarfile

import pytest

from build_httpd import index, network, sources, transfer
from build_httpd.errors import FetchError, VerificationError
from build_httpd.recipes import Source

from .httpserver import MisbehavingServer

PAYLOAD = os.urandom(300_000)
NAME = "thing-1.0.tar.gz"


def source(*urls):
    return Source(filename=NAME, urls=tuple(urls), size=len(PAYLOAD), sha256=hashlib.sha256(PAYLOAD).hexdigest())


@pytest.fixture
def server():
    with MisbehavingServer() as s:
        yield s


@pytest.fixture
def dirs(tmp_path):
    d = {name: tmp_path / name for name in ("sources", "cache", "scratch")}
    for p in d.values():
        p.mkdir()
    return d


def obtain(src, dirs, sources_dir=None, index_urls=(), sleeps=None):
    places = sources.Places(sources_dir=sources_dir, cache_dir=dirs["cache"], index_urls=list(index_urls))
    return sources.obtain_sources([src], dirs["scratch"], places,
                                  sleep=(sleeps.append if sleeps is not None else lambda s: None))[NAME]


def cache_is_clean(dirs):
    """Nothing but verified files in the cache: no partial or temporary leftovers."""
    for path in dirs["cache"].iterdir():
        assert not path.name.startswith("."), f"leftover {path}"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(PAYLOAD).hexdigest()
    return True


# -- verification ----------------------------------------------------------------------------------

# -- resolution order ------------------------------------------------------------------------------

def private(dirs):
    return dirs["scratch"] / "sources" / NAME


def test_sources_directory_comes_first(server, dirs):
    server.routes.add("/f", ("body", b"never fetched"))
    (dirs["sources"] / NAME).write_bytes(PAYLOAD)
    got = obtain(source(server.url + "/f"), dirs, sources_dir=dirs["sources"])
    assert got == private(dirs) and got.read_bytes() == PAYLOAD
    assert server.routes.hits == {}


def test_cache_comes_before_the_network(server, dirs):
    (dirs["cache"] / NAME).write_bytes(PAYLOAD)
    got = obtain(source(server.url + "/f"), dirs)
    assert got == private(dirs) and got.read_bytes() == PAYLOAD
    assert server.routes.hits == {}


def test_what_is_used_is_the_copy_that_was_verified(dirs):
    """Verify, then use the same bytes: swapping the file where it lies after verification (minutes
    pass before httpd is extracted) changes nothing."""
    original = dirs["sources"] / NAME
    original.write_bytes(PAYLOAD)
    got = obtain(source(), dirs, sources_dir=dirs["sources"])
    original.write_bytes(bytes(len(PAYLOAD)))
    assert got != original and got.read_bytes() == PAYLOAD
    assert got.parent == dirs["scratch"] / "sources"


def test_a_damaged_cached_source_is_a_miss_fetched_again_and_replaced(server, dirs, capsys):
    (dirs["cache"] / NAME).write_bytes(b"x" * len(PAYLOAD))
    server.routes.add("/f", ("body", PAYLOAD))
    got = obtain(source(server.url + "/f"), dirs)
    assert got.read_bytes() == PAYLOAD
    assert (dirs["cache"] / NAME).read_bytes() == PAYLOAD
    assert "cached copy is not usable" in capsys.readouterr().err
    assert cache_is_clean(dirs)


def test_a_truncated_file_in_the_sources_directory_is_one_clear_message(dirs):
    (dirs["sources"] / NAME).write_bytes(PAYLOAD[:1000])
    with pytest.raises(VerificationError, match="is 1000 bytes, not the"):
        obtain(source(), dirs, sources_dir=dirs["sources"])
    assert not list((dirs["scratch"] / "sources").iterdir())


def test_tampered_sources_directory_file_is_a_hard_stop(dirs):
    (dirs["sources"] / NAME).write_bytes(b"x" * len(PAYLOAD))
    with pytest.raises(VerificationError, match="MOD_WSGI_HTTPD_SOURCES"):
        obtain(source(), dirs, sources_dir=dirs["sources"])
    assert not list((dirs["scratch"] / "sources").iterdir())


def test_each_file_says_which_place_it_was_verified_from(server, dirs, tmp_path, capsys):
    """One line per file naming the place that answered (this sdist's upstream/ among them); only
    what came over the network is added to the cache."""
    data = {name: os.urandom(1000) for name in ("a.tar.gz", "b.tar.gz", "c.tar.gz", "d.tar.gz", "e.tar.gz")}
    bundled = tmp_path / "upstream"
    bundled.mkdir()
    (dirs["sources"] / "a.tar.gz").write_bytes(data["a.tar.gz"])
    (bundled / "b.tar.gz").write_bytes(data["b.tar.gz"])
    (dirs["cache"] / "c.tar.gz").write_bytes(data["c.tar.gz"])
    server.routes.add("/d.tar.gz", ("body", data["d.tar.gz"]))
    server.routes.add("/e.tar.gz", ("status", 404))
    sdist = sdist_carrying({"e.tar.gz": data["e.tar.gz"]})
    server.routes.add("/simple/mod-wsgi-httpd/", ("body", index_page(server, sdist), "text/html"))
    server.routes.add("/files/mod_wsgi_httpd-9.9.9.1.tar.gz", ("body", sdist))
    wanted = [Source(filename=name, urls=(f"{server.url}/{name}",), size=len(body),
                     sha256=hashlib.sha256(body).hexdigest()) for name, body in data.items()]
    places = sources.Places(sources_dir=dirs["sources"], bundled_dir=bundled, cache_dir=dirs["cache"],
                            index_urls=[server.url + "/simple"], debian_archives=[])
    got = sources.obtain_sources(wanted, dirs["scratch"], places, sleep=lambda s: None)
    assert {name: path.read_bytes() for name, path in got.items()} == data
    assert {path.parent for path in got.values()} == {dirs["scratch"] / "sources"}
    assert [line for line in capsys.readouterr().err.splitlines() if "verified from" in line] == [
        f"mod_wsgi-httpd: a.tar.gz: verified from {dirs['sources']}",
        "mod_wsgi-httpd: b.tar.gz: verified from this sdist's upstream/",
        "mod_wsgi-httpd: c.tar.gz: verified from the cache",
        f"mod_wsgi-httpd: d.tar.gz: verified from a download from {server.url}/d.tar.gz",
        "mod_wsgi-httpd: e.tar.gz: verified from a mod_wsgi-httpd sdist on the package index"]
    assert sorted(p.name for p in dirs["cache"].iterdir()) == ["c.tar.gz", "d.tar.gz", "e.tar.gz"]


def test_a_tampered_copy_in_this_sdist_is_a_hard_stop_naming_it(dirs, tmp_path):
    bundled = tmp_path / "upstream"
    bundled.mkdir()
    (bundled / NAME).write_bytes(b"x" * len(PAYLOAD))
    with pytest.raises(VerificationError) as e:
        sources.obtain_sources([source()], dirs["scratch"], sources.Places(bundled_dir=bundled))
    assert f"this sdist ({bundled / NAME})" in str(e.value)
    assert not list((dirs["scratch"] / "sources").iterdir())


def test_a_damaged_cached_copy_is_named_when_nothing_else_has_the_file(server, dirs):
    (dirs["cache"] / NAME).write_bytes(b"x" * len(PAYLOAD))
    server.routes.add("/a", ("status", 404))
    with pytest.raises(FetchError) as e:
        obtain(source(server.url + "/a"), dirs, index_urls=[])
    assert f"    - {dirs['cache'] / NAME}: damaged, not used\n    - {server.url}/a: HTTP 404\n" in str(e.value)


# -- downloads under faults ------------------------------------------------------------------------

def test_404_then_reset_then_good(server, dirs):
    server.routes.add("/missing", ("status", 404))
    server.routes.add("/flaky", ("reset", PAYLOAD, 50_000), ("body", PAYLOAD))
    sleeps = []
    got = obtain(source(server.url + "/missing", server.url + "/flaky"), dirs, sleeps=sleeps)
    assert got.read_bytes() == PAYLOAD
    assert server.routes.hits == {"/missing": 1, "/flaky": 2}  # a 4xx is not retried; a reset is
    assert sleeps == [transfer.BACKOFF]
    assert cache_is_clean(dirs)


def test_truncated_body_is_retried(server, dirs):
    server.routes.add("/short", ("short", PAYLOAD, 1000), ("body", PAYLOAD))
    assert obtain(source(server.url + "/short"), dirs).read_bytes() == PAYLOAD
    assert server.routes.hits["/short"] == 2
    assert cache_is_clean(dirs)


def test_backoff_doubles_and_is_bounded(server, dirs):
    server.routes.add("/down", ("status", 503))
    sleeps = []
    with pytest.raises(FetchError):
        obtain(source(server.url + "/down"), dirs, sleeps=sleeps)
    assert server.routes.hits["/down"] == transfer.ATTEMPTS
    assert sleeps == [transfer.BACKOFF * 2 ** i for i in range(transfer.ATTEMPTS - 1)]


def test_wrong_bytes_with_the_right_size_stop_and_cache_nothing(server, dirs):
    server.routes.add("/evil", ("body", bytes(len(PAYLOAD))))
    server.routes.add("/good", ("body", PAYLOAD))
    with pytest.raises(VerificationError) as e:
        obtain(source(server.url + "/evil", server.url + "/good"), dirs)
    assert source().sha256 in str(e.value) and hashlib.sha256(bytes(len(PAYLOAD))).hexdigest() in str(e.value)
    assert list(dirs["cache"].iterdir()) == []
    assert "/good" not in server.routes.hits


def test_more_bytes_than_the_recipe_says_stop(server, dirs):
    server.routes.add("/long", ("body", PAYLOAD + b"extra"))
    with pytest.raises(VerificationError, match="longer than"):
        obtain(source(server.url + "/long"), dirs)
    assert list(dirs["cache"].iterdir()) == []


def test_stalled_server_times_out_then_mirror_serves(server, dirs, monkeypatch):
    monkeypatch.setattr(transfer, "TIMEOUT", (2, 0.5))
    server.routes.add("/stall", ("stall", PAYLOAD, 3))
    server.routes.add("/mirror", ("body", PAYLOAD))
    got = obtain(source(server.url + "/stall", server.url + "/mirror"), dirs)
    assert got.read_bytes() == PAYLOAD
    assert server.routes.hits["/stall"] == transfer.ATTEMPTS
    assert cache_is_clean(dirs)


def test_every_place_failing_names_every_place(server, dirs):
    server.routes.add("/a", ("status", 404))
    server.routes.add("/b", ("status", 403))
    with pytest.raises(FetchError) as e:
        obtain(source(server.url + "/a", server.url + "/b", "http://127.0.0.1:9/refused"), dirs,
               sources_dir=dirs["sources"], index_urls=[server.url + "/simple"])
    # the whole message, every place in the order tried (mutation testing: a word was not enough)
    assert str(e.value) == (
        f"could not obtain a verified copy of {NAME}. every place was tried:\n"
        f"  {NAME} ({len(PAYLOAD)} bytes, sha256 {hashlib.sha256(PAYLOAD).hexdigest()}):\n"
        f"    - {dirs['sources'] / NAME}: not there\n"
        f"    - {dirs['cache'] / NAME}: not cached yet\n"
        f"    - {server.url}/a: HTTP 404\n"
        f"    - {server.url}/b: HTTP 403\n"
        "    - http://127.0.0.1:9/refused: connection refused\n"
        "    - Debian's archive: the recipe names no Debian source package\n"
        f"    - package index {server.url}/simple: no mod_wsgi-httpd sdist there\n"
        ". What to do: download the file(s) on a machine that can reach one of these places (or take them "
        "from this release's sources archive, docs/releasing.md) and point MOD_WSGI_HTTPD_SOURCES "
        "(-C sources=DIR) at the directory holding them; they are verified before use.")
    assert list(dirs["cache"].iterdir()) == []


# -- the package index -----------------------------------------------------------------------------

def sdist_carrying(files, version="9.9.9.1"):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"mod_wsgi_httpd-{version}/upstream/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def index_page(server, sdist, digest=None, older=None):
    digest = digest or hashlib.sha256(sdist).hexdigest()
    old_hash = f"#sha256={hashlib.sha256(older).hexdigest()}" if older else ""
    return (f'<html><body><a href="{server.url}/files/mod_wsgi_httpd-9.9.9.1.tar.gz#sha256={digest}">'
            f'mod_wsgi_httpd-9.9.9.1.tar.gz</a><a href="../../files/mod_wsgi_httpd-1.0.0.1.tar.gz{old_hash}">old</a>'
            f'</body></html>').encode()


def test_index_sdist_supplies_a_file_no_url_has(server, dirs):
    sdist = sdist_carrying({NAME: PAYLOAD})
    server.routes.add("/simple/mod-wsgi-httpd/", ("body", index_page(server, sdist), "text/html"))
    server.routes.add("/files/mod_wsgi_httpd-9.9.9.1.tar.gz", ("body", sdist))
    server.routes.add("/upstream", ("status", 404))
    got = obtain(source(server.url + "/upstream"), dirs, index_urls=[server.url + "/simple"])
    assert got.read_bytes() == PAYLOAD
    assert "/files/mod_wsgi_httpd-1.0.0.1.tar.gz" not in server.routes.hits  # newest first; it sufficed
    assert server.routes.headers[0].get("Accept-Encoding") == "identity"
    assert cache_is_clean(dirs)


def test_index_sdists_lists_every_sdist_newest_first_by_number(server):
    """Versions compare as numbers (2.4.10 after 2.4.9), wheels and other projects' files are not
    sdists, a hash is taken only from a sha256= fragment, and the index URL may end in a slash."""
    links = ["mod_wsgi_httpd-2.4.9.1.tar.gz#sha256=aa", "mod_wsgi_httpd-2.4.10.1.tar.gz#md5=bb",
             "mod_wsgi_httpd-2.4.10.1-py3-none-any.whl", "other-9.9.tar.gz", "sub/mod_wsgi_httpd-2.4.62.1.tar.gz"]
    page = "".join(f'<a href="{link}">x</a>' for link in links).encode()
    server.routes.add("/simple/mod-wsgi-httpd/", ("body", page, "text/html"))
    base = server.url + "/simple/mod-wsgi-httpd/"
    assert index.index_sdists(network.session(), server.url + "/simple/") == [
        ("mod_wsgi_httpd-2.4.62.1.tar.gz", base + "sub/mod_wsgi_httpd-2.4.62.1.tar.gz", None),
        ("mod_wsgi_httpd-2.4.10.1.tar.gz", base + "mod_wsgi_httpd-2.4.10.1.tar.gz", None),
        ("mod_wsgi_httpd-2.4.9.1.tar.gz", base + "mod_wsgi_httpd-2.4.9.1.tar.gz", "aa")]


def test_an_index_sdist_with_a_tampered_member_is_recorded_and_the_next_one_tried(server, dirs):
    bad = sdist_carrying({NAME: bytes(len(PAYLOAD))})
    good = sdist_carrying({NAME: PAYLOAD}, "1.0.0.1")
    server.routes.add("/simple/mod-wsgi-httpd/", ("body", index_page(server, bad, older=good), "text/html"))
    server.routes.add("/files/mod_wsgi_httpd-9.9.9.1.tar.gz", ("body", bad))
    server.routes.add("/files/mod_wsgi_httpd-1.0.0.1.tar.gz", ("body", good))
    got = obtain(source(), dirs, index_urls=[server.url + "/simple"])
    assert got.read_bytes() == PAYLOAD
    assert cache_is_clean(dirs)


def test_when_every_index_sdist_is_tampered_the_error_lists_them_all(server, dirs):
    bad = sdist_carrying({NAME: bytes(len(PAYLOAD))})
    worse = sdist_carrying({NAME: b"y" * len(PAYLOAD)}, "1.0.0.1")
    server.routes.add("/simple/mod-wsgi-httpd/", ("body", index_page(server, bad, older=worse), "text/html"))
    server.routes.add("/files/mod_wsgi_httpd-9.9.9.1.tar.gz", ("body", bad))
    server.routes.add("/files/mod_wsgi_httpd-1.0.0.1.tar.gz", ("body", worse))
    with pytest.raises(FetchError) as e:
        obtain(source(), dirs, index_urls=[server.url + "/simple"])
    text = str(e.value)
    assert "mod_wsgi_httpd-9.9.9.1.tar.gz (upstream/" in text and "mod_wsgi_httpd-1.0.0.1.tar.gz (upstream/" in text
    assert text.count("sha256") >= 2
    assert list(dirs["cache"].iterdir()) == []


def test_index_sdist_not_matching_the_index_hash_is_not_opened(server, dirs):
    sdist = sdist_carrying({NAME: PAYLOAD})
    server.routes.add("/simple/mod-wsgi-httpd/", ("body", index_page(server, sdist, "0" * 64), "text/html"))
    server.routes.add("/files/mod_wsgi_httpd-9.9.9.1.tar.gz", ("body", sdist))
    with pytest.raises(FetchError, match="differs from the index"):
        obtain(source(), dirs, index_urls=[server.url + "/simple"])


@pytest.mark.parametrize("limit,route", [("INDEX_PAGE_LIMIT", "/simple/mod-wsgi-httpd/"),
                                         ("SDIST_LIMIT", "/files/mod_wsgi_httpd-9.9.9.1.tar.gz")])
def test_index_downloads_are_bounded(server, dirs, monkeypatch, limit, route):
    sdist = sdist_carrying({NAME: PAYLOAD})
    page = index_page(server, sdist)
    server.routes.add("/simple/mod-wsgi-httpd/", ("body", page, "text/html"))
    server.routes.add("/files/mod_wsgi_httpd-9.9.9.1.tar.gz", ("body", sdist))
    monkeypatch.setattr(index, limit, 100)
    with pytest.raises(FetchError, match="more than 100 bytes"):
        obtain(source(), dirs, index_urls=[server.url + "/simple"])
    assert server.routes.hits[route] == 1  # too large is not retried


def test_index_url_comes_from_pip_configuration(monkeypatch):
    from build_httpd import network
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:1/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "file:///nowhere http://127.0.0.1:2/extra")
    assert network.index_urls() == ["http://127.0.0.1:1/simple", "http://127.0.0.1:2/extra"]


def test_a_cache_that_cannot_be_written_does_not_stop_the_build(server, dirs, capsys):
    # a file where the cache directory should be: unwritable for root too, unlike a chmod
    server.routes.add("/good", ("body", PAYLOAD))
    blocked = dirs["cache"] / "blocked"
    blocked.write_text("not a directory")
    got = sources.obtain_sources([source(server.url + "/good")], dirs["scratch"],
                                 sources.Places(cache_dir=blocked, index_urls=[]), sleep=lambda s: None)[NAME]
    assert got.read_bytes() == PAYLOAD
    assert "could not keep" in capsys.readouterr().err


def test_progress_bars_stay_out_of_logs(capsys):
    """stderr that is not a terminal (a log, CI) gets no progress bar lines."""
    from build_httpd.console import progress
    bar = progress(1000, "thing.tar.gz")
    bar.update(500)
    bar.close()
    assert capsys.readouterr().err == ""
