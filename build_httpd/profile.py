"""What is built, and for which machine, decided in one place.

A Profile says where the feature libraries (OpenSSL, nghttp2, brotli, zlib, expat) come from: the
system (`system`) or recipes built in statically with their symbols hidden (`portable`). A Target
says which machine the binaries are for: architecture, C library and the oldest version of it they
run on, and the toolchain that compiles for it (the build machine's own, or a cross compiler).
The engine asks these two objects; it never compares names. Adding a target is one entry in
TARGETS (and, for its release build, a build root: ci/build-portable-wheel)."""

from __future__ import annotations

import platform
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping

from .errors import MissingRequirementError, SettingError


@dataclass(frozen=True)
class Profile:
    name: str
    vendors: bool  # the feature libraries are built from the recipes that name this profile
    summary: str

    def link_flags(self, recipes) -> List[str]:
        """Every symbol that comes from a vendored archive is made local to the module or program
        it is linked into (mod_ssl's OpenSSL is mod_ssl's alone: Python's _ssl in the same process
        binds to the system's libssl, and neither to the other). Only those archives: httpd's own
        (libmain.a, …) must keep exporting the API its modules link against."""
        archives = vendored_archives(recipes) if self.vendors else []
        return [f"-Wl,--exclude-libs,{':'.join(archives)}"] if archives else []

    def environment(self, env: Dict[str, str], recipes) -> Dict[str, str]:
        """The build environment's additions: the hiding flags, the libraries the vendored
        archives need on every link, and no pkg-config search path of the system's."""
        if not self.vendors:
            return env
        env = dict(env)
        env["LDFLAGS"] = " ".join([env.get("LDFLAGS", "")] + self.link_flags(recipes)).strip()
        also = [flag for r in recipes.values() if r.vendored for flag in r.link_also]
        env["LIBS"] = " ".join(dict.fromkeys(also + env.get("LIBS", "").split()))
        env.pop("PKG_CONFIG_PATH", None)
        return env

    def build_environment(self, env: Dict[str, str], vendor: Path) -> Dict[str, str]:
        """During a build: pkg-config sees the vendored libraries and nothing else, and the linker
        finds them first (httpd's configure links libxml2 as a bare -lxml2)."""
        if not self.vendors:
            return env
        return dict(env, PKG_CONFIG_LIBDIR=str(vendor / "lib" / "pkgconfig"),
                    LDFLAGS=f"-L{vendor / 'lib'} {env.get('LDFLAGS', '')}".strip())

    def configure_args(self, recipe) -> tuple:
        return recipe.portable_configure if self.vendors else ()

    def feature_dir(self, settings, feature: str, vendor: Path) -> str:
        """Where a feature's library is installed: the build's vendor prefix, or the user's
        -C FEATURE-dir (empty: wherever the compiler finds it)."""
        return str(vendor) if self.vendors else str(settings.feature_dirs.get(feature, ""))

    def decide(self, features, settings, recipes, cc: str, env) -> dict:
        from .features import decide, decide_vendored
        if self.vendors:
            return decide_vendored(features, settings, recipes)
        return decide(features, settings, cc, env)

    def check(self, stage: Path, vendor: Path, recipes, target: "Target") -> None:
        """The profile's promise, checked on the finished prefix."""
        if self.vendors:
            from .relocate import check_hidden
            check_hidden(stage, [vendor / "lib" / a for a in vendored_archives(recipes)], target.tool("nm"))


def vendored_archives(recipes) -> list:
    """The file names of the static archives the vendored libraries install into vendor/lib."""
    return [a for r in recipes.values() if r.vendored for a in r.static_libs]


PROFILES: Dict[str, Profile] = {p.name: p for p in (
    Profile("system", False, "link the system's OpenSSL, nghttp2, brotli, zlib and expat"),
    Profile("portable", True, "build OpenSSL, nghttp2, brotli, zlib, expat, Lua and libxml2 in, static, symbols hidden"),
)}

# The tools a build names by their plain names, which a cross toolchain prefixes with its triplet.
_TOOLS = ("gcc", "gcc-ar", "gcc-nm", "gcc-ranlib", "g++", "cpp", "ar", "ranlib", "nm", "strip", "ld", "objdump", "objcopy", "readelf")


@dataclass(frozen=True)
class Target:
    machine: str  # as `uname -m` and wheel platform tags say it
    debian_arch: str  # Debian's name (multiarch packages, debootstrap --arch)
    triplet: str  # GNU triplet: autoconf's --host, the cross toolchain's prefix
    libc: str = "glibc"
    libc_floor: str = "2.31"  # the oldest libc its portable wheel runs on: the build root's
    floor_suite: str = "bullseye"  # the Debian release whose libc that is (ci/build-portable-wheel)

    @property
    def cross(self) -> bool:
        return self.machine != build_machine()

    @property
    def cross_packages(self) -> tuple:
        """Debian's packages that compile for this target on another machine: the cross compiler
        and the target's C library (multiarch; libcrypt is APR-util's crypt())."""
        return (f"gcc-{self.triplet}", f"libc6-dev:{self.debian_arch}", f"libcrypt-dev:{self.debian_arch}")

    def tool(self, name: str) -> str:
        return f"{self.triplet}-{name}" if self.cross else name

    @property
    def wheel_platform(self) -> str:
        """The tag setuptools gives the wheel (auditwheel turns it into the manylinux one)."""
        return f"linux_{self.machine}"

    @property
    def manylinux(self) -> str:
        return f"manylinux_{self.libc_floor.replace('.', '_')}_{self.machine}"

    def environment(self, env: Dict[str, str]) -> Dict[str, str]:
        """The compiler and binutils for this target. A native build keeps the user's CC (or cc);
        a cross build uses the cross toolchain unless CC names one, and compiles the build's own
        helper programs (APR's gen_test_char) with the build machine's cc."""
        env = dict(env)
        if not self.cross:
            env["CC"] = env.get("CC") or "cc"
            return env
        env["CC"] = env.get("CC") or self.tool("gcc")
        for var, name in (("AR", "ar"), ("RANLIB", "ranlib"), ("NM", "nm"), ("STRIP", "strip")):
            env[var] = env.get(var) or self.tool(name)
        env.setdefault("CC_FOR_BUILD", "cc")
        return env

    def configure_args(self, recipe) -> tuple:
        """A recipe's cross-compiling arguments (its `cross_configure`), filled in; none natively."""
        if not self.cross:
            return ()
        return tuple(a.format(host=self.triplet, machine=self.machine, cc=self.tool("gcc"))
                     for a in recipe.cross_configure)

    def recorded_toolchain(self) -> Dict[str, str]:
        """What a cross build records in the installed prefix (config_vars.mk, apr-1-config,
        libtool, …) and what the target machine calls it: mod_wsgi builds there with `cc`."""
        if not self.cross:
            return {}
        names = {f"{self.triplet}-{tool}": {"gcc": "cc", "g++": "c++"}.get(tool, tool) for tool in _TOOLS}
        names[f"/usr/lib/gcc-cross/{self.triplet}/"] = f"/usr/lib/gcc/{self.triplet}/"
        return names

    def check_runs(self, env: Mapping[str, str]) -> None:
        """A cross build runs configure's test programs (and httpd's build-time helpers) for the
        target through binfmt_misc and qemu-user: their answers are the target's own. Stop before
        anything is fetched when that does not work."""
        if not self.cross:
            return
        with tempfile.TemporaryDirectory() as tmp:
            probe = Path(tmp) / "probe"
            (Path(tmp) / "probe.c").write_text("int main(void) { return 0; }\n")
            argv = shlex.split(env["CC"]) + [str(Path(tmp) / "probe.c"), "-o", str(probe)]
            try:
                built = subprocess.run(argv, capture_output=True, text=True, env=dict(env))
            except OSError as e:
                built = subprocess.CompletedProcess(argv, 127, "", str(e))
            if built.returncode != 0:
                raise MissingRequirementError(
                    f"the cross compiler for {self.machine} ({env['CC']}) does not work",
                    (built.stderr or "").strip()[:500],
                    f"install it (Debian: apt-get install gcc-{self.triplet} and, with dpkg --add-architecture "
                    f"{self.debian_arch}, libc6-dev:{self.debian_arch} libcrypt-dev:{self.debian_arch})")
            try:
                ran = subprocess.run([str(probe)], capture_output=True).returncode == 0
            except OSError:
                ran = False
        if not ran:
            raise MissingRequirementError(
                f"{self.machine} programs do not run on this {build_machine()} machine",
                "configure runs small test programs for the target, and httpd runs helpers it builds",
                f"register qemu-user for {self.machine} with binfmt_misc (Debian: apt-get install qemu-user-static "
                f"binfmt-support; mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; update-binfmts "
                f"--enable qemu-{self.machine}) and install the target's C library "
                f"(libc6:{self.debian_arch}), or build on a {self.machine} machine")


TARGETS: Dict[str, Target] = {t.machine: t for t in (
    Target("x86_64", "amd64", "x86_64-linux-gnu"),
    Target("aarch64", "arm64", "aarch64-linux-gnu"),
)}


def build_machine() -> str:
    return platform.machine()


def target_named(where: str, name: str) -> Target:
    """The target a setting names (`where` says which setting), by uname -m or Debian's name."""
    key = {"amd64": "x86_64", "arm64": "aarch64"}.get(name.strip().lower(), name.strip().lower())
    if key not in TARGETS:
        raise SettingError(f"{where} is {name!r}", "the targets mod_wsgi-httpd knows are " + ", ".join(TARGETS),
                           f"use one of target={'|'.join(TARGETS)}")
    return TARGETS[key]


def host_target() -> Target:
    """The build machine's own target (a machine we have no entry for builds natively all the
    same: the system profile needs no more than a compiler)."""
    machine = build_machine()
    return TARGETS.get(machine) or Target(machine, machine, f"{machine}-linux-gnu")

