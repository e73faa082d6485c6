"""Features that need a library (OpenSSL for mod_ssl, …): where each one's comes from, decided
before anything compiles. The system's, when the C compiler sees its headers; else built in from
its recipes (auto, builtin); left out only when the settings say off."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from .errors import MissingRequirementError
from .recipes import Feature, Recipe, providers
from .settings import Settings
from .systems import how_to_install, tool_packages



@dataclass(frozen=True)
class Decision:
    feature: Feature
    mode: str
    built: bool
    reason: str  # why it is built (and from where) or left out: the summary, `info`, the SBOM
    fingerprint: str = ""  # sha256 over the headers the compiler saw, or over the built-in sources
    version: str = ""  # the library version its headers declare, or the built-in recipe's
    on_purpose: bool = False  # left out because the settings say so (off), not for want of a library
    header_file: str = ""  # where the compiler found the feature's (first) header: whose package it is
    builtin: bool = False  # built from its recipes into the package, not linked from the system

    @property
    def source(self) -> str:
        """Where its library comes from: "system", "built in", or "" when it is not built."""
        return ("built in" if self.builtin else "system") if self.built else ""

    def configure_args(self, directory: str = "", component: str = "") -> Tuple[str, ...]:
        """The arguments of the feature's own component's configure, or of `component`'s.
        `directory`: where its library is installed (the build's vendor prefix for a built-in one,
        the user's -C FEATURE-dir), "" for wherever the compiler finds it."""
        mine = not component or component == self.feature.component
        on, with_dir, off = self.feature.on, self.feature.with_dir, self.feature.off
        if not mine:
            on, with_dir, off = next(((a, b, c) for name, a, b, c in self.feature.elsewhere if name == component),
                                     ((), (), ()))
        if not self.built:
            return off
        # a built-in library is a static archive: its component links what the archive needs in turn
        own = self.feature.built_in if self.builtin and mine else ()
        return on + (tuple(a.format(dir=directory) for a in with_dir) if directory else ()) + own


def header_visible(header: str, cc: str, env: Mapping[str, str], include_dir: Path = None) -> bool:
    """Whether `#include <header>` preprocesses; with include_dir, only that directory counts."""
    if include_dir is not None:
        return (include_dir / header).is_file()
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.c"
        probe.write_text(f"#include <{header}>\n")
        argv = shlex.split(cc) + shlex.split(env.get("CPPFLAGS", "")) + ["-E", str(probe), "-o", os.devnull]
        try:
            return subprocess.run(argv, capture_output=True, env=dict(env)).returncode == 0
        except OSError:
            return False


def header_version(feature: Feature, header: str, cc: str, env: Mapping[str, str], include_dir: Path = None) -> str:
    """The version the library's headers declare (the recipe's `version_macro`, expanded by the
    preprocessor), or "" when they declare none."""
    if not feature.version_macro:
        return ""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.c"
        probe.write_text(f"#include <{header}>\nmod_wsgi_httpd_version: {feature.version_macro}\n")
        extra = ["-I", str(include_dir)] if include_dir else []
        argv = shlex.split(cc) + shlex.split(env.get("CPPFLAGS", "")) + extra + ["-E", "-P", str(probe)]
        try:
            out = subprocess.run(argv, capture_output=True, text=True, env=dict(env))
        except OSError:
            return ""
    for line in out.stdout.splitlines():
        if line.startswith("mod_wsgi_httpd_version:"):
            value = line.split(":", 1)[1].replace('"', "").replace(" ", "")
            return value if value and value[0].isdigit() else ""
    return ""


def header_files(header: str, cc: str, env: Mapping[str, str], include_dir: Path = None) -> List[str]:
    """Every header file `#include <header>` pulls in, as the compiler finds them; [] when it
    does not."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.c"
        probe.write_text(f"#include <{header}>\n")
        extra = ["-I", str(include_dir)] if include_dir else []
        argv = shlex.split(cc) + shlex.split(env.get("CPPFLAGS", "")) + extra + ["-M", str(probe)]
        try:
            out = subprocess.run(argv, capture_output=True, text=True, env=dict(env))
        except OSError:
            return []
        if out.returncode != 0:
            return []
        deps = out.stdout.replace("\\\n", " ").split(":", 1)[-1].split()
        return list(dict.fromkeys(d for d in deps if d != str(probe)))


def header_path(header: str, files: List[str]) -> str:
    """Which of the files is `header` itself (gcc pulls in stdc-predef.h before it)."""
    return next((f for f in files if f.endswith("/" + header)), "")


def header_fingerprint(files: List[str]) -> str:
    """sha256 over the header files (the library's version header among them), so that a new
    version of the library is a new build cache key."""
    if not files:
        return ""
    digest = hashlib.sha256()
    for dep in sorted(files):
        try:
            digest.update(dep.encode() + b"\0" + Path(dep).read_bytes() + b"\0")
        except OSError:
            digest.update(dep.encode() + b"\0?\0")
    return digest.hexdigest()


def probe_env(feature: Feature, env: Mapping[str, str]) -> Mapping[str, str]:
    """The environment the headers are looked for with: a library whose headers live in a
    directory of their own (libxml2) adds it as its pkg-config file says, as the component's
    configure will."""
    if not feature.pkg_config:
        return env
    try:
        out = subprocess.run([env.get("PKG_CONFIG", "pkg-config"), "--cflags", feature.pkg_config],
                             capture_output=True, text=True, env=dict(env))
    except OSError:
        return env
    if out.returncode != 0:
        return env
    return dict(env, CPPFLAGS=f"{env.get('CPPFLAGS', '')} {out.stdout.strip()}".strip())


def find_headers(feature: Feature, cc: str, env: Mapping[str, str], include_dir: Path = None) -> Tuple[str, ...]:
    """The header the compiler sees for each of the feature's needs (the first alternative that it
    sees), or () when one of them is not seen."""
    found = []
    for alternatives in feature.headers:
        seen = next((h for h in alternatives if header_visible(h, cc, env, include_dir)), None)
        if seen is None:
            return ()
        found.append(seen)
    return tuple(found)


def _needs_unbuilt(feature: Feature, mode: str, decisions: Mapping[str, Decision], missing: List[str]):
    """A feature that needs another (or uses its library) is built only when that one is."""
    other = decisions.get(feature.needed_feature)
    if other is None or other.built:
        return None
    if mode not in ("auto", "required"):  # system/builtin insist on the feature
        missing.append(f"{feature.name}={mode} needs {other.feature.name} ({other.feature.library}), "
                       f"which is not built: {other.reason}. Build {other.feature.name} too, or set "
                       f"{feature.name}=off (or auto).")
    return Decision(feature, mode, False, f"it needs {other.feature.name} ({other.feature.library}), which is not "
                    f"built", on_purpose=other.on_purpose)


Decide = Callable[[Feature, str, List[str], Mapping[str, Decision]], Decision]


def _decide_each(features: Mapping[str, Feature], settings: Settings, decide_one: Decide,
                 error: Tuple[str, str]) -> Dict[str, Decision]:
    """One decision per feature, in order: off when asked, not built when a feature it needs is
    not, else `decide_one`'s, which appends to `missing` what makes the build impossible; all of
    those together are one error (`error`: what happened, what to do)."""
    decisions: Dict[str, Decision] = {}
    missing: List[str] = []
    for name, feature in features.items():
        mode = settings.features[name]
        if mode == "off":
            decisions[name] = Decision(feature, mode, False, f"{name}=off was asked for", on_purpose=True)
            continue
        decisions[name] = (_needs_unbuilt(feature, mode, decisions, missing)
                           or decide_one(feature, mode, missing, decisions))
    if missing:
        what, do = error
        raise MissingRequirementError(what, "\n\n" + "\n\n".join(missing) + "\n", do)
    return decisions


def decide(features: Mapping[str, Feature], settings: Settings, recipes, cc: str, env: Mapping[str, str],
           have: Callable[[str], bool] = None) -> Dict[str, Decision]:
    """Where each feature's library comes from. The portable profile builds every one in from its
    recipes. Otherwise the system's is linked when the C compiler sees its headers (on its own
    search path, or in the feature's -dir), and it is built in from its recipes when they are not
    seen (or when `builtin` is asked for): `auto` never leaves a feature out. `system` insists on
    the system's. What cannot be had at all (no headers, and a tool its recipes' build runs is
    missing: `have`) is one error naming the packages to install, before anything compiles."""
    built_by = providers(recipes)
    if have is None:
        def have(tool: str) -> bool:
            return runs(tool, env)

    def decide_one(feature: Feature, mode: str, missing: List[str], decisions: Mapping[str, Decision]) -> Decision:
        shared = decisions.get(feature.same_library_as)
        if settings.profile.vendors:
            why = f"{settings.profile.name} profile"
        elif mode == "builtin":
            why = f"{feature.name}=builtin was asked for"
        elif shared is not None and shared.builtin:  # the library another feature built in
            why = f"as for {shared.feature.name}"
        else:
            seen, why = _from_headers(feature, mode, settings, cc, env, missing)
            if seen is not None:
                return seen
            setting = feature.library_feature
            if mode == "system" or setting in settings.feature_dirs:  # the system's, or one named by -dir
                asked = f"{setting}-dir" if setting in settings.feature_dirs else f"{feature.name}=system"
                missing.append(
                    f"{asked}: {feature.library} is wanted from this system for {feature.gives}, but {why}. Install "
                    f"the development package ({how_to_install(feature.packages)}), or point "
                    f"MOD_WSGI_HTTPD_{setting.upper().replace('-', '_')}_DIR (-C {setting}-dir=DIR) at its "
                    f"installation prefix, or build it in with {feature.name}=auto (or builtin) and no {setting}-dir.")
                return Decision(feature, mode, False, why)
            why += f"; {how_to_install(feature.packages)} links the system's instead"
        return _built_in(feature, mode, built_by.get(feature.library_feature, ()), why, missing, have)

    return _decide_each(features, settings, decide_one,
                        ("a feature's library is neither on this system nor can it be built in here, so nothing "
                         "was compiled", "do what is named above, then run the install again"))


def runs(tool: str, env: Mapping[str, str]) -> bool:
    """Whether a build tool is on PATH and runs here (`TOOL --version`): CMake from the package
    index for musllinux needs a newer musl than 1.2.2, where it is installed but cannot start."""
    found = shutil.which(tool, path=env.get("PATH"))
    if found is None:
        return False
    try:
        return subprocess.run([found, "--version"], capture_output=True, env=dict(env), timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _from_headers(feature: Feature, mode: str, settings: Settings, cc: str, env: Mapping[str, str],
                  missing: List[str]) -> Tuple[Optional[Decision], str]:
    """The system's library, when the compiler sees its headers: (its decision, "") or (None,
    why not). A -dir that names the wrong place is an error (and a decision not to build)."""
    setting = feature.library_feature
    directory = settings.feature_dirs.get(setting)
    include_dir = directory / "include" if directory else None
    where = f"in {include_dir}" if include_dir else "by the C compiler"
    seen_with = probe_env(feature, env) if include_dir is None else env
    found = find_headers(feature, cc, seen_with, include_dir)
    if found and directory and feature.dir_needs_one_of and not any(
            (directory / f).is_file() for f in feature.dir_needs_one_of):
        missing.append(
            f"{setting}-dir={directory} has none of {', '.join(feature.dir_needs_one_of)}: the build would "
            f"quietly link the system's {feature.library} instead of the one in {directory}. Point "
            f"{setting}-dir at an installation prefix that has it (`make install` of {feature.library} "
            f"writes one), or leave {setting}-dir unset to use the system's.")
        return Decision(feature, mode, False, f"{directory} is not a usable {feature.library} prefix"), ""
    if not found:
        return None, f"its headers ({feature.header}) were not found {where}"
    files = [header_files(h, cc, seen_with, include_dir) for h in found]
    return Decision(feature, mode, True, f"the system's: {', '.join(found)} found {where}",
                    "".join(header_fingerprint(f) for f in files),
                    header_version(feature, found[0], cc, seen_with, include_dir),
                    header_file=header_path(found[0], files[0])), ""


def _built_in(feature: Feature, mode: str, vendored, why: str, missing: List[str],
              have: Callable[[str], bool]) -> Decision:
    """The feature's library built from its recipes (mod_md's: curl and Jansson), when every tool
    their builds run is here."""
    lacking = list(dict.fromkeys(t for r in vendored for t in r.build_tools if not have(t)))
    if not vendored or lacking:
        cannot = (f"building it in needs {' and '.join(lacking)}, which {'is' if len(lacking) == 1 else 'are'} not "
                  f"installed or does not run here ({'; '.join(how_to_install(tool_packages(t)) for t in lacking)})"
                  if lacking
                  else "no recipe here builds it")
        off = f", or set {feature.name}=off to build without it" if "off" in feature.modes else ""
        missing.append(f"{feature.library}, for {feature.gives}: {why}, and {cannot}. Install what is named "
                       f"here{off}.")
        return Decision(feature, mode, False, f"{why}; {cannot}")
    what = (f"{feature.library} {vendored[0].version}" if len(vendored) == 1 else
            f"{feature.library} ({', '.join(f'{r.name} {r.version}' for r in vendored)})")
    return Decision(feature, mode, True, f"{what} built in ({why})", "".join(r.source.sha256 for r in vendored),
                    vendored[0].version, builtin=True)


def chosen_recipes(recipes: Mapping[str, Recipe], decisions: Mapping[str, Decision]) -> Dict[str, Recipe]:
    """The components, and the libraries built in for the features decided so; a dependency on a
    library not built is dropped (libcurl's on OpenSSL, when mod_ssl links the system's)."""
    unused = {r.name for r in recipes.values()
              if r.vendored and not (r.provides in decisions and decisions[r.provides].builtin)}
    return {n: replace(r, depends=tuple(d for d in r.depends if d not in unused))
            for n, r in recipes.items() if n not in unused}
