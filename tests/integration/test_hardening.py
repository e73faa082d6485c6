"""Issue 5: hardened binaries, verified with readelf; nothing in the tree others can write."""

import os
import re
import stat

from .conftest import run
from .test_core import elf_files


def readelf(*args):
    return run(["readelf", "-W", *args]).stdout


def test_every_binary_is_pic_with_full_relro_and_a_non_executable_stack(venv):
    prefix = venv.prefix()
    problems = []
    files = list(elf_files(prefix))
    assert len(files) > 100
    for path in files:
        header = readelf("-h", path)
        if "Type:                              DYN" not in header:
            problems.append(f"{path}: not PIE/PIC ({re.search(r'Type:.*', header).group(0)})")
        segments = readelf("-l", path)
        if "GNU_RELRO" not in segments:
            problems.append(f"{path}: no RELRO segment")
        stack = re.search(r"GNU_STACK\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+(\w+)", segments)
        if not stack or "E" in stack.group(1):
            problems.append(f"{path}: executable or missing GNU_STACK")
        dynamic = readelf("-d", path)
        if not re.search(r"\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW", dynamic):
            problems.append(f"{path}: no BIND_NOW")
    assert problems == []


def test_stack_protector_and_fortify_are_compiled_in(venv):
    prefix = venv.prefix()
    symbols = {p: readelf("--dyn-syms", p) for p in elf_files(prefix)}
    protected = [p for p, s in symbols.items() if "__stack_chk_fail" in s]
    fortified = [p for p, s in symbols.items() if re.search(r"__\w+_chk\b", s.replace("__stack_chk_fail", ""))]
    # every file with a stack buffer gets the canary; not every tiny module has one
    assert prefix / "bin" / "httpd" in protected and prefix / "lib" / "libapr-1.so.0" in protected
    assert len(protected) > len(symbols) // 2
    assert prefix / "bin" / "httpd" in fortified and len(fortified) > 10


def test_nothing_in_the_tree_is_world_writable(venv):
    writable = [str(p) for p in venv.prefix().rglob("*") if os.lstat(p).st_mode & stat.S_IWOTH]
    assert writable == []


def test_link_hardening_does_not_leak_into_third_party_modules(venv):
    flags = run([venv.bin / "mod_wsgi-apxs", "-q", "CFLAGS", "LDFLAGS", "EXTRA_LDFLAGS"]).stdout
    assert "-Wl,-rpath" not in flags and "$ORIGIN" not in flags and "-Wl,-z,now" not in flags
