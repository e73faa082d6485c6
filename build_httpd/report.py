"""What was built, written into the package: build-info.json (read by `mod_wsgi-httpd info`), a
CycloneDX SBOM, and the summary printed at the end of every build."""

from __future__ import annotations

import json
import platform
import uuid
from pathlib import Path
from typing import Dict, Mapping

from .recipes import Recipe, package_version

BUILD_INFO = "build-info.json"
SBOM = "sbom.cdx.json"


def write(prefix: Path, recipes: Mapping[str, Recipe], decisions, settings, compiler: str,
          configure: Mapping[str, list], build_key: str, user_libdirs=()) -> None:
    names = sorted(p.name[len("mod_"):-len(".so")] for p in (prefix / "modules").glob("mod_*.so"))
    info = {
        "package": "mod_wsgi-httpd",
        "version": package_version(recipes),
        # system: OpenSSL, nghttp2, brotli, zlib and expat are the system's shared libraries;
        # portable: the vendored components below are linked into the modules, symbols hidden
        "profile": settings.profile,
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
            name: {"built": d.built, "mode": d.mode, "library": d.feature.library, "gives": d.feature.gives,
                   "reason": d.reason}
            for name, d in decisions.items()
        },
        "compiler": compiler,
        "platform": f"{platform.system()} {platform.machine()}",
        "stripped": settings.strip,
        # library directories outside the package that modules load from (-C ssl-dir=DIR …)
        "library_dirs": list(user_libdirs),
        "build_key": build_key,
    }
    (prefix / BUILD_INFO).write_text(json.dumps(info, indent=2) + "\n")
    (prefix / SBOM).write_text(json.dumps(sbom(recipes, settings.profile, decisions), indent=2) + "\n")


def _origin(recipe: Recipe) -> str:
    return recipe.source.origin or "upstream release tarball"


def _linkage(recipe: Recipe) -> str:
    if recipe.vendored:
        return "static, symbols hidden (in the modules that use it)"
    return "executable" if recipe.name == "httpd" else "shared library in lib/"


def sbom(recipes: Mapping[str, Recipe], profile: str = "system", decisions=None) -> Dict[str, object]:
    version = package_version(recipes)
    components = []
    for r in recipes.values():
        components.append({
            "type": "library" if r.name != "httpd" else "application",
            "bom-ref": f"{r.name}@{r.version}",
            "name": r.name,
            "version": r.version,
            "licenses": [{"expression": r.license}],
            "hashes": [{"alg": "SHA-256", "content": r.source.sha256}],
            "externalReferences": [{"type": "distribution", "url": u} for u in r.source.urls]
            + [{"type": "website", "url": r.homepage}],
            "purl": f"pkg:generic/{r.name}@{r.version}?download_url={r.source.urls[0]}",
            "properties": [{"name": "mod_wsgi-httpd:linkage", "value": _linkage(r)},
                           {"name": "mod_wsgi-httpd:origin", "value": _origin(r)}],
        })
    # system-linked libraries are not in the package: they are named as what it needs from the system
    external = sorted({d.feature.library for d in (decisions or {}).values() if d.built}) if profile == "system" else []
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        # deterministic, so that the same recipes give the same SBOM (and the same wheel)
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'mod_wsgi-httpd/' + version)}",
        "version": 1,
        "metadata": {"component": {"type": "application", "name": "mod_wsgi-httpd", "version": version,
                                   "bom-ref": f"mod_wsgi-httpd@{version}"},
                     "properties": [{"name": "mod_wsgi-httpd:profile", "value": profile}]
                     + [{"name": "mod_wsgi-httpd:system-library", "value": lib} for lib in external]},
        "components": components,
        "dependencies": [{"ref": f"{r.name}@{r.version}",
                          "dependsOn": [f"{d}@{recipes[d].version}" for d in r.depends]}
                         for r in recipes.values()],
    }


def summary(prefix: Path) -> str:
    info = json.loads((prefix / BUILD_INFO).read_text())
    versions = ", ".join(f"{n} {c['version']}" for n, c in info["components"].items())
    built = [n for n, f in info["features"].items() if f["built"]]
    left = [f"{n} ({f['reason']})" for n, f in info["features"].items() if not f["built"]]
    lines = [f"built {versions} ({info.get('profile', 'system')} profile)",
             f"  MPMs: {', '.join(info['mpms'])}; {len(info['modules'])} modules",
             f"  features built: {', '.join(built) or 'none'}",
             f"  features left out: {'; '.join(left) or 'none'}"]
    return "\n".join(lines)
