#!/usr/bin/env python3
"""Fetch source tarballs, verified, for test roots that build software of their own (a musl
CPython and its libraries: ci/musl-python): a recipe's source (by its name), or an upstream
tarball from Debian's archive (the one apt is configured with) verified against the sha256
Debian's signed source index lists for it.

Usage:  python3 ci/fetch_sources.py OUTDIR (RECIPE | PACKAGE=UPSTREAM_VERSION)...   e.g. zlib libffi=3.4.4

PACKAGE=VERSION: the file PACKAGE_VERSION.orig.tar.* as any revision of the package lists it (a
file stays in the pool when the index moves on to a newer revision). Prints each file's path.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from build_httpd import debian, network  # noqa: E402
from build_httpd.errors import BuildError, format_error  # noqa: E402
from build_httpd.recipes import Source, load_recipes  # noqa: E402
from build_httpd.archive import debian_entries  # noqa: E402
from build_httpd.sources import obtain_sources  # noqa: E402


def main(argv):
    recipes = load_recipes(profile="portable")
    if len(argv) < 2 or not all("=" in a or a in recipes for a in argv[1:]):
        sys.exit(__doc__)
    out = Path(argv[0])
    sources = [recipes[a].source for a in argv[1:] if "=" not in a]
    wanted = dict(a.split("=", 1) for a in argv[1:] if "=" in a)
    entries, _, _ = debian_entries(network.session(), debian.archives(), set(wanted)) if wanted else ([], [], {})
    for package, version in wanted.items():
        prefix = f"{package}_{version}.orig.tar."
        found = {(name, size, sha) for _, e in entries if e.package == package
                 for name, size, sha in e.files if name.startswith(prefix) and not name.endswith(".asc")}
        if len(found) != 1:
            sys.exit(f"debian-orig: {prefix}* is listed {len(found)} times in Debian's source indexes; "
                     f"name a version that some revision of {package} lists")
        name, size, sha = found.pop()
        sources.append(Source(filename=name, urls=(), size=size, sha256=sha, debian=package))
    try:
        got = obtain_sources(sources, out)
    except BuildError as e:
        sys.exit(format_error(e))
    for path in got.values():
        print(path)


if __name__ == "__main__":
    main(sys.argv[1:])
