"""build_httpd/elf.py, the project's one ELF reader: against what binutils reads from a library
compiled here, and against files made byte by byte for the classes and byte orders this machine's
compiler does not produce (32-bit, big-endian: i686, armv7l, s390x targets)."""

import re
import shutil
import struct
import subprocess

import pytest

from build_httpd import elf


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A shared library with a SONAME, a RUNPATH, a build ID, an exported and a hidden function,
    and the static archive of the same object."""
    if not shutil.which("cc") or not shutil.which("readelf"):
        pytest.skip("needs a C compiler and binutils (build-essential)")
    d = tmp_path_factory.mktemp("elf")
    (d / "demo.c").write_text("#include <math.h>\nint demo_visible(int x) { return x + 1; }\n"
                              "__attribute__((visibility(\"hidden\"))) int demo_hidden(int x) { return x; }\n"
                              "double demo_sqrt(double x) { return sqrt(x); }\n")
    subprocess.run(["cc", "-fPIC", "-c", d / "demo.c", "-o", d / "demo.o"], check=True)
    subprocess.run(["cc", "-shared", "-Wl,-soname,libdemo.so.1", "-Wl,--build-id", "-Wl,--enable-new-dtags",
                    "-Wl,-rpath,$ORIGIN/../lib:/opt/x", d / "demo.o", "-lm", "-o", d / "libdemo.so.1"], check=True)
    subprocess.run(["ar", "rcs", d / "libdemo.a", d / "demo.o"], check=True)
    return d


def test_what_the_engine_reads_is_what_readelf_reads(library):
    lib = elf.read(library / "libdemo.so.1")
    dynamic = subprocess.run(["readelf", "-dW", library / "libdemo.so.1"], capture_output=True, text=True,
                             check=True).stdout
    notes = subprocess.run(["readelf", "-n", library / "libdemo.so.1"], capture_output=True, text=True).stdout
    assert lib.soname == "libdemo.so.1"
    assert lib.needed == re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", dynamic) and "libm.so.6" in lib.needed
    assert lib.runpaths == ["$ORIGIN/../lib", "/opt/x"]
    assert lib.build_id.hex() == re.search(r"Build ID: ([0-9a-f]+)", notes).group(1)
    assert "demo_visible" in lib.exported and "demo_hidden" not in lib.exported
    assert "sqrt" not in lib.exported  # needed from libm, not defined here
    assert lib.interpreter == ""  # a library names no loader
    assert any(v.startswith("GLIBC_") for v in lib.version_needs["libm.so.6"])  # sqrt's version
    assert elf.defined_globals(library / "libdemo.a") == {"demo_visible", "demo_hidden", "demo_sqrt"}


def test_an_executable_names_its_loader(library):
    (library / "main.c").write_text("int main(void) { return 0; }\n")
    subprocess.run(["cc", library / "main.c", "-o", library / "main"], check=True)
    assert elf.read(library / "main").interpreter.startswith("/lib")


def made(wide: bool, order: str) -> bytes:
    """An ELF file made byte by byte: a PT_INTERP program header and a dynamic section (NEEDED,
    SONAME, RUNPATH) with its string table, of the given class and byte order, EM_S390 (22)."""
    strings = b"\0libc.so.6\0libz.so.1\0libx.so.2\0$ORIGIN\0/lib/ld.so.1\0"
    at = {s: strings.index(s.encode() + b"\0") for s in ("libc.so.6", "libz.so.1", "libx.so.2", "$ORIGIN", "/lib/ld.so.1")}
    dyn_fmt, sh_fmt, ph_fmt = (("qQ", "IIQQQQIIQQ", "IIQQQQQQ") if wide else ("iI", "IIIIIIIIII", "IIIIIIII"))
    header_size, ph_size, sh_size = (64, 56, 64) if wide else (52, 32, 40)
    dynamic = b"".join(struct.pack(order + dyn_fmt, tag, value) for tag, value in
                       ((1, at["libc.so.6"]), (1, at["libz.so.1"]), (14, at["libx.so.2"]), (29, at["$ORIGIN"]), (0, 0)))
    ph_at = header_size
    strings_at = ph_at + ph_size
    dynamic_at = strings_at + len(strings)
    sh_at = dynamic_at + len(dynamic)
    interp = at["/lib/ld.so.1"] + strings_at
    if wide:
        program = struct.pack(order + ph_fmt, 3, 4, interp, 0, 0, 13, 13, 1)
    else:
        program = struct.pack(order + ph_fmt, 3, interp, 0, 0, 13, 13, 4, 1)
    sections = (struct.pack(order + sh_fmt, *([0] * 10))
                + struct.pack(order + sh_fmt, 0, 3, 0, 0, strings_at, len(strings), 0, 0, 1, 0)
                + struct.pack(order + sh_fmt, 0, 6, 0, 0, dynamic_at, len(dynamic), 1, 0, 8, 16 if wide else 8))
    ident = b"\x7fELF" + bytes([2 if wide else 1, 1 if order == "<" else 2, 1]) + bytes(9)
    if wide:
        header = ident + struct.pack(order + "HHIQQQIHHHHHH", 3, 22, 1, 0, ph_at, sh_at, 0, 64, ph_size, 1, sh_size, 3, 1)
    else:
        header = ident + struct.pack(order + "HHIIIIIHHHHHH", 3, 22, 1, 0, ph_at, sh_at, 0, 52, ph_size, 1, sh_size, 3, 1)
    return header + program + strings + dynamic + sections


@pytest.mark.parametrize("wide", [True, False], ids=["64-bit", "32-bit"])
@pytest.mark.parametrize("order", [">", "<"], ids=["big-endian", "little-endian"])
def test_every_class_and_byte_order_reads_alike(wide, order):
    f = elf.ELFFile(made(wide, order))
    assert (f.machine, f.interpreter, f.needed, f.soname, f.runpaths) == (
        22, "/lib/ld.so.1", ["libc.so.6", "libz.so.1"], "libx.so.2", ["$ORIGIN"])


def test_what_is_not_a_whole_elf_file_is_an_error_not_an_empty_answer(tmp_path):
    with pytest.raises(elf.ELFError, match="not an ELF file"):
        elf.ELFFile(b"#!/bin/sh\n" * 10)
    with pytest.raises(elf.ELFError):
        elf.ELFFile(made(True, ">")[:200]).needed
    (tmp_path / "x.a").write_bytes(b"not an archive")
    with pytest.raises(elf.ELFError, match="not a static archive"):
        elf.defined_globals(tmp_path / "x.a")
