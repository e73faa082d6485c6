"""What was built, written into the package: build-info.json (read by `mod_wsgi-httpd info`), a
CycloneDX SBOM, and the summary printed at the end of every build."""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Mapping, Sequence

from . import relocate, system_packages
from .errors import BuildError
from .profile import PROFILES
from .recipes import Recipe, every_recipe, package_version, providers

BUILD_INFO = "build-info.json"
SBOM = "sbom.cdx.json"


@dataclass(frozen=True)
class Linking:
    """What the package's binaries link (relocate.linked: its own libraries, SONAME → file, and
    every other SONAME they need), how the build machine finds a SONAME's file (`locate`), the
    target's C library, and how the target names a build machine's file (as_on_target)."""
    own: Mapping[str, str]
    needs: Sequence[str]
    locate: Callable[[str], str] = lambda soname: ""
    libc: str = "glibc"
    shown: Callable[[str], str] = lambda path: path


def write(prefix: Path, plan, configure: Mapping[str, list], user_libdirs=()) -> None:
    """build-info.json, the SBOM and the licence index of a finished prefix, from the build's plan
    (build.Plan: settings, recipes, decisions, compiler, cache key) and the configure arguments
    as shown (build paths replaced)."""
    recipes, decisions, settings, compiler, build_key = (plan.recipes, plan.decisions, plan.settings, plan.compiler,
                                                          plan.key)
    names = sorted(p.name[len("mod_"):-len(".so")] for p in (prefix / "modules").glob("mod_*.so"))
    info = {
        "package": "mod_wsgi-httpd",
        "version": package_version(recipes),
        # system: each feature library (OpenSSL, nghttp2, …) is the system's shared library where
        # its headers were found, else built in; portable: every one is built in (features below)
        "profile": settings.profile.name,
        "components": {
            r.name: {"version": r.version, "license": r.license, "homepage": r.homepage,
                     "source": r.source.filename, "sha256": r.source.sha256, "size": r.source.size,
                     "urls": list(r.source.urls), "patches": list(r.patches),
                     "configure": list(configure[r.name]),
                     "linkage": _linkage(r), "origin": _origin(r)}
            for r in recipes.values()
        },
        "mpms": [n[len("mpm_"):] for n in names if n.startswith("mpm_")],
        "modules": [n for n in names if not n.startswith("mpm_")],
        "features": {
            name: {"built": d.built, "source": d.source, "mode": d.mode, "library": d.feature.library,
                   "gives": d.feature.gives, "reason": d.reason, "left_out_on_purpose": d.on_purpose}
            for name, d in decisions.items()
        },
        "compiler": compiler,
        # the machine the binaries are for; a cross build also says which machine compiled them
        "platform": f"{platform.system()} {settings.target.machine}",
        **({"built_on": f"{platform.system()} {platform.machine()}"} if settings.target.cross else {}),
        "stripped": settings.strip,
        # library directories outside the package that modules load from (-C ssl-dir=DIR …)
        "library_dirs": list(user_libdirs),
        "build_key": build_key,
    }
    (prefix / BUILD_INFO).write_text(json.dumps(info, indent=2) + "\n")
    cc = settings.target.environment(dict(os.environ))["CC"]
    on_target = as_on_target(relocate.recorded_toolchain(settings.target))
    linking = Linking(*relocate.linked(prefix), locate=lambda soname: locate(soname, cc),
                      libc=settings.target.libc.name, shown=on_target)
    document = sbom(recipes, settings.profile.name, decisions, linking=linking)
    (prefix / SBOM).write_text(json.dumps(document, indent=2) + "\n")


def locate(soname: str, cc: str) -> str:
    """The file the compiler links for a library's SONAME (its search path, sysroot included), ""
    when it knows none."""
    try:
        out = subprocess.run([*shlex.split(cc), f"-print-file-name={soname}"], capture_output=True, text=True)
    except OSError:
        return ""
    found = out.stdout.strip()
    return os.path.normpath(found) if out.returncode == 0 and os.path.isabs(found) else ""


def as_on_target(names: Mapping[str, str]):
    """A file a made toolchain links (a glibc 2.28 sysroot's libcrypt, musl's libc) named as the
    target has it (/usr/lib/…), never by the build machine's toolchain directory: the directories
    of relocate.recorded_toolchain, longest first."""
    moves = sorted(((made.rstrip("/"), target.rstrip("/")) for made, target in names.items() if made.startswith("/")),
                   key=lambda move: len(move[0]), reverse=True)

    def on_target(path: str) -> str:
        for made, target in moves:
            if path.startswith(made + "/"):
                return target + path[len(made):]
        return path
    return on_target


def _origin(recipe: Recipe) -> str:
    return recipe.source.origin or "upstream release tarball"


def _linkage(recipe: Recipe) -> str:
    if recipe.ships:
        return "shared library in lib/, its own name and symbol versions (one copy for all that use it)"
    if recipe.vendored:
        return "static, symbols hidden (in the modules that use it)"
    return "executable" if recipe.name == "httpd" else "shared library in lib/"


def _component(recipe, version: str, **extra) -> Dict[str, object]:
    """A CycloneDX component that vulnerability scanners can match: CPE 2.3 and package URL."""
    component = {
        "type": "application" if recipe.name == "httpd" else "library",
        "bom-ref": f"{recipe.name}@{version}",
        "name": recipe.name,
        "version": version,
        "cpe": recipe.cpe23(version),
        "purl": recipe.package_url(version),
        "licenses": [{"expression": recipe.license}],
        "externalReferences": [{"type": "website", "url": recipe.homepage}],
    }
    component.update(extra)
    return component


def _system_library(provider, decision, package) -> Dict[str, object]:
    """A system library the build linked: named by the system package its headers came from
    (`package`: the distribution's version in a deb/rpm/apk package URL) with the upstream CPE,
    else by the version its headers declare."""
    upstream = decision.version or (package.upstream_version if package else "")
    known = upstream or "unknown"
    component = _component(provider, known, scope="excluded", properties=[
        {"name": "mod_wsgi-httpd:linkage", "value": "system shared library, not in the package"},
        {"name": "mod_wsgi-httpd:built-against", "value": f"{decision.feature.header} of {known}"}])
    if package:
        component["version"] = package.version
        component["purl"] = package.purl
        component["properties"].append({"name": "mod_wsgi-httpd:system-package",
                                         "value": f"{package.type} source package {package.name} {package.version}"})
    if not upstream:  # a CPE or purl without a version would match every release
        component.pop("cpe")
        component["purl"] = component["purl"].split("@")[0]
    return component


def sbom(recipes: Mapping[str, Recipe], profile: str = "system", decisions=None, owners=None,
         linking: Linking = None) -> Dict[str, object]:
    """`owners` answers which system package a file belongs to (system_packages.owner); with
    `linking`, every library the binaries link is a component too."""
    version = package_version(recipes)
    owners = owners or system_packages.owner
    components = []
    why_built_in = {name: d.reason for name, d in (decisions or {}).items() if d.builtin}
    for r in recipes.values():
        properties = [{"name": "mod_wsgi-httpd:linkage", "value": _linkage(r)},
                      {"name": "mod_wsgi-httpd:origin", "value": _origin(r)}]
        if r.vendored and r.provides in why_built_in:
            properties.append({"name": "mod_wsgi-httpd:built-in", "value": why_built_in[r.provides]})
        if r.patches:
            properties += [{"name": "mod_wsgi-httpd:patch", "value": p} for p in r.patches]
        if r.source.debian_revision:
            properties.append({"name": "mod_wsgi-httpd:debian-security-patches", "value": r.source.debian_revision})
        components.append(_component(
            r, r.version,
            hashes=[{"alg": "SHA-256", "content": r.source.sha256}],
            externalReferences=[{"type": "distribution", "url": u} for u in r.source.urls]
            + [{"type": "website", "url": r.homepage}],
            properties=properties))
    # The system's shared libraries a build links are not in the package, but they are in the
    # process, so they are listed (scope "excluded": not shipped) as the system package their
    # headers came from, or with the version those headers declare.
    needed = []
    if not PROFILES[profile].vendors:
        directory = next(iter(recipes.values())).path.parent
        built_by = providers(every_recipe(directory))
        for name, decision in sorted((decisions or {}).items()):
            # the library whose header the decision read (mod_md's libcurl; Jansson, and any other,
            # is named below by what is linked)
            if not decision.built or decision.builtin or name not in built_by:
                continue
            component = _system_library(built_by[name][0], decision, owners(decision.header_file))
            components.append(component)
            needed.append(component["bom-ref"])
    if linking is not None:
        needed += _linked_libraries(recipes, components, linking, owners)
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        # deterministic, so that the same recipes give the same SBOM (and the same wheel)
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'mod_wsgi-httpd/' + version + '/' + profile)}",
        "version": 1,
        "metadata": {"component": {"type": "application", "name": "mod_wsgi-httpd", "version": version,
                                   "bom-ref": f"mod_wsgi-httpd@{version}",
                                   "purl": f"pkg:pypi/mod-wsgi-httpd@{version}"},
                     "properties": [{"name": "mod_wsgi-httpd:profile", "value": profile}]},
        "components": components,
        "dependencies": [{"ref": f"mod_wsgi-httpd@{version}",
                          "dependsOn": [f"{r.name}@{r.version}" for r in recipes.values()] + needed}]
        + [{"ref": f"{r.name}@{r.version}",
            "dependsOn": [f"{d}@{recipes[d].version}" for d in r.depends]}
           for r in recipes.values()],
    }


# The C library's own shared objects: the platform the binaries run on, one component.
C_LIBRARY = re.compile(r"^(ld-linux[\w.-]*|ld-musl-\w+|libc\.musl-\w+|lib(c|m|dl|pthread|rt|resolv|util|anl))\.so[\d.]*$")
SONAME = "mod_wsgi-httpd:soname"


def _linked_libraries(recipes, components: list, linking: Linking, owners) -> list:
    """Every library a binary of the package names is in the SBOM, with its SONAME: the package's
    own (the recipe that ships it), or the system's, named by the package that owns its file (a
    library a recipe is the upstream of gets that recipe's name and CPE). Returns the system
    libraries' references."""
    own, libc, shown = linking.own, linking.libc, linking.shown
    shipped = {Path(p).name: r.name for r in recipes.values() for p in r.ships}
    unclaimed = sorted(set(own) - set(shipped))
    if unclaimed:
        raise BuildError("the SBOM cannot name every library the package carries",
                         f"no recipe says it ships {', '.join(own[s] for s in unclaimed)}",
                         "add the library to its recipe's `ships` (a bug in mod_wsgi-httpd)")
    by_name = {c["name"]: c for c in components}
    for soname in sorted(own):
        by_name[shipped[soname]].setdefault("properties", []).append({"name": SONAME, "value": soname})
    upstream = {r.source.debian: r for r in every_recipe(next(iter(recipes.values())).path.parent).values()}
    added = []
    for soname in linking.needs:
        path = linking.locate(soname)
        package = owners(path) if path else None
        recipe = upstream.get(package.name) if package else None
        name = recipe.name if recipe else package.name if package else libc if C_LIBRARY.match(soname) else soname
        if name not in by_name:
            by_name[name] = _linked_component(name, recipe, package, shown(path) if path else path)
            components.append(by_name[name])
            added.append(by_name[name]["bom-ref"])
        by_name[name].setdefault("properties", []).append({"name": SONAME, "value": soname})
    return added


def _linked_component(name: str, recipe, package, path: str) -> Dict[str, object]:
    """A system library that no feature decision listed: by its package (the distribution's
    version), with the recipe's identity when one builds the same upstream."""
    properties = [{"name": "mod_wsgi-httpd:linkage", "value": "system shared library, not in the package"}]
    if package is None:
        properties.append({"name": "mod_wsgi-httpd:file", "value": path or "not found at build time"})
        return {"type": "library", "bom-ref": name, "name": name, "scope": "excluded", "properties": properties}
    properties.append({"name": "mod_wsgi-httpd:system-package",
                       "value": f"{package.type} source package {package.name} {package.version}"})
    component = {"type": "library", "bom-ref": f"{name}@{package.version}", "name": name, "version": package.version,
                 "purl": package.purl, "scope": "excluded", "properties": properties}
    if recipe is not None:
        component["cpe"] = recipe.cpe23(package.upstream_version)
        component["licenses"] = [{"expression": recipe.license}]
    return component


def summary(prefix: Path) -> str:
    info = json.loads((prefix / BUILD_INFO).read_text())
    versions = ", ".join(f"{n} {c['version']}" for n, c in info["components"].items())
    features = info["features"].items()
    system = [n for n, f in features if f["built"] and f.get("source") != "built in"]
    built_in = [f"{n} ({f['reason']})" for n, f in features if f.get("source") == "built in"]
    left = [f"{n} ({f['reason']})" for n, f in features if not f["built"]]
    lines = [f"built {versions} ({info.get('profile', 'system')} profile)",
             f"  MPMs: {', '.join(info['mpms'])}; {len(info['modules'])} modules",
             f"  features with the system's library: {', '.join(system) or 'none'}",
             f"  features with a library built in: {'; '.join(built_in) or 'none'}",
             f"  features left out: {'; '.join(left) or 'none'}"]
    return "\n".join(lines)
