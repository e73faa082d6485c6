"""Unpacking a source tarball: only regular files and directories below the top folder, modes
masked, on every Python, with or without tarfile's extraction filters (Debian 11's 3.9.2 and
Debian 12's 3.11.2 have none: that path is forced here on any Python)."""

import importlib.util
import io
import stat
import sys
import tarfile
from dataclasses import replace

import pytest

from build_httpd import build, debian
from build_httpd.errors import MissingRequirementError, RecipeError
from build_httpd.recipes import load_recipes

APR = load_recipes()["apr"]
TOP = APR.source_dir_name
PATHS = [pytest.param(False, id="without-filters")]
if hasattr(tarfile, "data_filter"):
    PATHS.append(pytest.param(True, id="with-filters"))


@pytest.fixture(params=PATHS)
def filters(request, monkeypatch):
    monkeypatch.setattr(build, "HAS_TAR_FILTERS", request.param)
    return request.param


def tarball(tmp_path, *extra, compression="gz"):
    """A tarball shaped like a release: TOP/ with files, plus whatever `extra` adds."""
    path = tmp_path / f"thing.tar.{compression}"
    with tarfile.open(path, f"w:{compression}") as tar:
        def add(name, data=b"", mode=0o644, kind=tarfile.REGTYPE, linkname=""):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.linkname = kind, mode, linkname
            info.uid, info.gid, info.uname, info.gname = 1234, 1234, "upstream", "upstream"
            if kind == tarfile.REGTYPE:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
        add(TOP, kind=tarfile.DIRTYPE, mode=0o775)
        add(f"{TOP}/configure", b"#!/bin/sh\n", mode=0o775)
        add(f"{TOP}/README", b"read me", mode=0o666)
        add(f"{TOP}/setuid-tool", b"x", mode=0o4755)
        add(f"{TOP}/docs", kind=tarfile.DIRTYPE)
        add(f"{TOP}/docs/big.html", b"skipped")
        for args in extra:
            add(*args[:1], **args[1])
    return path


def test_regular_files_and_directories_unpack_with_modes_masked(tmp_path, filters):
    recipe = replace(APR, source=replace(APR.source, skip=("docs",)))
    top = build.extract(recipe, tarball(tmp_path), tmp_path / "out")
    assert (top / "README").read_bytes() == b"read me"
    modes = {name: stat.S_IMODE((top / name).stat().st_mode) for name in ("configure", "README", "setuid-tool")}
    assert modes == {"configure": 0o755, "README": 0o644, "setuid-tool": 0o755}
    assert stat.S_IMODE(top.stat().st_mode) & 0o022 == 0
    assert not (top / "docs").exists()  # the recipe's skip list


@pytest.mark.parametrize("entry,what", [
    ((f"{TOP}/link", {"kind": tarfile.SYMTYPE, "linkname": "/etc/passwd"}), "a symbolic link"),
    ((f"{TOP}/inner", {"kind": tarfile.SYMTYPE, "linkname": "README"}), "a symbolic link"),
    ((f"{TOP}/hard", {"kind": tarfile.LNKTYPE, "linkname": f"{TOP}/README"}), "a hard link"),
    ((f"{TOP}/fifo", {"kind": tarfile.FIFOTYPE}), "a device or FIFO"),
    ((f"{TOP}/dev", {"kind": tarfile.CHRTYPE}), "a device or FIFO"),
    (("/etc/evil", {"data": b"x"}), "unsafe path"),
    ((f"{TOP}/../../evil", {"data": b"x"}), "unsafe path"),
])
def test_anything_else_stops_the_build(tmp_path, filters, entry, what):
    with pytest.raises(RecipeError, match=what):
        build.extract(APR, tarball(tmp_path, entry), tmp_path / "out")
    assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()


def test_a_tarball_of_another_version_is_named(tmp_path, filters):
    other = replace(APR, version="0.0.1")
    with pytest.raises(RecipeError, match="did not unpack into apr-0.0.1/"):
        build.extract(other, tarball(tmp_path), tmp_path / "out")


def without_lzma(monkeypatch):
    """This Python as if compiled without liblzma's headers: no _lzma, so tarfile cannot open xz."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "_lzma" else real(name, *a))
    monkeypatch.setitem(sys.modules, "lzma", None)


def test_an_xz_tarball_unpacks_with_the_xz_command_where_python_has_no_lzma(tmp_path, monkeypatch):
    xz = tarball(tmp_path, compression="xz")
    without_lzma(monkeypatch)
    with pytest.raises(tarfile.ReadError, match="lzma module is not available"):  # what tarfile alone does
        tarfile.open(xz, "r:*")
    top = build.extract(APR, xz, tmp_path / "out")
    assert (top / "README").read_bytes() == b"read me"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [TOP]  # the tar it unpacked is gone


def test_without_lzma_or_xz_the_message_names_the_package(tmp_path, monkeypatch):
    xz = tarball(tmp_path, compression="xz")
    without_lzma(monkeypatch)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingRequirementError, match="'xz' was not found") as e:
        build.extract(APR, xz, tmp_path / "out")
    assert "this Python has no lzma module" in e.value.why and "xz" in e.value.fix


def test_a_debian_index_is_read_in_the_compressions_this_python_has():
    assert [c for c, _ in debian._decompressors((("xz", "no_such_module"), ("gz", "gzip")))] == ["gz"]
    assert [c for c, _ in debian.COMPRESSIONS][:2] == ["xz", "gz"]  # this Python has lzma
