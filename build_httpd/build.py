"""The engine: fixed phases per component — fetch → verify → extract → patch → configure → build →
install — then relocate the finished prefix. Recipes supply only data."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shlex
import shutil
import subprocess
import tarfile
import tempfile
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Dict, Iterator, Mapping, Optional, Tuple

from . import cache, conftree, features, relocate, report
from .console import phase, say
from .errors import BuildError, MissingRequirementError, RecipeError
from .features import Decision, chosen_recipes
from .profile import build_machine, host_libc, link_flags, link_libs, vendored_archives
from .recipes import PATCHES_DIR, ROOT, Recipe, all_features, every_recipe
from .run import run, which
from .settings import Settings
from .sources import Places, obtain_sources

# The prefix compiled into the binaries. It is never where the files are: they are installed with
# DESTDIR and then relocated, and httpd takes its default ServerRoot from its own location
# (patches/httpd-server-root-from-executable.patch). A root-owned, non-existent path, so that
# nothing compiled in can point into a directory someone else could create.
PREFIX = "/mod_wsgi.httpd"
# How the (temporary) build directory is named wherever a built file would otherwise name it.
BUILD_DIR_SHOWN = relocate.shown_build_dir(PREFIX)

# Free space a build needs (measured: the build directory peaks near 200 MB on x86_64; twice that,
# for compilers and architectures that write more) and an entry of the build cache with its sources.
BUILD_SPACE = 400 << 20
CACHE_SPACE = 64 << 20

# Hardening for everything we compile (full RELRO, stack protector, fortify); docs/reliability.md.
HARDENING_CFLAGS = "-fstack-protector-strong -fPIC"
HARDENING_CPPFLAGS = "-D_FORTIFY_SOURCE=2"
HARDENING_LDFLAGS = "-Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack"


def source_date_epoch(recipes: Mapping[str, Recipe]) -> str:
    """SOURCE_DATE_EPOCH as given, or the httpd recipe's, so that a plain build is reproducible."""
    return os.environ.get("SOURCE_DATE_EPOCH") or str(recipes["httpd"].source_date_epoch)


def pip_cmake_bin() -> Optional[str]:
    """The directory of the cmake program of CMake from the package index, when this Python has
    it (get_requires_for_build_wheel asks pip for it on a machine without CMake). Its `cmake`
    command is a Python script that needs this Python's module path, which the build's
    environment does not pass on; the program itself needs nothing."""
    if importlib.util.find_spec("cmake") is None:
        return None
    try:
        import cmake
    except (ImportError, AssertionError):  # a broken installation: the PATH's cmake, if any, is used
        return None
    return cmake.CMAKE_BIN_DIR if os.path.isfile(os.path.join(cmake.CMAKE_BIN_DIR, "cmake")) else None


def build_env(settings: Settings, epoch: str) -> Dict[str, str]:
    """The environment the features are decided in and (with the profile's additions for the
    libraries built in, Profile.environment) everything compiles in."""
    env = dict(os.environ)
    env["SOURCE_DATE_EPOCH"] = epoch  # gcc's __DATE__/__TIME__ (httpd -V "Server built")
    for var in ("PYTHONPATH", "PYTHONHOME", "MAKEFLAGS", "MFLAGS", "DESTDIR"):
        env.pop(var, None)
    cmake_bin = pip_cmake_bin()
    if cmake_bin:
        env["PATH"] = os.pathsep.join(p for p in (cmake_bin, env.get("PATH", "")) if p)
    env = settings.target.environment(env)
    optimise = "-O2" if settings.strip else "-O2 -g"
    env["CFLAGS"] = f"{optimise} {HARDENING_CFLAGS} {env.get('CFLAGS', '')}".strip()
    env["CPPFLAGS"] = f"{HARDENING_CPPFLAGS} {env.get('CPPFLAGS', '')}".strip()
    env["LDFLAGS"] = f"{HARDENING_LDFLAGS} {env.get('LDFLAGS', '')}".strip()
    env["LC_ALL"] = "C"
    return env


def check_toolchain(env: Mapping[str, str]) -> str:
    """Fail before anything is fetched when the basic tools are missing (what only a library built
    in needs, CMake or Perl, is the features' decision); returns `cc --version`."""
    cc = which(env["CC"], "to compile Apache httpd (set CC to name another compiler)", env)
    which("make", "to run the upstream build systems", env)
    which("patch", "to apply the patches in patches/", env)
    which("patchelf", relocate.PATCHELF_WHY, env)  # needed at the end: missed there, the whole build is lost
    probe = subprocess.run(shlex.split(env["CC"]) + ["--version"], capture_output=True, text=True, env=dict(env))
    if probe.returncode != 0:
        raise MissingRequirementError(f"the C compiler {cc} does not run", probe.stderr.strip()[:500],
                                      "check the compiler installation or set CC to a working one")
    return probe.stdout.splitlines()[0] if probe.stdout else cc


# Python 3.12+ and the 2023 security backports of 3.8-3.11 have extraction filters; Debian 12's
# 3.11.2 and Debian 11's 3.9.2 do not. Without them, safe_members() is the whole defence.
HAS_TAR_FILTERS = hasattr(tarfile, "data_filter")



def check_target_runs(target, env: Mapping[str, str]) -> None:
    """A foreign build runs configure's test programs (and httpd's build-time helpers) for the
    target: natively when the target's C library is installed here, else through binfmt_misc
    and qemu-user. Their answers are the target's own. Stop before anything is fetched when
    the compiler or running its programs does not work."""
    if not target.foreign:
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
                f"the compiler for {target.name} ({env['CC']}) does not work",
                (built.stderr or "").strip()[:500],
                f"install its toolchain ({target.toolchain.why}): "
                + target.install_hint())
        try:
            ran = subprocess.run([str(probe)], capture_output=True).returncode == 0
        except OSError:
            ran = False
    if not ran:
        how = (f"register qemu-user for {target.machine} with binfmt_misc (Debian: apt-get install qemu-user-static "
               f"binfmt-support; mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; update-binfmts "
               f"--enable qemu-{target.machine}) and " if target.cross else "")
        raise MissingRequirementError(
            f"{target.name} programs do not run on this {build_machine()} {host_libc()} machine",
            "configure runs small test programs for the target, and httpd runs helpers it builds",
            f"{how}install the target's C library ({target.install_hint()}), or build on a {target.name} machine")

def safe_members(tar: tarfile.TarFile, tarball: Path, skipped: Tuple[str, ...] = ()) -> Iterator[tarfile.TarInfo]:
    """The members of a source tarball, each a regular file or a directory under the top folder,
    with modes masked (no setuid/setgid/sticky bits, nothing writable by group or others) and
    owned by whoever extracts; anything else stops the build."""
    for member in tar:
        name = member.name
        if name in skipped or name.startswith(tuple(s + "/" for s in skipped)):
            continue
        parts = PurePosixPath(name).parts
        if name.startswith("/") or ".." in parts or not parts:
            raise RecipeError(f"{tarball.name} holds an entry with an unsafe path: {name!r}",
                              "a source tarball unpacks below its own folder", "check where the tarball came from")
        if not (member.isfile() or member.isdir()):
            kind = ("a symbolic link" if member.issym() else "a hard link" if member.islnk() else
                    "a device or FIFO")
            raise RecipeError(f"{tarball.name} holds {name!r}, which is {kind}",
                              "only regular files and directories are unpacked from a source tarball",
                              "check where the tarball came from")
        member.mode &= 0o755
        member.uid, member.gid, member.uname, member.gname = os.geteuid(), os.getegid(), "", ""
        yield member


def extract(recipe: Recipe, tarball: Path, into: Path) -> Path:
    skipped = tuple(f"{recipe.source_dir_name}/{s.strip('/')}" for s in recipe.source.skip)
    with _opened(tarball) as tar:
        members = safe_members(tar, tarball, skipped)
        if HAS_TAR_FILTERS:
            tar.extractall(into, members=members, filter="data")
        else:
            tar.extractall(into, members=members)
    top = into / recipe.source_dir_name
    if not top.is_dir():
        raise RecipeError(f"{tarball.name} did not unpack into {recipe.source_dir_name}/",
                          "the recipe's version and the tarball disagree", f"correct {recipe.path.name}")
    return top


@contextmanager
def _opened(tarball: Path) -> Iterator[tarfile.TarFile]:
    """A source tarball, open: gzip, or xz (libxml2 as Debian carries it). Where this Python has no
    lzma (it was compiled without liblzma's headers, as a pyenv or self-built Python may be), the
    `xz` command unpacks an .xz into a scratch directory first."""
    if not tarball.name.endswith(".xz") or importlib.util.find_spec("_lzma") is not None:
        with tarfile.open(tarball, "r:*") as tar:
            yield tar
        return
    xz = which("xz", f"to unpack {tarball.name}: this Python has no lzma module")
    with tempfile.TemporaryDirectory() as scratch:
        plain = Path(scratch) / tarball.name[:-len(".xz")]
        with open(plain, "wb") as out:
            result = subprocess.run([xz, "-dc", str(tarball)], stdout=out, stderr=subprocess.PIPE, text=True)
        if result.returncode != 0:
            raise BuildError(f"xz could not unpack {tarball.name}: {result.stderr.strip()}",
                             "this Python has no lzma module, so the xz command was asked to",
                             "use a Python compiled with lzma, or check the xz command and the tarball")
        with tarfile.open(plain, "r:") as tar:
            yield tar


def apply_patches(recipe: Recipe, src: Path, logs: Path, env) -> None:
    for patch in recipe.patches:
        log = logs / f"{recipe.name}-patch.log"
        try:
            run(["patch", "-p1", "--forward", "--batch", "--no-backup-if-mismatch", "-i", str(PATCHES_DIR / patch)],
                component=recipe.name, step=f"patch {patch}", log_path=log, cwd=src, env=env)
        except BuildError as e:
            raise RecipeError(f"patch {patch} does not apply to {recipe.source_dir_name}",
                              f"patch said:\n{getattr(e, 'why', '')}",
                              f"refresh patches/{patch} against the new source, or drop it from {recipe.path.name}")


def configure_args(recipe: Recipe, stage: Path, decisions: Mapping[str, Decision], settings: Settings,
                   config_cache: Path, vendor: Path):
    """The arguments after the recipe's configure command: the recipe's, then the target's, then
    the features'. Libraries built in install straight into `vendor` (a private directory of the
    build, never installed), where the components are pointed for the features built in."""
    mine = [d for d in decisions.values() if d.feature.component == recipe.name]
    modules = list(recipe.modules) + [m for d in mine if d.built for m in d.feature.modules]
    prefix = vendor if recipe.vendored else PREFIX
    args = [a.format(prefix=prefix, stage=stage, modules=" ".join(modules), config_cache=config_cache)
            for a in recipe.configure]
    args += settings.target.configure_args(recipe)
    for d in decisions.values():
        if d.feature.component == recipe.name or any(c == recipe.name for c, *_ in d.feature.elsewhere):
            directory = vendor if d.builtin else settings.feature_dirs.get(d.feature.library_feature, "")
            args += d.configure_args(str(directory), recipe.name)
    return args


def config_cache(work: Path, libs: str) -> Path:
    """The autoconf cache a component's configure shares with the others that link the same
    libraries (autoconf refuses a cache written with other LIBS): the later ones skip the checks
    the first one ran."""
    return work / (f"config-{hashlib.sha256(libs.encode()).hexdigest()[:12]}.cache" if libs else "config.cache")


@dataclass(frozen=True)
class Plan:
    """What a build was decided to be before anything compiles: the settings, the recipes, the
    features' decisions, the build environment, the compiler and the build cache key."""
    settings: Settings
    recipes: Dict[str, Recipe]
    decisions: Dict[str, Decision]
    env: Dict[str, str]
    compiler: str  # `cc --version`'s first line
    key: str


@dataclass(frozen=True)
class Workspace:
    """A build's private directory and the places in it, named once: sources unpacked in src/, a
    component installed into its own dest-NAME/ first, the whole prefix staged in dest/, the
    built-in libraries in vendor/ (never installed), the logs (which outlive a failure)."""
    root: Path

    @property
    def stage_root(self) -> Path:
        return self.root / "dest"

    @property
    def stage(self) -> Path:
        """The prefix as staged: dest/ + the compiled-in prefix."""
        return self.stage_root / PREFIX.lstrip("/")

    @property
    def vendor(self) -> Path:
        return self.root / "vendor"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def src(self) -> Path:
        return self.root / "src"

    def own_root(self, name: str) -> Path:
        """Where one component installs before its files join the stage."""
        return self.root / f"dest-{name}"


@dataclass(frozen=True)
class Job:
    """One component to build: its recipe, verified tarball, configure arguments and environment,
    and whether it compiles in the background (at a lower CPU priority)."""
    recipe: Recipe
    tarball: Path
    configure: list
    env: Dict[str, str]
    background: bool = False


def build_component(job: Job, ws: Workspace, settings: Settings) -> None:
    """One component, start to finish. It installs into a directory of its own, fixes up only its
    own files there, and then moves them into the shared stage: components building at the same
    time never touch each other's files. A background one compiles at a lower CPU priority."""
    recipe, env, background = job.recipe, job.env, job.background
    logs, stage = ws.logs, ws.stage
    own_root = ws.own_root(recipe.name)
    own = own_root / PREFIX.lstrip("/")
    src = ws.src / recipe.source_dir_name

    def step(name: str, argv) -> None:
        with phase(f"{name} {recipe.name}"):
            run(["nice", "-n", "10", *argv] if background else argv, component=recipe.name, step=name,
                log_path=logs / f"{recipe.name}-{name}.log", cwd=src, env=env)

    # a vendored library installs straight into the build's private vendor prefix (DESTDIR empty);
    # a plain Makefile (Lua's) is told the toolchain on its command line
    fill = {"jobs": settings.jobs, "destdir": "" if recipe.vendored else own_root, "compiled_prefix": PREFIX,
            "prefix": ws.vendor if recipe.vendored else PREFIX, "cc": env.get("CC", "cc"),
            "ar": env.get("AR", "ar"), "ranlib": env.get("RANLIB", "ranlib"), "cflags": env.get("CFLAGS", "")}
    with phase(f"extract+patch {recipe.name}"):
        extract(recipe, job.tarball, ws.src)
        apply_patches(recipe, src, logs, env)
    if recipe.configure_command:  # none: a plain Makefile
        step("configure", [*recipe.configure_command, *job.configure])
    step("make", [a.format(**fill) for a in recipe.make_command + recipe.make])
    step("install", [a.format(**fill) for a in recipe.install_command + recipe.install])
    # a vendored library's licence goes straight into the package (the library is linked in)
    licenses = (stage if recipe.vendored else own) / "licenses" / recipe.name
    licenses.mkdir(parents=True, exist_ok=True)
    for name in recipe.license_files:
        shutil.copyfile(src / name, licenses / Path(name).name)
    if recipe.vendored:
        for shipped in recipe.ships:  # the file itself, under its SONAME (never a symbolic link)
            (stage / shipped).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ws.vendor / shipped, stage / shipped)
        return
    # libtool archives name the compiled-in prefix, which does not exist: later components and
    # third-party builds link with -L/-l from the relocatable *-config scripts instead.
    for la in (own / "lib").glob("*.la"):
        la.unlink()
    relocate.point_at_stage(own, stage, PREFIX)
    relocate.merge_into(own, stage)
    shutil.rmtree(own_root)


def side_branches(recipes: Mapping[str, Recipe]) -> set:
    """The components that need nothing and that only the last one needs (PCRE2; nghttp2, brotli,
    Lua, … when built in): they compile at a lower CPU priority, beside the chains the last one
    waits for longest (APR → APR-util; OpenSSL → libcurl and OpenLDAP → APR-util when those are
    built in), which get the CPUs first."""
    needed_by = {n: {m for m, r in recipes.items() if n in r.depends} for n in recipes}
    last = {n for n, users in needed_by.items() if not users}
    return {n for n, users in needed_by.items() if users and users <= last and not recipes[n].depends}


def build_all(plan: Plan, ws: Workspace, tarballs: Mapping[str, Path], args: Mapping[str, list],
              build=None) -> None:
    """Each component starts as soon as everything it depends on is installed (APR ∥ PCRE2;
    APR-util as soon as APR is done, whatever PCRE2 is doing); the side branches in the background."""
    build = build or build_component
    recipes, env = plan.recipes, plan.env
    background = side_branches(recipes)
    ws.src.mkdir(parents=True, exist_ok=True)
    ws.stage.mkdir(parents=True, exist_ok=True)
    done: set = set()
    running: Dict[object, str] = {}
    with ThreadPoolExecutor(max_workers=len(recipes)) as pool:
        while len(done) < len(recipes):
            for name, recipe in recipes.items():
                if name not in done and name not in running.values() and set(recipe.depends) <= done:
                    own_env = dict(env, LIBS=link_libs(name, recipes, env.get("LIBS", "")))
                    job = Job(recipe, tarballs[recipe.source.filename], args[name], own_env, name in background)
                    future = pool.submit(build, job, ws, plan.settings)
                    running[future] = name
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                future.result()  # re-raises a failed component's error
                done.add(running.pop(future))


def _can_execute_in(directory: Path) -> bool:
    probe = directory / "exec-probe.sh"
    probe.write_text("#!/bin/sh\nexit 0\n")
    probe.chmod(0o755)
    try:
        return subprocess.run([str(probe)], capture_output=True).returncode == 0
    except OSError:  # EACCES on a noexec mount
        return False
    finally:
        probe.unlink()


def _work_dir(fallback: Optional[Path]) -> Path:
    """A private build directory where configure scripts can run: in the temporary directory,
    unless it is mounted noexec, then in `fallback` (the cache's tmp/, when the cache is usable);
    otherwise stop before anything starts."""
    tried = []
    for parent in (None, fallback) if fallback is not None else (None,):
        try:
            if parent is not None:
                parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix="mod_wsgi-httpd-build-", dir=parent))
        except OSError as e:
            tried.append(f"{parent or tempfile.gettempdir()}: {e.strerror}")
            continue
        if _can_execute_in(work):
            if tried:
                say(f"building in {work} ({'; '.join(tried)})")
            return work
        shutil.rmtree(work, ignore_errors=True)
        tried.append(f"{work.parent}: mounted noexec (programs cannot run there)")
    raise MissingRequirementError(
        "no directory to build in where programs can run",
        "configure scripts must execute in the build directory; tried " + "; ".join(tried),
        "point TMPDIR (or MOD_WSGI_HTTPD_CACHE) at a directory on a filesystem mounted without noexec")


def _free(path: Path) -> int:
    return shutil.disk_usage(path).free


def check_space(work: Path) -> None:
    """Stop before anything is fetched or compiled when the build directory cannot hold a build."""
    free = _free(work)
    if free < BUILD_SPACE:
        shutil.rmtree(work, ignore_errors=True)
        raise MissingRequirementError(
            f"not enough free space to build in {work.parent}: {free >> 20} MB free, about {BUILD_SPACE >> 20} MB needed",
            "the build unpacks and compiles httpd, APR, APR-util and PCRE2 there",
            "free some space there, or point TMPDIR at a filesystem with room, then install again")


def user_libdirs(settings: Settings, decisions) -> Tuple[str, ...]:
    """The library directories of -C ssl-dir=DIR and friends, for the features built with them:
    the user's choice, kept in the RUNPATH of what links from there."""
    found = []
    for name, directory in sorted(settings.feature_dirs.items()):
        if name in decisions and decisions[name].built:
            found += [str(directory / sub) for sub in ("lib", "lib64") if (directory / sub).is_dir()]
    return tuple(dict.fromkeys(found))


def decide_features(settings: Settings, recipes: Mapping[str, Recipe], env: Mapping[str, str], have=None):
    """Where each feature's library comes from (features.decide): `recipes` are every recipe."""
    return features.decide(all_features(recipes), settings, recipes, env["CC"], env, have)


def build_prefix(settings: Settings, out_dir: Path, recipes: Optional[Dict[str, Recipe]] = None) -> Path:
    """Build (or take from the build cache) the relocatable httpd prefix; returns out_dir/httpd."""
    recipes = recipes or every_recipe()
    env = build_env(settings, source_date_epoch(recipes))
    compiler = check_toolchain(env)
    check_target_runs(settings.target, env)
    decisions = decide_features(settings, recipes, env)
    recipes = chosen_recipes(recipes, decisions)
    env = settings.profile.environment(env, recipes)
    key, key_parts = cache.key(recipes, settings, decisions, compiler)
    plan = Plan(settings, recipes, decisions, env, compiler, key)
    target = out_dir / "httpd"
    if target.exists():
        shutil.rmtree(target)
    builds = sources = None
    if settings.use_build_cache:
        builds, sources = cache.open_cache(settings.cache_dir)
        if builds is not None and _free(builds) < CACHE_SPACE:
            say(f"build cache bypassed: {settings.cache_dir} has {_free(builds) >> 20} MB free, "
                f"an entry needs about {CACHE_SPACE >> 20} MB")
            builds = sources = None
    else:
        say("build cache bypassed (cache=off / MOD_WSGI_HTTPD_NO_CACHE)")
    if builds is None:
        build_fresh(plan, target)
        return target
    with cache.exclusive(builds, key) as locked:
        why = cache.fetch(builds, key, target) if locked else "the cache could not be locked"
        if why is None:
            # a hit passes the checks a fresh build passes
            problems = relocate.leftovers(target, user_libdirs=user_libdirs(settings, decisions))
            if not problems:
                say(f"build cache hit ({key[:16]}): reusing {builds / key}")
                say(report.summary(target))
                return target
            shutil.rmtree(target)
            why = f"the entry {builds / key} fails the relocation checks ({problems[0]})"
        if why == "not in the cache":
            why = cache.why_miss(builds, key_parts)
        say(f"build cache miss ({key[:16]}): {why}")
        build_fresh(plan, target, sources_cache=sources, work_fallback=builds.parent / "tmp")
        if locked:
            cache.store(builds, key, key_parts, target)
    return target


def build_fresh(plan: Plan, target: Path, *, sources_cache: Optional[Path] = None,
                work_fallback: Optional[Path] = None) -> None:
    """Build the prefix the plan describes into `target`: in a private directory (the temporary
    one, else work_fallback), sources from sources_cache too; only the logs stay on failure."""
    recipes, decisions, settings, env = plan.recipes, plan.decisions, plan.settings, plan.env
    work = _work_dir(work_fallback)
    check_space(work)
    ws = Workspace(work)
    stage, vendor = ws.stage, ws.vendor
    own_flags = HARDENING_LDFLAGS.split() + link_flags(recipes)
    # debug information and __FILE__ (in assertions: nghttp2's) name source files: map the build
    # directory out
    own_flags.append(f"-ffile-prefix-map={work}={BUILD_DIR_SHOWN}")
    env = dict(env, CFLAGS=f"{env['CFLAGS']} {own_flags[-1]}")
    env = settings.profile.build_environment(env, vendor, recipes)
    args = {name: configure_args(r, stage, decisions, settings,
                                 config_cache(work, link_libs(name, recipes, env.get("LIBS", ""))), vendor)
            for name, r in recipes.items()}
    try:
        with phase("fetch+verify sources"):
            tarballs = obtain_sources((r.source for r in recipes.values()), work,
                                      Places(sources_dir=settings.sources_dir, bundled_dir=ROOT / "upstream",
                                             cache_dir=sources_cache))
        build_all(replace(plan, env=env), ws, tarballs, args)
        libdirs = user_libdirs(settings, decisions)
        with phase("finish"):
            relocate.finish(stage, recipes)
        with phase("relocate"):
            relocate.relocate(relocate.Staged(stage, work, PREFIX, own_flags, libdirs), settings.strip,
                              settings.target)
            conftree.make_movable(stage, PREFIX)
            conftree.order_load_modules(stage, recipes["httpd"].load_first)
            shown = {n: [a.replace(str(stage), PREFIX).replace(str(work), BUILD_DIR_SHOWN) for a in v]
                     for n, v in args.items()}
            report.write(stage, plan, shown, libdirs)
            relocate.check(stage, work, libdirs)
            conftree.check(stage, PREFIX)
            relocate.check_target(stage, settings.target.arch.elf_machine, settings.target.libc.loader,
                                  settings.target.name)
            conftree.check_all_load(stage)
            archives = vendored_archives(recipes)
            if archives:  # the promise: the built-in libraries' symbols stay private
                relocate.check_hidden(stage, [vendor / "lib" / a for a in archives])
        shutil.move(str(stage), str(target))
    except BaseException:
        say(f"build logs kept in {work / 'logs'}")
        if not settings.keep_build:
            for path in work.iterdir():  # only the logs stay
                if path.name != "logs":
                    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
        raise
    if settings.keep_build:
        say(f"build directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    say(report.summary(target))
