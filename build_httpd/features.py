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
from typing import Dict, List, Mapping, Tuple

from .errors import MissingRequirementError
from .recipes import Feature
from .settings import Settings

_PACKAGE_MANAGERS = (("debian", "Debian/Ubuntu", "apt-get install"), ("fedora", "Fedora/RHEL", "dnf install"),
                     ("alpine", "Alpine", "apk add"), ("homebrew", "Homebrew", "brew install"))


@dataclass(frozen=True)
class Decision:
    feature: Feature
    mode: str
    built: bool
    reason: str  # why it is built or left out, for the summary and `mod_wsgi-httpd info`
    fingerprint: str = ""  # sha256 over the headers the compiler saw (a library upgrade changes it)
    version: str = ""  # the library version its headers declare (the SBOM names it)

    def configure_args(self, directory: str = "") -> Tuple[str, ...]:
        if not self.built:
            return self.feature.off
        extra = tuple(a.format(dir=directory) for a in self.feature.with_dir) if directory else ()
        return self.feature.on + extra


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


def header_version(feature: Feature, cc: str, env: Mapping[str, str], include_dir: Path = None) -> str:
    """The version the library's headers declare (the recipe's `version_macro`, expanded by the
    preprocessor), or "" when they declare none."""
    if not feature.version_macro:
        return ""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.c"
        probe.write_text(f"#include <{feature.header}>\nmod_wsgi_httpd_version: {feature.version_macro}\n")
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


def header_fingerprint(header: str, cc: str, env: Mapping[str, str], include_dir: Path = None) -> str:
    """sha256 over every header file `#include <header>` pulls in (the library's version header
    among them), so that a new version of the library is a new build cache key."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.c"
        probe.write_text(f"#include <{header}>\n")
        extra = ["-I", str(include_dir)] if include_dir else []
        argv = shlex.split(cc) + shlex.split(env.get("CPPFLAGS", "")) + extra + ["-M", str(probe)]
        try:
            out = subprocess.run(argv, capture_output=True, text=True, env=dict(env))
        except OSError:
            return ""
        if out.returncode != 0:
            return ""
        deps = out.stdout.replace("\\\n", " ").split(":", 1)[-1].split()
        digest = hashlib.sha256()
        for dep in sorted(set(d for d in deps if d != str(probe))):
            try:
                digest.update(dep.encode() + b"\0" + Path(dep).read_bytes() + b"\0")
            except OSError:
                digest.update(dep.encode() + b"\0?\0")
        return digest.hexdigest()


def how_to_install(feature: Feature) -> str:
    return "; ".join(f"{label}: {cmd} {feature.packages[key]}"
                     for key, label, cmd in _PACKAGE_MANAGERS if key in feature.packages)


def decide(features: Mapping[str, Feature], settings: Settings, cc: str,
           env: Mapping[str, str]) -> Dict[str, Decision]:
    decisions: Dict[str, Decision] = {}
    missing: List[str] = []
    for name, feature in features.items():
        mode = settings.features[name]
        if mode == "off":
            decisions[name] = Decision(feature, mode, False, f"{name}=off was asked for")
            continue
        directory = settings.feature_dirs.get(name)
        include_dir = directory / "include" if directory else None
        where = f"in {include_dir}" if include_dir else "by the C compiler"
        visible = header_visible(feature.header, cc, env, include_dir)
        if visible and directory and feature.dir_needs_one_of and not any(
                (directory / f).is_file() for f in feature.dir_needs_one_of):
            missing.append(
                f"{name}-dir={directory} has none of {', '.join(feature.dir_needs_one_of)}: the build would "
                f"quietly link the system's {feature.library} instead of the one in {directory}. Point "
                f"{name}-dir at an installation prefix that has it (`make install` of {feature.library} "
                f"writes one), or leave {name}-dir unset to use the system's.")
            decisions[name] = Decision(feature, mode, False, f"{directory} is not a usable {feature.library} prefix")
            continue
        if visible:
            decisions[name] = Decision(feature, mode, True, f"{feature.header} found {where}",
                                       header_fingerprint(feature.header, cc, env, include_dir),
                                       header_version(feature, cc, env, include_dir))
            continue
        reason = f"{feature.library} headers ({feature.header}) not found {where}"
        if mode == "required":
            alternatives = ("" if feature.modes == ("required",) else
                            f", or build without it with {name}=off (or {name}=auto)")
            missing.append(
                f"{feature.library} is required for {feature.gives}, but its header {feature.header} was not "
                f"found {where}. Install the development package ({how_to_install(feature)}), or point "
                f"MOD_WSGI_HTTPD_{name.upper()}_DIR (-C {name}-dir=DIR) at its installation prefix{alternatives}.")
        decisions[name] = Decision(feature, mode, False, reason)
    if missing:
        raise MissingRequirementError(
            "a required system library is missing, so nothing was compiled",
            "\n\n" + "\n\n".join(missing) + "\n",
            "install the package(s) named above, then run the install again")
    return decisions


def decide_vendored(features: Mapping[str, Feature], settings: Settings, recipes) -> Dict[str, Decision]:
    """The portable profile: every feature is built with the library recipe that provides it
    (unless it is off); nothing is looked up on this machine."""
    providers = {r.provides: r for r in recipes.values() if r.vendored}
    decisions: Dict[str, Decision] = {}
    for name, feature in features.items():
        mode = settings.features[name]
        if mode == "off":
            decisions[name] = Decision(feature, mode, False, f"{name}=off was asked for")
            continue
        vendored = providers[name]
        decisions[name] = Decision(feature, mode, True,
                                   f"{feature.library} {vendored.version} built in (portable profile)",
                                   vendored.source.sha256, vendored.version)
    return decisions
