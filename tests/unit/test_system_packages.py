"""Issue 25, item 6: a system library is named by the package the system's package manager says
its headers belong to, with the distribution's own version, as scanners match it."""

import os
import shutil
import subprocess

import pytest
from packageurl import PackageURL

from build_httpd import report, system_packages
from build_httpd.features import Decision
from build_httpd.recipes import all_features, load_recipes
from build_httpd.system_packages import SystemPackage


@pytest.mark.parametrize("package, purl, upstream", [
    (SystemPackage("deb", "debian", "12", "openssl", "3.0.17-1~deb12u2", "amd64"),
     "pkg:deb/debian/openssl@3.0.17-1~deb12u2?arch=amd64&distro=debian-12", "3.0.17"),
    (SystemPackage("deb", "debian", "12", "brotli", "1.0.9-2+b6", "arm64"),
     "pkg:deb/debian/brotli@1.0.9-2%2Bb6?arch=arm64&distro=debian-12", "1.0.9"),
    (SystemPackage("deb", "ubuntu", "24.04", "nghttp2", "1:1.59.0-1ubuntu0.1", "amd64"),
     "pkg:deb/ubuntu/nghttp2@1:1.59.0-1ubuntu0.1?arch=amd64&distro=ubuntu-24.04", "1.59.0"),
    (SystemPackage("deb", "debian", "12", "zlib", "1:1.2.13.dfsg-1", "amd64"),
     "pkg:deb/debian/zlib@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12", "1.2.13"),
    (SystemPackage("deb", "debian", "12", "zlib", "1:1.3.dfsg+really1.3.1-1+b1", "amd64"),
     "pkg:deb/debian/zlib@1:1.3.dfsg%2Breally1.3.1-1%2Bb1?arch=amd64&distro=debian-12", "1.3.1"),
    (SystemPackage("rpm", "rocky", "8.10", "openssl", "1:1.1.1k-12.el8_9", "x86_64"),
     "pkg:rpm/rocky/openssl@1:1.1.1k-12.el8_9?arch=x86_64&distro=rocky-8.10", "1.1.1k"),
    (SystemPackage("apk", "alpine", "3.20.3", "openssl", "3.3.2-r1", "aarch64"),
     "pkg:apk/alpine/openssl@3.3.2-r1?arch=aarch64&distro=alpine-3.20.3", "3.3.2"),
])
def test_package_urls_carry_the_distributions_version_and_the_upstream_one_is_derived(package, purl, upstream):
    assert package.purl == purl
    parsed = PackageURL.from_string(purl)
    assert (parsed.type, parsed.namespace, parsed.name, parsed.version) == (
        package.type, package.distro, package.name, package.version)
    assert package.upstream_version == upstream


def system_library(name, header_version, package):
    recipes = load_recipes(profile="system")
    decisions = {n: Decision(f, "auto", n == name, "test", "", header_version if n == name else "",
                             header_file=f"/usr/include/{name}.h" if n == name else "")
                 for n, f in all_features(recipes).items()}
    document = report.sbom(recipes, "system", decisions, owners=lambda path: package if path else None)
    return next(c for c in document["components"] if c.get("scope") == "excluded")


def test_a_library_from_a_distribution_package_has_its_purl_and_the_upstream_cpe():
    openssl = system_library("ssl", "3.0.17", SystemPackage("deb", "debian", "12", "openssl", "3.0.17-1~deb12u2",
                                                            "amd64"))
    assert openssl["version"] == "3.0.17-1~deb12u2"
    assert openssl["purl"] == "pkg:deb/debian/openssl@3.0.17-1~deb12u2?arch=amd64&distro=debian-12"
    assert openssl["cpe"] == "cpe:2.3:a:openssl:openssl:3.0.17:*:*:*:*:*:*:*"
    assert {"name": "mod_wsgi-httpd:system-package", "value": "deb source package openssl 3.0.17-1~deb12u2"} in \
        openssl["properties"]


def test_brotli_whose_headers_declare_no_version_gets_the_packages():
    brotli = system_library("brotli", "", SystemPackage("deb", "debian", "12", "brotli", "1.0.9-2+b6", "amd64"))
    assert brotli["cpe"] == "cpe:2.3:a:google:brotli:1.0.9:*:*:*:*:*:*:*"
    assert brotli["purl"] == "pkg:deb/debian/brotli@1.0.9-2%2Bb6?arch=amd64&distro=debian-12"
    alone = system_library("brotli", "", None)  # headers no package owns: no version to claim
    assert "cpe" not in alone and "@" not in alone["purl"]


@pytest.mark.skipif(not shutil.which("dpkg-query"), reason="a dpkg system's own answer: this machine has no dpkg")
def test_dpkg_names_the_source_package_of_a_header_and_nothing_for_a_file_no_package_owns(tmp_path):
    header = "/usr/include/zlib.h"  # zlib1g-dev: ci/system-packages.sh installs it
    assert os.path.isfile(header), "zlib1g-dev is missing: ci/test installs it"
    found = system_packages.owner(header)
    expected = subprocess.run(["dpkg-query", "-W", "-f", "${Version} ${Architecture}", "zlib1g-dev"],
                              capture_output=True, text=True, check=True).stdout.split()
    assert (found.type, found.name, [found.version, found.arch]) == ("deb", "zlib", expected)
    assert found.distro == system_packages.os_release()["ID"]
    mine = tmp_path / "zlib.h"
    mine.write_text("/* built by hand */\n")
    assert system_packages.owner(str(mine)) is None


def fake_manager(tmp_path, monkeypatch, name, script):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / name).write_text("#!/bin/sh\n" + script)
    (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    release = tmp_path / "os-release"
    monkeypatch.setattr(system_packages, "OS_RELEASE", release)
    return release


def test_rpm_names_the_source_rpm_without_its_version(tmp_path, monkeypatch):
    release = fake_manager(tmp_path, monkeypatch, "rpm", """[ "$1" = -qf ] || exit 2
case "$4" in /usr/include/openssl/ssl.h) printf 'openssl-1.1.1k-12.el8_9.src.rpm\\t1:1.1.1k-12.el8_9\\tx86_64\\n';;
*) echo "file $4 is not owned by any package"; exit 1;; esac
""")
    release.write_text('ID="rocky"\nVERSION_ID="8.10"\n')
    found = system_packages.owner("/usr/include/openssl/ssl.h")
    assert found == SystemPackage("rpm", "rocky", "8.10", "openssl", "1:1.1.1k-12.el8_9", "x86_64")
    assert system_packages.owner("/opt/ssl/include/openssl/ssl.h") is None


def test_apk_names_the_origin_package(tmp_path, monkeypatch):
    release = fake_manager(tmp_path, monkeypatch, "apk", """case "$1 $2" in
"info --who-owns") echo "$3 is owned by openssl-dev-3.3.2-r1";;
"info --origin") printf 'openssl-dev-3.3.2-r1 origin:\\nopenssl\\n\\n';;
"--print-arch ") echo aarch64;;
*) exit 1;; esac
""")
    release.write_text("ID=alpine\nVERSION_ID=3.20.3\n")
    assert system_packages.owner("/usr/include/openssl/ssl.h") == SystemPackage(
        "apk", "alpine", "3.20.3", "openssl", "3.3.2-r1", "aarch64")


def test_dpkg_s_diversion_lines_are_skipped_and_the_first_of_several_owners_is_asked(tmp_path, monkeypatch):
    """dpkg-query -S names every package that ships the path (`a, b: path`) and the diversions of
    it; the first owner is the one asked for its source package. A path only diverted has none
    (mutation testing: neither shape was in a test)."""
    release = fake_manager(tmp_path, monkeypatch, "dpkg-query", """case "$1 $2" in
"-S /usr/include/foo.h") printf 'diversion by foo-compat from: /usr/include/foo.h\\n'
  printf 'libfoo-dev:amd64, libfoo-legacy-dev:amd64: /usr/include/foo.h\\n';;
"-S /usr/include/diverted.h") printf 'diversion by bar from: /usr/include/diverted.h\\n';;
"-W -f") [ "$4" = libfoo-dev:amd64 ] && printf 'foo\\t1:2.0-3\\tamd64';;
*) exit 1;; esac
""")
    release.write_text("ID=debian\nVERSION_ID=12\n")
    assert system_packages.owner("/usr/include/foo.h") == SystemPackage(
        "deb", "debian", "12", "foo", "1:2.0-3", "amd64")
    assert system_packages.owner("/usr/include/diverted.h") is None
