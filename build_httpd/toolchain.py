"""Build the toolchain a target's row names when no package of the build machine provides it: a
C library from its recipe in recipes/toolchains/ (musl, for the musllinux targets), installed with
its compiler wrapper under a prefix of the caller's choosing.

    python -m build_httpd.toolchain TARGET PREFIX [--sources DIR] [--loader]

TARGET is a row of TARGETS (its wheel tag). The source is found and verified as every recipe's is
(DIR, the recipe's URLs, Debian's archive). It is compiled with the build machine's gcc for the
target's architecture, staged, then moved into PREFIX; PREFIX/bin gets the command the target's
toolchain calls ({machine}-linux-musl-gcc): put PREFIX/bin on PATH. --loader (as root, in a build
or test root) links the C library's dynamic loader where its programs look for it
(musl: /lib/ld-musl-<arch>.so.1) and under the name its system has (/lib/libc.musl-<arch>.so.1), so
that configure's test programs run here (through qemu-user for another architecture)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

from .build import extract
from .console import say
from .errors import BuildError, SettingError, format_error
from .profile import Target, target_named
from .recipes import RECIPES_DIR, Recipe, load_recipe
from .run import run
from .sources import obtain_sources

TOOLCHAINS_DIR = RECIPES_DIR / "toolchains"
BINUTILS = ("ar", "ranlib", "nm", "strip", "ld", "objdump", "objcopy", "readelf", "as")


def toolchain_recipes(directory: Path = TOOLCHAINS_DIR) -> Dict[str, Recipe]:
    """Every toolchain recipe, by name (ci/release-sources carries their sources too)."""
    return {p.stem: load_recipe(p) for p in sorted(directory.glob("*.toml"))}


def recipe_for(target: Target, directory: Path = TOOLCHAINS_DIR) -> Recipe:
    if not target.toolchain.recipe:
        raise SettingError(f"the toolchain of {target.name} ({target.toolchain.name}) is not built from a recipe",
                           "its compiler comes from the build machine's packages",
                           f"install them ({target.install_hint()})")
    return load_recipe(directory / f"{target.toolchain.recipe}.toml")


def configure_args(recipe: Recipe, target: Target, prefix: Path) -> List[str]:
    compiler = "gcc" if not target.cross else f"{target.gnu}-gcc"
    return [a.format(prefix=prefix, gnu=target.gnu, machine=target.machine, cc=compiler,
                     cross_compile=f"{target.gnu}-" if target.cross else "")
            for a in recipe.configure]


def build_toolchain(target: Target, prefix: Path, sources_dir: Optional[Path] = None, jobs: int = 0) -> Path:
    """Build and install the target's toolchain into prefix; the command its compiler is called by."""
    recipe = recipe_for(target)
    prefix = prefix.resolve()
    command = prefix / "bin" / target.toolchain.command.format(machine=target.machine)
    if command.exists():
        say(f"{recipe.name} {recipe.version} for {target.name}: already in {prefix}")
        return command
    if prefix.exists() and any(prefix.iterdir()):
        raise SettingError(f"{prefix} is not empty and holds no {command.name}",
                           "a toolchain is installed into a directory of its own",
                           "name a new directory, or remove this one")
    with tempfile.TemporaryDirectory(prefix="toolchain-") as tmp:
        work = Path(tmp)
        tarball = obtain_sources([recipe.source], sources_dir, None, work)[recipe.source.filename]
        src = extract(recipe, tarball, work)
        logs = work / "logs"
        # what the target's every compilation needs (aarch64: no outline atomics, whose helpers
        # in gcc's libgcc call glibc's private __getauxval) applies to the C library too
        env = dict(os.environ, CFLAGS=f"{os.environ.get('CFLAGS', '')} {target.cflags}".strip())
        step = dict(component=recipe.name, log_path=logs / f"{recipe.name}.log", cwd=src, env=env)
        say(f"{recipe.name} {recipe.version} for {target.name}: building (its log: {step['log_path']})")
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
        (staged / "bin" / command.name).symlink_to(target.toolchain.wraps)
        # the target's binutils under its triplet too, as a cross toolchain has them: CMake looks
        # for the archiver beside the compiler, by the compiler's prefix
        for tool in BINUTILS:
            found = shutil.which(target.tool(tool))
            if found:
                (staged / "bin" / f"{target.triplet}-{tool}").symlink_to(found)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        if prefix.exists():
            prefix.rmdir()
        shutil.move(str(staged), str(prefix))
    say(f"{recipe.name} {recipe.version} for {target.name}: installed in {prefix}; its compiler is {command}")
    return command


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
