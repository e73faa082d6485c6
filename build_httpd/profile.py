"""What is built, and for which machine, described in one place.

A Profile says where the feature libraries (OpenSSL, nghttp2, brotli, zlib, expat, Lua, libxml2,
libcurl, Jansson, OpenLDAP) come from: the system's where found, else built in from their recipes
(`system`), or every one built in (`portable`). A
Target says which machine the binaries are for: an architecture (ARCHES), a C library (LIBCS)
and the oldest version of it they run on, the toolchain that compiles for it (TOOLCHAINS) and the
Debian release whose root builds its wheel. The engine asks these objects; it
never compares names. Adding a target is one row of recipes/systems/targets.toml (TARGETS).

This module only describes: it imports nothing of the engine and runs nothing (the build decides
and checks with what it reads here: whether a target's compiler and programs work is
build.check_target_runs, what a cross build's prefix records is relocate.recorded_toolchain, where
zig is toolchain.zig_command; `python -m build_httpd.profile` lists the targets)."""

from __future__ import annotations

import functools
import platform
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .errors import RecipeError, SettingError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

# The targets as data: architectures, C libraries, toolchains and target rows (load_targets).
TARGETS_FILE = Path(__file__).resolve().parent.parent / "recipes" / "systems" / "targets.toml"


@dataclass(frozen=True)
class Profile:
    name: str
    vendors: bool  # every feature library is built in from its recipe, none is the system's
    summary: str

    def environment(self, env: Dict[str, str], recipes) -> Dict[str, str]:
        """The build environment's additions for the libraries built in (`recipes` holds those
        the build builds): the hiding flags, and in a profile that builds every library in, no
        pkg-config search path of the system's (what the built-in archives need in turn is each
        component's: link_libs)."""
        env = dict(env)
        env["LDFLAGS"] = " ".join([env.get("LDFLAGS", "")] + link_flags(recipes)).strip()
        if self.vendors:
            env.pop("PKG_CONFIG_PATH", None)
        return env

    def build_environment(self, env: Dict[str, str], vendor: Path, recipes) -> Dict[str, str]:
        """During a build with libraries built in: the compiler, the linker and pkg-config find
        them before the system's (httpd's configure links libxml2 as a bare -lxml2; OpenLDAP's
        configure looks for OpenSSL's headers without pkg-config); in a profile that builds every
        library in, pkg-config sees nothing else. The headers through CPATH, which no configure
        script records (OpenSSL compiles its CPPFLAGS into the library, and they would name the
        build directory)."""
        if not any(r.vendored for r in recipes.values()):
            return env
        own = str(vendor / "lib" / "pkgconfig")
        pkg_config = ({"PKG_CONFIG_LIBDIR": own} if self.vendors else
                      {"PKG_CONFIG_PATH": ":".join(p for p in (own, env.get("PKG_CONFIG_PATH", "")) if p)})
        return dict(env, **pkg_config, CPATH=":".join(p for p in (str(vendor / "include"), env.get("CPATH", "")) if p),
                    LDFLAGS=f"-L{vendor / 'lib'} {env.get('LDFLAGS', '')}".strip())


def link_flags(recipes) -> List[str]:
    """Every symbol that comes from a built-in archive is made local to the module or program it
    is linked into (mod_ssl's OpenSSL is mod_ssl's alone: Python's _ssl in the same process binds
    to the system's libssl, and neither to the other). Only those archives: httpd's own
    (libmain.a, …) must keep exporting the API its modules link against."""
    archives = vendored_archives(recipes)
    return [f"-Wl,--exclude-libs,{':'.join(archives)}"] if archives else []


def link_libs(name: str, recipes, libs: str = "") -> str:
    """A component's LIBS: `libs` (the user's), then what the vendored archives need in turn
    (OpenSSL's -ldl -pthread, -lm), after them on every link, configure's tests included, when the
    component links any vendored archive. Not APR's: its configure would find dlopen in a -ldl there,
    record no -ldl of its own (apr-1-config --libs), and ab, which links APR's recorded libraries,
    would have none on glibc before 2.34 (Debian 11: dlclose undefined). A flag before the archives
    (LDFLAGS) does not do: that linker drops a shared library nothing needs yet. The same for every
    component that links them, so that they can share one autoconf cache."""
    seen, todo = set(), list(recipes[name].depends)
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo += recipes[dep].depends
    if not any(recipes[dep].vendored for dep in seen):
        return libs
    return " ".join(dict.fromkeys(libs.split() + [f for r in recipes.values() if r.vendored for f in r.link_also]))


def vendored_archives(recipes) -> list:
    """The file names of the static archives the vendored libraries install into vendor/lib."""
    return [a for r in recipes.values() if r.vendored for a in r.static_libs]


PROFILES: Dict[str, Profile] = {p.name: p for p in (
    Profile("system", False, "link the system's OpenSSL, nghttp2, brotli, zlib, expat, Lua, libxml2, libcurl, "
            "Jansson and OpenLDAP where their headers are found, and build in from the recipes those that are not"),
    Profile("portable", True, "build OpenSSL, nghttp2, brotli, zlib, expat, Lua, libxml2, libcurl and Jansson in, "
            "static, symbols hidden, and OpenLDAP as a shared library of its own"),
)}

@dataclass(frozen=True)
class Arch:
    machine: str  # as `uname -m` and wheel platform tags say it
    debian: str  # Debian's name (multiarch packages, debootstrap --arch)
    elf_machine: int  # e_machine in its ELF headers (EM_X86_64, EM_AARCH64)
    zig: str  # how zig names it in its libc header directories (lib/libc/include/<zig>-linux-gnu)


@dataclass(frozen=True)
class Libc:
    name: str
    abi: str  # the last part of the GNU triplet: x86_64-linux-<abi>
    tag: str  # the wheel platform tag's family: <tag>_<floor>_<machine>
    loader: str  # what its dynamic loader's name starts with (an executable's PT_INTERP)
    ldflags: str = ""  # linker flags every program for it gets (musl's: a thread stack Python can live in)
    # where a toolchain built for it puts its library (/lib/NAME -> PREFIX/lib/libc.so, {machine}
    # filled in): the loader its programs name, and the name a system of it has
    system_links: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Toolchain:
    """How a compiler for a target is called. The command templates see {gnu} (the target's GNU
    triplet with the build machine's binutils naming, e.g. aarch64-linux-gnu), {machine} and
    {floor}; the package templates {gnu} as Debian spells it in package names, and {debian}."""

    name: str
    why: str  # why this toolchain for the targets that use it
    native_cc: str  # on a build machine of the target's architecture
    cross_cc: str  # on another one
    native_packages: Tuple[str, ...] = ()  # Debian's packages that provide it ({debian}: the target's arch)
    cross_packages: Tuple[str, ...] = ()
    python_packages: Tuple[str, ...] = ()  # from the package index, to make it (ziglang)
    # whether a build machine of the target's own architecture and C library builds it with its
    # own cc (Alpine's gcc is a musl-gcc; Debian's gcc is the gcc row): not so for a glibc floor
    # older than the build machine's
    own_cc_will_do: bool = True
    # A toolchain no package provides is made by `python -m build_httpd.toolchain TARGET PREFIX`
    # (build_httpd/toolchain.py), which installs PREFIX/bin/<command> for the cc templates to call:
    # from a C library's recipe (recipes/toolchains/<recipe>.toml; the recipe installs `wraps`),
    # or, without a recipe, as a sysroot of the floor's glibc for the build machine's gcc (made
    # from zig's stub libraries and headers of that glibc version).
    command: str = ""
    recipe: str = ""
    wraps: str = ""


# The tools a build names by their plain names, which a cross toolchain prefixes with its triplet.
TOOLS = ("gcc", "gcc-ar", "gcc-nm", "gcc-ranlib", "g++", "cpp", "ar", "ranlib", "nm", "strip", "ld", "objdump",
          "objcopy", "readelf")


@dataclass(frozen=True)
class Target:
    arch: Arch
    libc: Libc
    floor: str  # the oldest version of the C library its binaries run on
    toolchain: Toolchain
    build_suite: str  # the Debian release whose root builds its wheel (ci/build-portable-wheel)
    cflags: str = ""  # what this row's compiler needs beyond its toolchain's command
    hosted: str = ""  # the cibuildwheel image that builds its wheel on the release's hosted CI, if one does

    @property
    def name(self) -> str:
        """Its wheel platform tag, which is also its name: manylinux_2_31_x86_64."""
        return f"{self.libc.tag}_{self.floor.replace('.', '_')}_{self.arch.machine}"

    @property
    def machine(self) -> str:
        return self.arch.machine

    @property
    def debian_arch(self) -> str:
        return self.arch.debian

    @property
    def triplet(self) -> str:
        """The GNU triplet of the binaries (autoconf's --host): x86_64-linux-musl."""
        return f"{self.machine}-linux-{self.libc.abi}"

    @property
    def gnu(self) -> str:
        """The triplet Debian's cross binutils for this architecture are prefixed with."""
        return f"{self.machine}-linux-gnu"

    @property
    def cross(self) -> bool:
        """Its programs are for another architecture: they run here only through qemu-user."""
        return self.machine != build_machine()

    @property
    def foreign(self) -> bool:
        """Its compiler is not the build machine's own cc for its own C library: configure is told
        the host triplet, and the installed prefix records the target's plain `cc` instead."""
        return self.cross or self.libc.name != host_libc() or not self.toolchain.own_cc_will_do

    @property
    def debian_packages(self) -> Tuple[str, ...]:
        """Debian's packages of its toolchain on this build machine."""
        return self.packages_for(self.cross)

    def packages_for(self, cross: bool) -> Tuple[str, ...]:
        """Debian's packages of its toolchain on a machine of another architecture (cross) or of
        its own (a test root of the target's architecture compiles mod_wsgi natively)."""
        chosen = self.toolchain.cross_packages if cross else self.toolchain.native_packages
        # Debian's package names have no underscore: gcc-x86-64-linux-gnu
        return tuple(p.format(gnu=self.gnu.replace("_", "-"), debian=self.debian_arch) for p in chosen)

    def tool(self, name: str) -> str:
        return f"{self.gnu}-{name}" if self.cross else name

    @property
    def wheel_platform(self) -> str:
        """The tag setuptools gives the wheel (auditwheel turns it into `name`)."""
        return f"linux_{self.machine}"

    @property
    def manylinux(self) -> str:
        return self.name

    def cc(self) -> str:
        template = self.toolchain.cross_cc if self.cross else self.toolchain.native_cc
        command = template.format(gnu=self.gnu, machine=self.machine, floor=self.floor)
        return f"{command} {self.cflags}".strip()

    def environment(self, env: Dict[str, str]) -> Dict[str, str]:
        """The compiler and binutils for this target. A build for the build machine's own C
        library keeps the user's CC (or cc), which also compiles the build's own helper programs
        (APR's gen_test_char; left to itself, APR's configure picks `gcc`, which on a machine
        whose cc is another C library's compiler may have no C library at all); any other target
        uses its toolchain, and the helpers are the build machine's, compiled with its cc. What is
        linked gets the C library's own flags (musl: a thread stack Python can live in)."""
        env = dict(env)
        if not self.foreign:
            env["CC"] = env.get("CC") or "cc"
            env.setdefault("CC_FOR_BUILD", env["CC"])
        else:
            env["CC"] = self.cc()
            for var, name in (("AR", "ar"), ("RANLIB", "ranlib"), ("NM", "nm"), ("STRIP", "strip")):
                env[var] = self.tool(name)
            env.setdefault("CC_FOR_BUILD", "cc")
        if self.libc.ldflags:
            env["LDFLAGS"] = f"{env.get('LDFLAGS', '')} {self.libc.ldflags}".strip()
        return env

    def configure_args(self, recipe) -> tuple:
        """A recipe's arguments for a foreign target (its `cross_configure`), filled in."""
        if not self.foreign:
            return ()
        return tuple(a.format(host=self.triplet, machine=self.machine, cc=self.cc().split()[0])
                     for a in recipe.cross_configure)

    def install_hint(self) -> str:
        packages = " ".join(self.debian_packages)
        hint = f"Debian: apt-get install {packages}" if packages else ""
        if self.cross:
            hint = f"dpkg --add-architecture {self.debian_arch}; " + hint
        if self.toolchain.python_packages:
            hint += (" and " if hint else "") + "pip install " + " ".join(self.toolchain.python_packages)
        if self.toolchain.command:
            hint += (f"; then make the toolchain: python -m build_httpd.toolchain {self.name} PREFIX"
                     + (" --loader" if self.toolchain.recipe else "") + ", and put PREFIX/bin on PATH")
        return hint


def _row(kind, table: dict, where: str, path: Path):
    """One row of the targets file as `kind`, every field by name: a field it does not have, or
    one missing, is an error naming the file and the row."""
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise RecipeError(f"{path}: {where} has unknown fields {', '.join(unknown)}",
                          f"its fields are {', '.join(sorted(known))}", "correct the row")
    try:
        return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in table.items()})
    except TypeError as e:
        raise RecipeError(f"{path}: {where} is incomplete", str(e), "add the missing fields") from None


def load_targets(path: Path = TARGETS_FILE):
    """The architectures, C libraries, toolchains and targets of the targets file: four tables,
    each keyed by name (a target's name is its wheel tag)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise RecipeError(f"cannot read the targets file {path}", str(e), "restore it from the repository") from None
    arches = {m: _row(Arch, dict(t, machine=m), f"[arches.{m}]", path) for m, t in data.get("arches", {}).items()}
    libcs = {n: _row(Libc, dict(t, name=n), f"[libcs.{n}]", path) for n, t in data.get("libcs", {}).items()}
    toolchains = {n: _row(Toolchain, dict(t, name=n), f"[toolchains.{n}]", path)
                  for n, t in data.get("toolchains", {}).items()}
    targets = {}
    for i, row in enumerate(data.get("targets", [])):
        where = f"[[targets]] row {i + 1}"
        for field, table in (("arch", arches), ("libc", libcs), ("toolchain", toolchains)):
            if row.get(field) not in table:
                raise RecipeError(f"{path}: {where} names {field} {row.get(field)!r}",
                                  f"the file's {field}s are {', '.join(table)}", f"correct the row's {field}")
        target = _row(Target, dict(row, arch=arches[row["arch"]], libc=libcs[row["libc"]],
                                   toolchain=toolchains[row["toolchain"]]), where, path)
        targets[target.name] = target
    return arches, libcs, toolchains, targets


ARCHES, LIBCS, TOOLCHAINS, TARGETS = load_targets()


def build_machine() -> str:
    return platform.machine()


@functools.lru_cache(maxsize=1)
def host_libc() -> str:
    """The C library of this machine's Python (the one a native build links)."""
    name = platform.libc_ver()[0]
    if not name and Path(f"/lib/ld-musl-{build_machine()}.so.1").exists():
        return "musl"
    return name or "glibc"


def default_target(machine: str, libc: str) -> Optional[Target]:
    """The target a machine and C library name when no floor is given: the newest floor (the
    toolchain nearest the build machine's own)."""
    rows = [t for t in TARGETS.values() if t.machine == machine and t.libc.name == libc]
    return max(rows, key=lambda t: tuple(int(p) for p in t.floor.split(".")), default=None)


def target_named(where: str, name: str) -> Target:
    """The target a setting names (`where` says which setting): its wheel tag, or a machine
    (uname -m or Debian's name) for that machine's glibc target."""
    key = name.strip().lower()
    arch = next((a for a in ARCHES.values() if key in (a.machine, a.debian)), None)
    found = TARGETS.get(key) or (default_target(arch.machine, "glibc") if arch else None)
    if found is None:
        raise SettingError(f"{where} is {name!r}", "the targets mod_wsgi-httpd knows are " + ", ".join(TARGETS)
                           + " (a machine's name alone, " + " or ".join(ARCHES) + ", means its glibc target)",
                           "use one of target=" + "|".join(TARGETS))
    return found


def host_target() -> Target:
    """The build machine's own target (a machine we have no row for builds natively all the
    same: the system profile needs no more than a compiler)."""
    machine, libc = build_machine(), host_libc()
    found = default_target(machine, libc)
    if found is not None:
        return found
    arch = ARCHES.get(machine) or Arch(machine, machine, 0, machine)
    return Target(arch, LIBCS.get(libc) or Libc(libc, "gnu", "linux", ""), "", TOOLCHAINS["gcc"], "")


def describe_targets() -> str:
    """One line per target: the list `python -m build_httpd.profile` prints."""
    rows = [(t.name, f"{t.libc.name} {t.floor}+", t.toolchain.name + (" (cross)" if t.cross else ""),
             f"Debian {t.build_suite} root") for t in TARGETS.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths + [0])).rstrip() for r in rows)


# What `python -m build_httpd.profile NAME FIELD` answers (ci/ scripts ask here, not in the code).
FIELDS = {
    "name": lambda t: t.name, "machine": lambda t: t.machine, "debian-arch": lambda t: t.debian_arch,
    "build-suite": lambda t: t.build_suite, "cross": lambda t: "yes" if t.cross else "",
    "debian-packages": lambda t: " ".join(t.debian_packages),
    "python-packages": lambda t: " ".join(t.toolchain.python_packages),
    "toolchain": lambda t: "yes" if t.toolchain.command else "", "cc": lambda t: t.cc(), "triplet": lambda t: t.triplet,
}


def main(argv: List[str]) -> int:
    """No arguments: the targets, one a line. NAME FIELD: that field of a target (NAME: its wheel
    tag, or a machine for its glibc target), for shell scripts."""
    if not argv:
        print(describe_targets())
        return 0
    if len(argv) != 2 or argv[1] not in FIELDS:
        print("usage: python -m build_httpd.profile [NAME FIELD]   FIELD: " + " | ".join(FIELDS), file=sys.stderr)
        return 2
    try:
        target = target_named("the target", argv[0])
    except SettingError as e:
        print(f"mod_wsgi-httpd: {e}", file=sys.stderr)
        return 2
    print(FIELDS[argv[1]](target))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
