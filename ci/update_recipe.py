#!/usr/bin/env python3
"""Write the size and sha256 of new source tarballs into recipes/, then show the diff.

    python3 ci/update_recipe.py [--recipes DIR] DIR-OR-URL [DIR-OR-URL ...]

Each argument is a directory of tarballs or a tarball's URL. A tarball is matched to its recipe by
name (httpd-2.4.70.tar.gz → recipes/httpd.toml); the recipe's version, filename, URLs, size and sha256
are rewritten for it. The portable profile's libraries come from Debian's source packages: a Debian
.orig tarball (openssl_3.5.8.orig.tar.gz) is matched to the recipe whose `debian` field names that
source package (found again by its sha256 in any revision: no revision is written); review
`origin`, `debian_revision` and the patches by hand. Check the new sha256 against the project's published one before committing:
this script records what you downloaded, it cannot know whether that is the real release.
"""

import hashlib
import re
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from build_httpd import network  # noqa: E402
from build_httpd.errors import BuildError  # noqa: E402
from build_httpd.profile import tomllib  # noqa: E402
from build_httpd.recipes import RECIPES_DIR, load_recipes  # noqa: E402

try:
    import tomlkit  # edits a recipe as TOML, its comments and layout kept
except ImportError:
    raise SystemExit("update-recipe: needs tomlkit (pip install tomlkit; ci/requirements-test.txt has it)")

# the archive kinds the recipes use: .tar.gz, .tar.xz (libxml2), .tar.bz2, .tgz (OpenLDAP)
ARCHIVE = r"\.(?:tar\.(?:gz|xz|bz2)|tgz)"
TARBALL = re.compile(rf"^(?P<name>[a-z0-9-]+?)-(?P<version>\d[\w.]*?){ARCHIVE}$")
DEBIAN_ORIG = re.compile(rf"^(?P<package>[a-z0-9.+-]+)_(?:[\w.+]*really)?(?P<version>\d[\w.]*?)\.orig{ARCHIVE}$")
ARCHIVE_GLOBS = ("*.tar.gz", "*.tar.xz", "*.tar.bz2", "*.tgz")


def debian_recipe(path: Path, recipes_dir: Path):
    """(recipe name, upstream version) for a Debian .orig tarball, by the recipes' `debian` field."""
    match = DEBIAN_ORIG.match(path.name)
    if not match:
        return None
    for recipe in sorted(recipes_dir.glob("*.toml")):
        if tomllib.loads(recipe.read_text()).get("source", {}).get("debian") == match.group("package"):
            return recipe.stem, match.group("version")
    return None


def tarballs(args):
    for arg in args:
        if re.match(r"^https?://", arg):
            # through pip's configuration: its index's certificates, client certificate and proxy
            target = Path(tempfile.mkdtemp()) / arg.rsplit("/", 1)[-1]
            with network.session().get(arg, stream=True, timeout=(10, 60)) as r:
                if r.status_code != 200:
                    raise SystemExit(f"update-recipe: {network.redact(arg)} answered {r.status_code}")
                with open(target, "wb") as f:
                    for chunk in r.iter_content(1 << 16):
                        f.write(chunk)
            yield target
        elif Path(arg).is_dir():
            yield from sorted(p for pattern in ARCHIVE_GLOBS for p in Path(arg).glob(pattern))
        elif Path(arg).is_file():
            yield Path(arg)
        else:
            raise SystemExit(f"update-recipe: {arg} is neither a directory, a file nor an http(s) URL")


def renamed(value, rename):
    """A TOML value with every string in it renamed: lists and tables changed in place, and only
    where a string changes (tomlkit keeps the others as they were written, quotes included)."""
    if isinstance(value, str):
        return rename(value)
    for key in range(len(value)) if isinstance(value, list) else list(value) if isinstance(value, dict) else ():
        new = renamed(value[key], rename)
        if isinstance(new, str) and new != value[key]:
            value[key] = new
    return value


def update(path: Path, recipes_dir: Path) -> bool:
    match = TARBALL.match(path.name)
    name, new = (match.group("name"), match.group("version")) if match else (None, None)
    from_debian = debian_recipe(path, recipes_dir)
    if from_debian:
        name, new = from_debian
    recipe_path = recipes_dir / f"{name}.toml" if name else None
    if recipe_path is None or not recipe_path.is_file():
        print(f"skipped {path.name}: no recipe of that name", file=sys.stderr)
        return False
    doc = tomlkit.parse(recipe_path.read_text())
    old = str(doc["version"])
    data = path.read_bytes()

    def rename(text: str) -> str:  # where a string names the version: file names, URLs, tags
        text = text.replace(f"{name}-{old}", f"{name}-{new}").replace(f"R_{old.replace('.', '_')}",
                                                                    f"R_{new.replace('.', '_')}")
        return re.sub(r"/" + re.escape(old) + r"/", f"/{new}/", text.replace(f"/v{old}", f"/v{new}"))
    for key in doc:
        if key == "version":
            continue
        value = renamed(doc[key], rename)
        if isinstance(value, str) and value != doc[key]:
            doc[key] = value
    doc["version"] = new
    if not from_debian:  # the file given is the one the recipe verifies from now on
        doc["source"]["filename"] = path.name
    doc["source"]["size"] = len(data)
    doc["source"]["sha256"] = hashlib.sha256(data).hexdigest()
    if from_debian:
        print(f"{recipe_path.name}: from Debian's {path.name}; check `origin` (and `top`, for a tag "
              "archive); for a new upstream version, drop `debian_revision` and the Debian security "
              "patches it names, unless they are still needed", file=sys.stderr)
    if name == "httpd":
        if old != new:
            doc["package_build"] = 1
        with tarfile.open(path) as tar:
            doc["source_date_epoch"] = max(m.mtime for m in tar.getmembers())
    recipe_path.write_text(tomlkit.dumps(doc))
    print(f"{recipe_path.name}: {old} -> {new}, {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
    return True


def main(argv):
    recipes_dir = RECIPES_DIR
    if argv[:1] == ["--recipes"]:
        recipes_dir, argv = Path(argv[1]), argv[2:]
    if not argv:
        raise SystemExit(__doc__)
    originals = {p: p.read_text() for p in recipes_dir.glob("*.toml")}
    changed = [update(p, recipes_dir) for p in tarballs(argv)]
    try:
        load_recipes(recipes_dir, profile="portable")  # every recipe, the portable profile's too
    except BuildError as e:
        raise SystemExit(f"update-recipe: the recipes no longer load: {e}")
    if any(changed):
        import difflib
        for path, before in sorted(originals.items()):
            sys.stdout.writelines(difflib.unified_diff(before.splitlines(True), path.read_text().splitlines(True),
                                                       f"a/{path.name}", f"b/{path.name}"))


if __name__ == "__main__":
    main(sys.argv[1:])
