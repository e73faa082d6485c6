"""Debian's archive as a place for sources, found by identity, and ci/check_updates.py, against a real
HTTP server on 127.0.0.1 serving a small Debian-style archive (Sources indexes and pool files)
that these tests write."""

import gzip
import hashlib
import json
import lzma
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from build_httpd import debian, sources
from build_httpd.errors import FetchError, RecipeError
from build_httpd.recipes import RECIPES_DIR, Source, load_recipe

from .httpserver import MisbehavingServer

ROOT = Path(__file__).resolve().parents[2]
PAYLOAD = os.urandom(200_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def stanza(package, version, directory, files):
    lines = [f"Package: {package}", f"Version: {version}", f"Directory: {directory}", "Checksums-Sha256:"]
    lines += [f" {digest} {size} {name}" for name, size, digest in files]
    return "\n".join(lines) + "\n"


def serve_index(server, base, suite, stanzas, compression="xz"):
    text = "\n".join(stanzas).encode()
    packed = lzma.compress(text) if compression == "xz" else gzip.compress(text)
    server.routes.add(f"/{base}/dists/{suite}/main/source/Sources.{compression}", ("body", packed))


def apt_dir(tmp_path, server, security=True):
    d = tmp_path / "apt"
    (d / "sources.list.d").mkdir(parents=True, exist_ok=True)
    (d / "sources.list.d" / "debian.sources").write_text(
        f"Types: deb\nURIs: {server.url}/debian\nSuites: sid\nComponents: main\n\n"
        + (f"Types: deb\nURIs: {server.url}/debian-security\nSuites: trixie-security\nComponents: main\n"
           if security else ""))
    # another vendor's repository in the same configuration is not Debian's
    (d / "sources.list").write_text("deb https://example.invalid/apt cloud-sdk main\n")
    return d


def source(debian_package="thing"):
    return Source(filename="thing-1.0-tag.tar.gz", urls=(), size=len(PAYLOAD), sha256=SHA,
                  debian=debian_package, in_sdists=False)


@pytest.fixture
def server():
    with MisbehavingServer() as s:
        yield s


def test_a_file_is_found_by_its_sha256_whatever_the_revision_is_called(server, tmp_path):
    # the revision that carried it has long left the index's name for it; a later one lists the
    # same .orig tarball, in a pool directory only the index can tell
    orig = [("thing_1.0.orig.tar.gz", len(PAYLOAD), SHA)]
    serve_index(server, "debian", "sid", [
        stanza("other", "1.0-1", "pool/main/o/other", orig),
        stanza("thing", "1.0-3+deb13u7", "pool/main/t/thing-odd-place", orig)])
    server.routes.add("/debian/pool/main/t/thing-odd-place/thing_1.0.orig.tar.gz", ("body", PAYLOAD))
    archives = debian.archives(apt_dir(tmp_path, server))
    got = sources.obtain_sources([source()], tmp_path / "scratch",
                                 sources.Places(index_urls=[], debian_archives=archives), sleep=lambda s: None)
    assert got["thing-1.0-tag.tar.gz"].read_bytes() == PAYLOAD
    assert server.routes.hits.get("/debian/pool/main/o/other/thing_1.0.orig.tar.gz") is None


def test_gzip_index_when_no_xz_one_is_served(server, tmp_path):
    serve_index(server, "debian", "sid", [stanza("thing", "1.0-1", "pool/main/t/thing",
                                                 [("thing_1.0.orig.tar.gz", len(PAYLOAD), SHA)])], "gz")
    server.routes.add("/debian/pool/main/t/thing/thing_1.0.orig.tar.gz", ("body", PAYLOAD))
    got = sources.obtain_sources([source()], tmp_path / "scratch", sources.Places(
        index_urls=[], debian_archives=debian.archives(apt_dir(tmp_path, server))), sleep=lambda s: None)
    assert got["thing-1.0-tag.tar.gz"].read_bytes() == PAYLOAD


def test_when_no_place_has_it_one_message_names_the_file_its_hash_and_every_place(server, tmp_path):
    # the index lists the tarball, but its pool file is gone (404); the other index lists other bytes
    serve_index(server, "debian", "sid", [stanza("thing", "1.0-1", "pool/main/t/thing",
                                                 [("thing_1.0.orig.tar.gz", len(PAYLOAD), SHA)])])
    serve_index(server, "debian-security", "trixie-security", [stanza(
        "thing", "0.9-1+deb13u1", "pool/updates/main/t/thing", [("thing_0.9.orig.tar.gz", 10, "0" * 64)])])
    wanted = Source(filename="thing-1.0-tag.tar.gz", urls=(f"{server.url}/upstream/thing-1.0.tar.gz",),
                    size=len(PAYLOAD), sha256=SHA, debian="thing", in_sdists=False)
    scratch = tmp_path / "scratch"
    with pytest.raises(FetchError) as e:
        sources.obtain_sources([wanted], scratch, sources.Places(
            sources_dir=tmp_path, cache_dir=tmp_path / "cache", index_urls=[],
            debian_archives=debian.archives(apt_dir(tmp_path, server))), sleep=lambda s: None)
    text = str(e.value)
    assert f"thing-1.0-tag.tar.gz ({len(PAYLOAD)} bytes, sha256 {SHA})" in text
    for place in (f"{tmp_path}/thing-1.0-tag.tar.gz: not there", "not cached yet",
                  f"{server.url}/upstream/thing-1.0.tar.gz: HTTP 404",
                  "pool/main/t/thing/thing_1.0.orig.tar.gz (Debian sid: thing 1.0-1): HTTP 404",
                  "no source index read (trixie-security, sid) lists a file of thing with this size and sha256",
                  "they carry only the system profile's tarballs"):
        assert place in text
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("*")), "nothing cached"
    assert not [p for p in (scratch / "sources").iterdir()], "nothing half-fetched is left"


def test_a_recipe_naming_a_debian_revision_is_refused(tmp_path):
    text = (RECIPES_DIR / "expat.toml").read_text().replace('debian = "expat"', 'debian = "expat=2.8.3-1~deb13u1"')
    (tmp_path / "expat.toml").write_text(text)
    with pytest.raises(RecipeError, match="never a revision"):
        load_recipe(tmp_path / "expat.toml")


def test_apt_configuration_is_read_in_both_formats_and_other_vendors_are_passed_over(tmp_path):
    d = tmp_path / "apt"
    (d / "sources.list.d").mkdir(parents=True)
    (d / "sources.list").write_text("deb [signed-by=/k.gpg] http://mirror.test/debian bookworm main\n"
                                    "deb http://mirror.test/debian-security bookworm-security main\n"
                                    "deb https://vendor.test/apt cloud-sdk-bookworm main\n")
    (d / "sources.list.d" / "x.sources").write_text("Types: deb\nURIs: https://other.test/node\nSuites: nodistro\n")
    # the security archive first: its suites are searched first
    assert debian.archives(d) == [debian.Archive("http://mirror.test/debian-security", True),
                                  debian.Archive("http://mirror.test/debian", False)]


@pytest.mark.parametrize("a, b, order", [
    ("1.0~rc1-1", "1.0-1", -1), ("1:1.3-1", "2.0-1", 1), ("3.5.7-1~deb13u2", "3.5.7-1~deb13u3", -1),
    ("1.64.0-1.1+deb13u1", "1.64.0-1.1+deb13u2", -1), ("2.4.71-1~deb13u1", "2.4.69-1", 1),
    ("1.3.2", "1.3.10", -1), ("10.49", "10.46", 1), ("1.0", "1.0", 0), ("1.0a", "1.0", 1)])
def test_debian_version_order(a, b, order):
    """ci/debian_versions.py: ci/check_updates.py' order of Debian versions (the build compares none)."""
    sys.path.insert(0, str(ROOT / "ci"))
    from debian_versions import compare
    assert compare(a, b) == order
    assert compare(b, a) == -order


@pytest.mark.parametrize("version, upstream", [
    ("1:1.3.dfsg+really1.3.2-4", "1.3.2"), ("2.5.0-1+deb12u2", "2.5.0"), ("1:1.2.13.dfsg-1", "1.2.13"),
    ("3.5.7-1~deb13u2", "3.5.7"), ("10.49-1", "10.49")])
def test_upstream_version_of_a_debian_version(version, upstream):
    assert debian.upstream_version(version) == upstream


# -- ci/check_updates.py --------------------------------------------------------------------------------

def check_updates(tmp_path, server, recipes_dir, python=sys.executable):
    out = subprocess.run([str(python), str(ROOT / "ci" / "check_updates.py"), "--json", "--apt-dir",
                          str(apt_dir(tmp_path, server)), "--recipes", str(recipes_dir)],
                         capture_output=True, text=True, timeout=120)
    rows = {r["component"]: r for r in json.loads(out.stdout)["components"]} if out.stdout.strip() else {}
    return out, rows


def local_recipes(tmp_path, server):
    """The project's recipes, their upstream release pages on the test server."""
    d = tmp_path / "recipes"
    shutil.copytree(RECIPES_DIR, d)
    for path in d.glob("*.toml"):
        text = path.read_text()
        text = "\n".join(f'url = "{server.url}/upstream/{path.stem}/"' if line.startswith("url = ") else line
                         for line in text.splitlines()) + "\n"
        path.write_text(text)
    return d


def f(name, size=1000):
    return (name, size, hashlib.sha256(name.encode()).hexdigest())


def test_check_updates_flags_an_obtainable_security_update_and_exits_1(server, tmp_path):
    recipes = local_recipes(tmp_path, server)
    serve_index(server, "debian", "sid", [
        stanza("expat", "2.9.0-1", "pool/main/e/expat", [f("expat_2.9.0.orig.tar.gz")]),
        stanza("apache2", "2.4.69-1", "pool/main/a/apache2", [f("apache2_2.4.69.orig.tar.gz")]),
        stanza("openssl", "3.6.5-1", "pool/main/o/openssl", [f("openssl_3.6.5.orig.tar.gz")])])
    serve_index(server, "debian-security", "trixie-security", [
        stanza("expat", "2.9.0-1~deb13u1", "pool/updates/main/e/expat", [f("expat_2.9.0.orig.tar.gz")]),
        stanza("openssl", "3.5.7-1~deb13u2", "pool/updates/main/o/openssl",
               [f("openssl_3.5.7.orig.tar.gz"), f("openssl_3.5.7-1~deb13u2.debian.tar.xz")])])
    server.routes.add("/debian-security/pool/updates/main/e/expat/expat_2.9.0.orig.tar.gz", ("body", b"x"))
    server.routes.add("/upstream/httpd/", ("body", b'<a href="httpd-2.4.69.tar.gz">', "text/html"))
    server.routes.add("/upstream/brotli/", ("body", b'<a href="/google/brotli/releases/tag/v1.3.0">', "text/html"))
    out, rows = check_updates(tmp_path, server, recipes)
    assert out.returncode == 1, out.stderr
    assert rows["expat"]["verdict"] == "SECURITY UPDATE: 2.9.0-1~deb13u1 (trixie-security)"
    assert rows["expat"]["security"] == "2.9.0-1~deb13u1 (trixie-security)"
    assert rows["expat"]["unstable"] == "2.9.0-1 (sid)"
    # OpenSSL follows 3.5 (3.6 is not an update for it) and applies 3.5.7-1~deb13u2's patches already
    assert rows["openssl"]["verdict"] == "current" and rows["openssl"]["unstable"] == ""
    assert rows["httpd"]["verdict"] == "current" and rows["httpd"]["upstream"] == "2.4.69"
    assert rows["brotli"]["verdict"] == "update available: 1.3.0 (upstream)"
    assert rows["zlib"]["upstream"].startswith("HTTP 404")
    assert set(rows) == {p.stem for p in RECIPES_DIR.glob("*.toml")}, "one row per recipe, every profile"
    assert "expat" in out.stderr and "release" in out.stderr


def test_check_updates_runs_on_a_python_with_nothing_installed(server, tmp_path):
    """The README's maintenance command on a bare Python (no requests, no tqdm): the standard
    library's HTTP client, the same answers."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    bare = tmp_path / "bare" / "bin" / "python"
    assert subprocess.run([str(bare), "-c", "import requests"], capture_output=True).returncode != 0
    recipes = local_recipes(tmp_path, server)
    serve_index(server, "debian", "sid", [])
    serve_index(server, "debian-security", "trixie-security", [
        stanza("expat", "2.9.0-1~deb13u1", "pool/updates/main/e/expat", [f("expat_2.9.0.orig.tar.gz")])])
    server.routes.add("/debian-security/pool/updates/main/e/expat/expat_2.9.0.orig.tar.gz", ("body", b"x"))
    out, rows = check_updates(tmp_path, server, recipes, python=bare)
    assert out.returncode == 1, out.stderr
    assert rows["expat"]["verdict"] == "SECURITY UPDATE: 2.9.0-1~deb13u1 (trixie-security)"
    assert rows["zlib"]["upstream"].startswith("HTTP 404")


def test_check_updates_reports_a_security_update_it_cannot_obtain_and_exits_0(server, tmp_path):
    recipes = local_recipes(tmp_path, server)
    serve_index(server, "debian", "sid", [])
    serve_index(server, "debian-security", "trixie-security", [
        stanza("apache2", "2.4.71-1~deb13u1", "pool/updates/main/a/apache2", [f("apache2_2.4.71.orig.tar.gz")]),
        stanza("openssl", "3.5.7-1~deb13u3", "pool/updates/main/o/openssl",
               [f("openssl_3.5.7.orig.tar.gz"), f("openssl_3.5.7-1~deb13u3.debian.tar.xz")])])
    out, rows = check_updates(tmp_path, server, recipes)  # their pool files answer 404
    assert out.returncode == 0, out.stderr
    assert rows["httpd"]["verdict"] == "security update, source not obtainable here: 2.4.71-1~deb13u1 (trixie-security)"
    # a newer Debian revision of the same upstream version: Debian's newer security patches
    assert rows["openssl"]["verdict"].startswith("security update, source not obtainable here: 3.5.7-1~deb13u3")
    server.routes.add("/debian-security/pool/updates/main/o/openssl/openssl_3.5.7-1~deb13u3.debian.tar.xz",
                      ("body", b"x"))
    out, rows = check_updates(tmp_path, server, recipes)
    assert out.returncode == 1 and rows["openssl"]["verdict"].startswith("SECURITY UPDATE: 3.5.7-1~deb13u3")


def test_check_updates_says_when_it_could_read_nothing(server, tmp_path):
    out, _ = check_updates(tmp_path, server, local_recipes(tmp_path, server))  # every index answers 404
    assert out.returncode == 2
    assert "no Debian source index could be read" in out.stderr


def test_check_updates_does_not_say_all_is_well_when_a_security_index_could_not_be_read(server, tmp_path):
    """sid read, trixie-security answering 503 every time: a fix there may be missing, so the exit
    status is 2 (not 0) and the message says which suite and why."""
    serve_index(server, "debian", "sid", [])
    server.routes.add("/debian-security/dists/trixie-security/main/source/Sources.xz", ("status", 503))
    server.routes.add("/debian-security/dists/trixie-security/main/source/Sources.gz", ("status", 503))
    out, rows = check_updates(tmp_path, server, local_recipes(tmp_path, server))
    assert out.returncode == 2, out.stderr
    assert "the security suites trixie-security could not be read" in out.stderr
    assert rows and all(not r["security_pending"] for r in rows.values())


def test_an_untrusted_certificate_on_debian_s_archive_turns_the_advice_to_trust(tmp_path, monkeypatch):
    """Every suite's index refused for its certificate: the record says so, so that the message
    advises trusting the CA rather than another place (it once looked at (suite, error) pairs
    as if they were errors, and never did)."""
    from build_httpd import archive
    from build_httpd.transfer import Attempts, UntrustedCertificate

    def refused(session, archive_, suite, packages, sleep):
        raise UntrustedCertificate("the server's TLS certificate is not trusted (CERTIFICATE_VERIFY_FAILED)")
    monkeypatch.setattr(archive, "debian_index", refused)
    wanted = Source(filename="zlib_1.3.2.orig.tar.gz", urls=(), size=1, sha256="0" * 64, debian="zlib")
    attempts = Attempts([wanted.filename])
    got = archive.from_debian(None, {wanted.filename: wanted}, tmp_path, attempts,
                              [debian.Archive("https://mirror.test/debian", False)], sleep=lambda s: None)
    assert got == {} and attempts.untrusted
    assert "CERTIFICATE_VERIFY_FAILED" in attempts.tried[wanted.filename][0]
