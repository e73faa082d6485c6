"""Optional features that need system libraries: auto / required / off, decided before anything
compiles. A feature is available when the C compiler can see its header."""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Tuple

from .errors import MissingRequirementError
from .recipes import Feature, providers
from .settings import Settings
from .systems import how_to_install



@dataclass(frozen=True)
class Decision:
    feature: Feature
    mode: str
    built: bool
    reason: str  # why it is built or left out, for the summary and `mod_wsgi-httpd info`
    fingerprint: str = ""  # sha256 over the headers the compiler saw (a library upgrade changes it)
    version: str = ""  # the library version its headers declare (the SBOM names it)
    on_purpose: bool = False  # left out by the build's profile, not for want of a library
    header_file: str = ""  # where the compiler found the feature's (first) header: whose package it is

    def configure_args(self, directory: str = "", component: str = "") -> Tuple[str, ...]:
        """The arguments of the feature's own component's configure, or of `component`'s."""
        on, with_dir, off = self.feature.on, self.feature.with_dir, self.feature.off
        if component and component != self.feature.component:
            on, with_dir, off = next(((a, b, c) for name, a, b, c in self.feature.elsewhere if name == component),
                                     ((), (), ()))
        if not self.built:
            return off
        return on + (tuple(a.format(dir=directory) for a in with_dir) if directory else ())


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
    if mode == "required":
        missing.append(f"{feature.name}=required needs {other.feature.name} ({other.feature.library}), "
                       f"which is not built: {other.reason}. Build {other.feature.name} too, or set "
                       f"{feature.name}=off (or auto).")
    return Decision(feature, mode, False, f"it needs {other.feature.name} ({other.feature.library}), which is not built")


def _decide_each(features: Mapping[str, Feature], settings: Settings,
                 decide_one: Callable[[Feature, str, List[str]], Decision],
                 error: Tuple[str, str]) -> Dict[str, Decision]:
    """One decision per feature, in order: off when asked, not built when a feature it needs is
    not, else `decide_one`'s, which appends to `missing` what makes the build impossible; all of
    those together are one error (`error`: what happened, what to do)."""
    decisions: Dict[str, Decision] = {}
    missing: List[str] = []
    for name, feature in features.items():
        mode = settings.features[name]
        if mode == "off":
            decisions[name] = Decision(feature, mode, False, f"{name}=off was asked for")
            continue
        decisions[name] = (_needs_unbuilt(feature, mode, decisions, missing)
                           or decide_one(feature, mode, missing))
    if missing:
        what, do = error
        raise MissingRequirementError(what, "\n\n" + "\n\n".join(missing) + "\n", do)
    return decisions


def decide(features: Mapping[str, Feature], settings: Settings, cc: str,
           env: Mapping[str, str]) -> Dict[str, Decision]:
    """The system profile: a feature is built when the C compiler sees its library's headers
    (on its own search path, or in the feature's `-dir`)."""
    def from_headers(feature: Feature, mode: str, missing: List[str]) -> Decision:
        name, setting = feature.name, feature.library_feature
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
            return Decision(feature, mode, False, f"{directory} is not a usable {feature.library} prefix")
        if found:
            files = [header_files(h, cc, seen_with, include_dir) for h in found]
            return Decision(feature, mode, True, f"{', '.join(found)} found {where}",
                            "".join(header_fingerprint(f) for f in files),
                            header_version(feature, found[0], cc, seen_with, include_dir),
                            header_file=header_path(found[0], files[0]))
        if mode == "required":
            alternatives = ("" if feature.modes == ("required",) else
                            f", or build without it with {name}=off (or {name}=auto)")
            missing.append(
                f"{feature.library} is required for {feature.gives}, but its header {feature.header} was not "
                f"found {where}. Install the development package ({how_to_install(feature.packages)}), or point "
                f"MOD_WSGI_HTTPD_{setting.upper().replace('-', '_')}_DIR (-C {setting}-dir=DIR) at its installation prefix{alternatives}.")
        return Decision(feature, mode, False, f"{feature.library} headers ({feature.header}) not found {where}")

    return _decide_each(features, settings, from_headers,
                        ("a required system library is missing, so nothing was compiled",
                         "install the package(s) named above, then run the install again"))


def decide_vendored(features: Mapping[str, Feature], settings: Settings, recipes) -> Dict[str, Decision]:
    """The portable profile: every feature is built with the library recipe that provides it
    (unless it is off); nothing is looked up on this machine. A feature no recipe provides is left
    out, saying why (its `not_vendored`); asked for as required, that is an error."""
    built_by = providers(recipes)

    def from_recipe(feature: Feature, mode: str, missing: List[str]) -> Decision:
        vendored = () if feature.not_vendored else built_by.get(feature.library_feature, ())
        if not vendored:
            reason = f"not built in the portable profile: {feature.not_vendored}"
            if mode == "required":
                missing.append(f"{feature.name}=required: {feature.library} is {reason}. Build the system profile "
                               f"(profile=system) for {feature.gives}, or set {feature.name}=off (or auto).")
            return Decision(feature, mode, False, reason, on_purpose=True)
        what = (f"{feature.library} {vendored[0].version}" if len(vendored) == 1 else
                f"{feature.library} ({', '.join(f'{r.name} {r.version}' for r in vendored)})")
        return Decision(feature, mode, True, f"{what} built in (portable profile)",
                        "".join(r.source.sha256 for r in vendored), vendored[0].version)

    return _decide_each(features, settings, from_recipe,
                        ("a required feature cannot be built in the portable profile",
                         "change the settings named above, then run the install again"))
