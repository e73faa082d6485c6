"""Make the toolchain a target's row names when no package of the build machine provides it, under
a prefix of the caller's choosing: a C library from its recipe in recipes/toolchains/ with its
compiler wrapper (musl, for the musllinux targets), or a sysroot of an older glibc for the build
machine's gcc (the manylinux_2_28 targets: zig's stub libraries and headers of that version).

    python -m build_httpd.toolchain TARGET PREFIX [--sources DIR] [--loader]

TARGET is a row of recipes/systems/targets.toml (its wheel tag). A recipe's source is found and
verified as every recipe's is (DIR, the recipe's URLs, Debian's archive) and compiled with the build
machine's gcc for the target's architecture. Either is staged, then moved into PREFIX; PREFIX/bin gets the
command the target's cc calls (x86_64-linux-musl-gcc, x86_64-linux-gnu2.28-gcc): put PREFIX/bin
on PATH. --loader (as root, in a build
or test root) links the C library's dynamic loader where its programs look for it
(musl: /lib/ld-musl-<arch>.so.1) and under the name its system has (/lib/libc.musl-<arch>.so.1), so
that configure's test programs run here (through qemu-user for another architecture)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from . import elf
from .build import extract
from .console import say
from .errors import BuildError, SettingError, format_error
from .profile import Target, target_named
from .recipes import RECIPES_DIR, Recipe, load_recipe
from .run import run, tool_output
from .sources import Places, obtain_sources

TOOLCHAINS_DIR = RECIPES_DIR / "toolchains"
BINUTILS = ("ar", "ranlib", "nm", "strip", "ld", "objdump", "objcopy", "readelf", "as")


def zig_command() -> str:
    """zig from the `ziglang` package (the package index's build of zig), where it is installed."""
    spec = importlib.util.find_spec("ziglang")
    if spec is None or not spec.submodule_search_locations:
        return "zig"
    return str(Path(list(spec.submodule_search_locations)[0]) / "zig")


def toolchain_recipes(directory: Path = TOOLCHAINS_DIR) -> Dict[str, Recipe]:
    """Every toolchain recipe, by name (ci/release_sources.py carries their sources too)."""
    return {p.stem: load_recipe(p) for p in sorted(directory.glob("*.toml"))}


def recipe_for(target: Target, directory: Path = TOOLCHAINS_DIR) -> Recipe:
    if not target.toolchain.recipe:
        raise SettingError(f"the toolchain of {target.name} ({target.toolchain.name}) is not built from a recipe",
                           "its compiler comes from the build machine's packages",
                           f"install them ({target.install_hint()})")
    return load_recipe(directory / f"{target.toolchain.recipe}.toml")


def configure_args(recipe: Recipe, target: Target, prefix: Path) -> List[str]:
    return [a.format(prefix=prefix, gnu=target.gnu, machine=target.machine, cc=target.tool("gcc"),
                     cross_compile=f"{target.gnu}-" if target.cross else "")
            for a in recipe.configure]


def build_toolchain(target: Target, prefix: Path, sources_dir: Optional[Path] = None, jobs: int = 0) -> Path:
    """Make the target's toolchain in prefix; the command its compiler is called by."""
    if not target.toolchain.command:
        raise SettingError(f"the toolchain of {target.name} ({target.toolchain.name}) is not made here",
                           "its compiler comes from the build machine's packages",
                           f"install them ({target.install_hint()})")
    prefix = prefix.resolve()
    command = prefix / "bin" / target.toolchain.command.format(machine=target.machine, floor=target.floor)
    if command.exists():
        say(f"the {target.name} toolchain is already in {prefix}")
        return command
    if prefix.exists() and any(prefix.iterdir()):
        raise SettingError(f"{prefix} is not empty and holds no {command.name}",
                           "a toolchain is installed into a directory of its own",
                           "name a new directory, or remove this one")
    with tempfile.TemporaryDirectory(prefix="toolchain-") as tmp:
        work = Path(tmp)
        make = _from_recipe if target.toolchain.recipe else _glibc_sysroot
        staged = make(target, prefix, work, sources_dir, jobs)
        # the target's binutils under the compiler's prefix too, as a cross toolchain has them:
        # CMake looks for the archiver beside the compiler, by the compiler's prefix
        for tool in BINUTILS:
            found = shutil.which(target.tool(tool))
            if found:
                (staged / "bin" / f"{command.name[:-len('gcc')]}{tool}").symlink_to(found)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        if prefix.exists():
            prefix.rmdir()
        shutil.move(str(staged), str(prefix))
    say(f"the {target.name} toolchain ({target.toolchain.name}) is in {prefix}; its compiler is {command}")
    return command


def _from_recipe(target: Target, prefix: Path, work: Path, sources_dir: Optional[Path], jobs: int) -> Path:
    """A C library built from its recipe and installed with its compiler wrapper: the staged prefix."""
    recipe = recipe_for(target)
    tarball = obtain_sources([recipe.source], work, Places(sources_dir=sources_dir))[recipe.source.filename]
    src = extract(recipe, tarball, work)
    # what the target's every compilation needs (aarch64: no outline atomics, whose helpers in
    # gcc's libgcc call glibc's private __getauxval) applies to the C library too
    env = dict(os.environ, CFLAGS=f"{os.environ.get('CFLAGS', '')} {target.cflags}".strip())
    step = dict(component=recipe.name, log_path=work / "logs" / f"{recipe.name}.log", cwd=src, env=env)
    say(f"{recipe.name} {recipe.version} for {target.name}: building")
    try:
        run(["./configure", *configure_args(recipe, target, prefix)], step="configure", **step)
        run(["make", f"-j{jobs or os.cpu_count() or 1}"], step="make", **step)
        run(["make", "install", f"DESTDIR={work / 'stage'}"], step="make install", **step)
    except BuildError:
        keep = Path(tempfile.mkdtemp(prefix=f"{recipe.name}-log-"))
        shutil.copy2(step["log_path"], keep)
        say(f"{recipe.name}: the build's log is kept in {keep}")
        raise
    staged = work / "stage" / prefix.relative_to("/")
    for name in recipe.license_files:
        shutil.copy2(src / name, staged / name)
    (staged / "bin" / target.toolchain.command.format(machine=target.machine)).symlink_to(target.toolchain.wraps)
    return staged


# what zig makes for a glibc version besides libc.so.6 (its stub of the loader is libld.so.2)
_STUB_LIBRARIES = ("m", "pthread", "dl", "rt", "util", "resolv")


def _glibc_sysroot(target: Target, prefix: Path, work: Path, sources_dir: Optional[Path], jobs: int) -> Path:
    """A sysroot of the target's glibc version for the build machine's gcc: zig's stub libraries
    (every symbol of that version and none newer, so a link that needs a newer one fails), its
    libc_nonshared.a and crt1.o for that version, and its headers of that version; crti.o/crtn.o
    and libcrypt (which glibc 2.28 still had) from the build machine. The wrapper compiles with
    those headers alone and links with GNU ld and gcc's own crtbegin/crtend: the staged prefix."""
    gcc = target.tool("gcc")

    def build_machine_file(name: str) -> Path:
        found = Path(tool_output([gcc, f"-print-file-name={name}"], f"to find {name}").strip())
        if not found.is_absolute():
            raise SettingError(f"{gcc} has no {name}", "the sysroot takes it from the build machine",
                               f"install {target.install_hint()}")
        return found.resolve()

    libcrypt = build_machine_file("libcrypt.so.1")
    needs = _newest_glibc(elf.read(libcrypt).version_needs.get("libc.so.6", []))
    if needs > _version(target.floor):
        raise SettingError(f"this machine's {libcrypt} needs glibc {'.'.join(map(str, needs))}, newer than "
                           f"{target.name}'s floor, {target.floor}",
                           "the wheel carries the build machine's libcrypt (glibc 2.28 still had crypt(); zig has "
                           "no stub of it), so it would not run where the tag promises",
                           "make the toolchain and build on Debian 11 (bullseye), whose libcrypt needs glibc 2.25: "
                           "ci/build-portable-wheel does")
    zig = zig_command()
    zig_lib = Path(zig).parent / "lib"
    if not (zig_lib / "libc" / "include" / "generic-glibc").is_dir():
        raise SettingError(f"zig was not found (looked for {zig})", "the sysroot is made from the ziglang "
                           "package's glibc stubs and headers", f"install it ({target.install_hint()})")
    env = dict(os.environ, ZIG_GLOBAL_CACHE_DIR=str(work / "zig-cache"), ZIG_LOCAL_CACHE_DIR=str(work / "zig-local"))
    (work / "probe.c").write_text("int main(void) { return 0; }\n")
    say(f"glibc {target.floor} stubs for {target.machine}: asking zig")
    run([zig, "cc", "-target", f"{target.machine}-linux-gnu.{target.floor}", "probe.c", "-o", "probe",
         *[f"-l{name}" for name in _STUB_LIBRARIES]], component="zig", step="glibc stubs",
        log_path=work / "logs" / "zig.log", cwd=work, env=env)
    made = {p.name: p for p in (work / "zig-cache").rglob("*") if p.is_file()}
    staged = work / "stage"
    sysroot, gnu = staged / "sysroot", target.gnu
    lib, include = sysroot / "usr" / "lib" / gnu, sysroot / "usr" / "include"
    lib.mkdir(parents=True)
    (staged / "bin").mkdir()
    headers = zig_lib / "libc" / "include"
    # zig's order of precedence: <arch>-linux-gnu, generic-glibc, <arch>-linux-any, any-linux-any
    for part in ("any-linux-any", f"{target.arch.zig}-linux-any", "generic-glibc"):
        shutil.copytree(headers / part, include, dirs_exist_ok=True)
    shutil.copytree(headers / f"{target.arch.zig}-linux-gnu", include / gnu)
    loader = ""
    for name, path in made.items():
        if name == "libld.so.2":
            loader = elf.read(path).soname
            if not loader:
                raise BuildError(f"zig's loader stub {path} has no SONAME", "the sysroot names its loader by it",
                                 "report this as a bug in mod_wsgi-httpd, with the ziglang version")
            shutil.copy2(path, lib / loader)
        elif name.startswith("lib") and ".so." in name:
            shutil.copy2(path, lib / name)
            if name != "libc.so.6":
                (lib / name.split(".so.")[0]).with_suffix(".so").symlink_to(name)
    (lib / "libc.so").write_text(f"GROUP ( /usr/lib/{gnu}/libc.so.6 /usr/lib/{gnu}/libc_nonshared.a "
                                 f"AS_NEEDED ( /usr/lib/{gnu}/{loader} ) )\n")
    shutil.copy2(made["libc_nonshared.a"], lib)
    shutil.copy2(made["crt1.o"], lib / "crt1.o")
    shutil.copy2(made["crt1.o"], lib / "Scrt1.o")
    for name in ("crti.o", "crtn.o"):
        shutil.copy2(build_machine_file(name), lib / name)
    shutil.copy2(libcrypt, lib / "libcrypt.so.1")
    (lib / "libcrypt.so").symlink_to("libcrypt.so.1")
    for candidate in (Path("/usr/include/crypt.h"), Path(f"/usr/{gnu}/include/crypt.h")):
        if candidate.is_file():
            shutil.copy2(candidate, include / "crypt.h")
            break
    gcc_include = Path(tool_output([gcc, "-print-file-name=include"], "to find gcc's own headers").strip())
    fixed = gcc_include.parent / "include-fixed"
    minor = target.floor.split(".")[1]
    own = f"-isystem {gcc_include}" + (f" -isystem {fixed}" if fixed.is_dir() else "")
    wrapper = staged / "bin" / target.toolchain.command.format(machine=target.machine, floor=target.floor)
    at = prefix / "sysroot"
    wrapper.write_text(f"#!/bin/sh\n# gcc against glibc {target.floor} (python -m build_httpd.toolchain)\n"
                       f"exec {gcc} --sysroot={at} -nostdinc {own} -isystem {at}/usr/include/{gnu} "
                       f"-isystem {at}/usr/include -D__GLIBC_MINOR__={minor} -B{at}/usr/lib/{gnu}/ "
                       f"-L{at}/usr/lib/{gnu} \"$@\"\n")
    wrapper.chmod(0o755)
    return staged


def _version(text: str) -> Tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def _newest_glibc(versions: List[str]) -> Tuple[int, ...]:
    """The newest of the GLIBC_x.y versions a file needs of libc."""
    return max((_version(v[len("GLIBC_"):]) for v in versions if re.fullmatch(r"GLIBC_\d+(\.\d+)+", v)),
               default=(0,))


def link_loader(target: Target, prefix: Path, root: Path = Path("/")) -> List[Path]:
    """The C library's loader where the programs linked with it look for it, and its system name."""
    library = prefix.resolve() / "lib" / "libc.so"
    made = []
    for name in target.libc.system_links:
        link = root / "lib" / name.format(machine=target.machine)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(library)
        made.append(link)
    return made


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m build_httpd.toolchain", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="a target's name (its wheel tag): python -m build_httpd.profile lists them")
    parser.add_argument("prefix", type=Path, help="where the toolchain is installed")
    parser.add_argument("--sources", type=Path, help="a directory that may hold the source tarball")
    parser.add_argument("--loader", action="store_true",
                        help="link the C library's loader into /lib (as root, in a build or test root)")
    args = parser.parse_args(argv)
    try:
        target = target_named("the target", args.target)
        command = build_toolchain(target, args.prefix, args.sources)
        if args.loader:
            for link in link_loader(target, args.prefix):
                say(f"{link} -> {os.readlink(link)}")
    except BuildError as e:
        sys.stderr.write(format_error(e))
        return 1
    print(command)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
