"""Recipes are data: one TOML file per component under recipes/, loaded and validated here."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple

from .errors import RecipeError
from .profile import PROFILES, tomllib  # (tomli before Python 3.11)

ROOT = Path(__file__).resolve().parent.parent
RECIPES_DIR = ROOT / "recipes"
PATCHES_DIR = ROOT / "patches"

# The order the components are built in is derived from `depends`; this is only the set we expect.
COMPONENTS = ("apr", "pcre2", "apr-util", "httpd")
# auto: the system's library when its headers are found, else built in from its recipes; system:
# the system's or an error; builtin: built in; required: as auto (kept from when auto could leave a
# feature out); off: left out
FEATURE_MODES = ("auto", "system", "builtin", "required", "off")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DEBIAN_PACKAGE = re.compile(r"^([a-z0-9][a-z0-9+.-]+)?$")


@dataclass(frozen=True)
class Source:
    filename: str
    urls: Tuple[str, ...]
    size: int
    sha256: str
    skip: Tuple[str, ...] = ()  # paths inside the source tree that are not unpacked
    top: str = ""  # the folder the tarball unpacks into, when it is not NAME-VERSION
    origin: str = ""  # where the bytes and their sha256 come from (shown in `info` and the SBOM)
    debian: str = ""  # the Debian source package whose .orig tarball these bytes may be (by sha256)
    debian_revision: str = ""  # the Debian revision whose security patches the recipe applies
    # whether this package's sdists carry the file in upstream/: they carry the system profile's
    # tarballs (build_sdist), not the portable profile's (the release's sources archive does)
    in_sdists: bool = True


class Identified:
    """What a scanner matches a component by, from its `cpe` ("vendor:product") and `purl` (a
    package URL template with {version} or {version_})."""

    cpe: str
    purl: str

    def cpe23(self, version: str) -> str:
        vendor, product = self.cpe.split(":")
        return f"cpe:2.3:a:{vendor}:{product}:{version}:*:*:*:*:*:*:*"

    def package_url(self, version: str) -> str:
        return self.purl.format(version=version, version_=version.replace(".", "_"))


@dataclass(frozen=True)
class Feature:
    """An optional part of a component that needs a system library (see issue: auto/required/off)."""

    name: str
    component: str
    library: str
    gives: str
    header: str  # as the recipe writes it: the header(s) whose presence means the library is there
    packages: Dict[str, str]
    modes: Tuple[str, ...] = FEATURE_MODES
    modules: Tuple[str, ...] = ()
    on: Tuple[str, ...] = ()
    with_dir: Tuple[str, ...] = ()
    off: Tuple[str, ...] = ()
    # with a -dir setting, one of these must be in DIR, or the component's configure would quietly
    # use the system's copy of the library instead
    dir_needs_one_of: Tuple[str, ...] = ()
    # the macro (or macros joined by dots) of `header` that give the library's version
    version_macro: str = ""
    # another feature whose library this one uses too (APR-util's crypto uses mod_ssl's OpenSSL):
    # built only when that one is, from the same place (its -dir, its vendored recipe)
    same_library_as: str = ""
    pkg_config: str = ""  # its pkg-config name, when its headers need the -I that pkg-config gives
    needs: str = ""  # another feature that must be built for this one to be (its library is used too)
    # the configure arguments of other components: (component, on, with_dir, off)
    elsewhere: Tuple[Tuple[str, Tuple[str, ...], Tuple[str, ...], Tuple[str, ...]], ...] = ()
    # more arguments of its component's configure when its library is built in (a static archive:
    # httpd links what OpenSSL's needs in turn, --enable-ssl-staticlib-deps)
    built_in: Tuple[str, ...] = ()

    @property
    def headers(self) -> Tuple[Tuple[str, ...], ...]:
        """Every header the feature needs, each as its alternatives ("lua.h | lua5.4/lua.h": the
        first one the compiler sees)."""
        return tuple(tuple(a.strip() for a in part.split("|")) for part in self.header.split(" and "))

    @property
    def needed_feature(self) -> str:
        return self.needs or self.same_library_as

    @property
    def library_feature(self) -> str:
        """The feature whose library (and -dir setting, and vendored recipe) this one uses."""
        return self.same_library_as or self.name


@dataclass(frozen=True)
class Recipe(Identified):
    name: str
    version: str
    license: str
    homepage: str
    depends: Tuple[str, ...]
    source: Source
    patches: Tuple[str, ...]
    configure: Tuple[str, ...]
    make: Tuple[str, ...]
    install: Tuple[str, ...]
    configure_command: Tuple[str, ...] = ("./configure",)
    make_command: Tuple[str, ...] = ("make", "-j{jobs}")
    install_command: Tuple[str, ...] = ("make", "DESTDIR={destdir}")
    # "portable": a library built into the package (by the portable profile, and by any build for a
    # feature whose system library is missing), installed into the build's private vendor prefix
    profile: str = ""
    provides: str = ""  # the feature (of another component) this vendored library is for
    static_libs: Tuple[str, ...] = ()  # its archives, whose symbols are hidden where linked in
    link_also: Tuple[str, ...] = ()  # libraries its archives need, for every link that uses them
    # the shared libraries it puts into the package's lib/, by SONAME (lib/libapr-1.so.0): the SBOM
    # names each by its recipe. A vendored recipe's are copied there from the vendor prefix: a
    # library that must be one copy for several modules and libraries (OpenLDAP's)
    ships: Tuple[str, ...] = ()
    tools: Tuple[str, ...] = ()  # programs its build runs beyond a C toolchain, make and patch (perl)
    # configure arguments when compiling for another machine ({host}: the target's GNU triplet,
    # {machine}: its `uname -m`, {cc}: its cross compiler); the environment names the toolchain
    cross_configure: Tuple[str, ...] = ()
    modules: Tuple[str, ...] = ()
    # shared modules whose symbols other modules use, so loaded before them (httpd resolves a
    # module's symbols when it loads it): the build's own load check and httpd's test suite use it
    load_first: Tuple[str, ...] = ()
    prune: Tuple[str, ...] = ()
    license_files: Tuple[str, ...] = ()
    files: Tuple[Tuple[str, str], ...] = ()  # (path in the prefix, content) written after the prune
    features: Tuple[Feature, ...] = ()
    test_suite: Optional[Source] = None  # httpd's test framework (ci/httpd_suite.py), found like a source
    package_build: int = 0
    source_date_epoch: int = 0
    # [updates], read by ci/check_updates.py: the release series followed (OpenSSL's LTS), and the
    # upstream page listing releases with a pattern whose group is a version
    cpe: str = ""  # CPE 2.3 vendor:product, as vulnerability databases name the component
    purl: str = ""  # package URL, {version} (and {version_}: dots as underscores) filled in
    series: str = ""
    updates_url: str = ""
    updates_pattern: str = ""
    path: Path = field(default=Path(), compare=False)

    @property
    def source_dir_name(self) -> str:
        return self.source.top or f"{self.name}-{self.version}"

    @property
    def vendored(self) -> bool:
        return bool(self.profile)

    @property
    def build_tools(self) -> Tuple[str, ...]:
        """Every program its build runs beyond a C toolchain, make and patch."""
        return self.tools + tuple(t for t in self.configure_command[:1] if t == "cmake")


def _take(table: dict, key: str, kind, path: Path, where: str, default=...):
    if key not in table:
        if default is ...:
            raise RecipeError(f"recipe {path} has no `{key}` in {where}",
                              "every recipe must say it", f"add `{key}` to {where} of {path.name}")
        return default
    value = table[key]
    if kind is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise RecipeError(f"recipe {path}: `{key}` in {where} is {value!r}",
                          f"it must be {'a list of strings' if kind is list else kind.__name__}",
                          f"correct `{key}` in {path.name}")
    return tuple(value) if kind is list else value


def _feature(name: str, table: dict, component: str, path: Path) -> Feature:
    where = f"[features.{name}]"
    modes = _take(table, "modes", list, path, where, default=FEATURE_MODES)
    bad = [m for m in modes if m not in FEATURE_MODES]
    if bad:
        raise RecipeError(f"recipe {path}: {where} lists unknown modes {bad}",
                          f"modes are {', '.join(FEATURE_MODES)}", "correct the list")
    packages = _take(table, "packages", dict, path, where)
    header = table.get("header")
    if isinstance(header, list):
        header = " and ".join(_take(table, "header", list, path, where))
    elsewhere = tuple(
        (component_name, _take(t, "on", list, path, f"{where}.{component_name}", default=()),
         _take(t, "with_dir", list, path, f"{where}.{component_name}", default=()),
         _take(t, "off", list, path, f"{where}.{component_name}", default=()))
        for component_name, t in table.items() if isinstance(t, dict) and component_name != "packages")
    return Feature(
        name=name, component=component,
        library=_take(table, "library", str, path, where),
        gives=_take(table, "gives", str, path, where),
        header=header if isinstance(header, str) else _take(table, "header", str, path, where),
        same_library_as=_take(table, "same_library_as", str, path, where, default=""),
        needs=_take(table, "needs", str, path, where, default=""),
        pkg_config=_take(table, "pkg_config", str, path, where, default=""),
        built_in=_take(table, "built_in", list, path, where, default=()),
        elsewhere=elsewhere,
        packages=dict(packages), modes=tuple(modes),
        modules=_take(table, "modules", list, path, where, default=()),
        on=_take(table, "on", list, path, where, default=()),
        with_dir=_take(table, "with_dir", list, path, where, default=()),
        off=_take(table, "off", list, path, where, default=()),
        dir_needs_one_of=_take(table, "dir_needs_one_of", list, path, where, default=()),
        version_macro=_take(table, "version_macro", str, path, where, default=""),
    )


def _source(table: dict, path: Path, where: str, in_sdists: bool) -> Source:
    """A file wanted by identity (name, size, sha256), validated: the recipe's [source], or
    another file it names the same way ([test_suite])."""
    sha256 = _take(table, "sha256", str, path, where)
    if not _SHA256.match(sha256):
        raise RecipeError(f"recipe {path}: {where} sha256 is {sha256!r}",
                          "a sha256 is exactly 64 lowercase hexadecimal digits",
                          "copy the published sha256 of the tarball (ci/update_recipe.py computes it)")
    size = _take(table, "size", int, path, where)
    if size <= 0:
        raise RecipeError(f"recipe {path}: {where} size is {size}", "a size is a positive byte count",
                          "write the tarball's size in bytes")
    # a component's source has URLs; another file may be found in Debian's archive alone
    urls = _take(table, "urls", list, path, where) if where == "[source]" else _take(table, "urls", list, path,
                                                                                     where, default=())
    for url in urls:
        if not url.startswith(("https://", "http://")):
            raise RecipeError(f"recipe {path}: URL {url!r} is not http(s)", "sources are fetched over HTTP(S)",
                              "use an https:// URL")
    source = Source(in_sdists=in_sdists, filename=_take(table, "filename", str, path, where), urls=tuple(urls),
                    size=size, sha256=sha256, skip=_take(table, "skip", list, path, where, default=()),
                    top=_take(table, "top", str, path, where, default=""),
                    origin=_take(table, "origin", str, path, where, default=""),
                    debian=_take(table, "debian", str, path, where, default=""),
                    debian_revision=_take(table, "debian_revision", str, path, where, default=""))
    if not _DEBIAN_PACKAGE.match(source.debian):
        raise RecipeError(f"recipe {path}: {where} debian is {source.debian!r}",
                          "it names a Debian source package, never a revision (a revision leaves the "
                          "archive's index with the next security update; the file is found by its sha256)",
                          'write the package name alone, e.g. debian = "expat"')
    if not urls and not source.debian:
        raise RecipeError(f"recipe {path}: {where} names no URL and no Debian package",
                          "a file is fetched from its URLs or found in Debian's archive", "add `debian`")
    return source


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeError(f"cannot read recipe {path}", str(e), "restore the file from the repository")
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"recipe {path} is not valid TOML", str(e), "fix the syntax at the position given")


def _profile(data: dict, path: Path) -> str:
    profile = _take(data, "profile", str, path, "the recipe", default="")
    vendoring = [p.name for p in PROFILES.values() if p.vendors]
    if profile and profile not in vendoring:
        raise RecipeError(f"recipe {path}: profile is {profile!r}", "only vendored libraries name a profile, "
                          "one that builds its libraries in (build_httpd/profile.py)",
                          " or ".join(f'profile = "{p}"' for p in vendoring) + " or leave it out")
    return profile


def _name(data: dict, path: Path) -> str:
    name = _take(data, "name", str, path, "the recipe")
    if name != path.stem:
        raise RecipeError(f"recipe {path} names itself {name!r}", "a recipe file is named after its component",
                          f"rename the file to {name}.toml or correct `name`")
    return name


def _patches(build: dict, path: Path) -> Sequence[str]:
    patches = _take(build, "patches", list, path, "[build]", default=())
    for patch in patches:
        if not (PATCHES_DIR / patch).is_file():
            raise RecipeError(f"recipe {path} lists patch {patch!r}, which is not in {PATCHES_DIR}",
                              "a listed patch must exist", "add the patch file or remove it from the list")
    return patches


def _cpe(data: dict, path: Path) -> str:
    cpe = _take(data, "cpe", str, path, "the recipe")
    if not re.match(r"^[a-z0-9_.-]+:[a-z0-9_.-]+$", cpe):
        raise RecipeError(f"recipe {path}: cpe is {cpe!r}", "it is the CPE 2.3 vendor:product pair, e.g. openssl:openssl",
                          "write it as NVD names the component")
    return cpe


def load_recipe(path: Path) -> Recipe:
    """One recipe file, every field checked: a wrong one is a RecipeError naming the file."""
    data = _read(path)
    build = _take(data, "build", dict, path, "the recipe")
    profile = _profile(data, path)
    source = _source(_take(data, "source", dict, path, "the recipe"), path, "[source]", in_sdists=not profile)
    suite_table = _take(data, "test_suite", dict, path, "the recipe", default=None)
    test_suite = _source(suite_table, path, "[test_suite]", in_sdists=False) if suite_table else None
    name = _name(data, path)
    patches = _patches(build, path)
    updates = _take(data, "updates", dict, path, "the recipe", default={})
    cpe = _cpe(data, path)
    features = tuple(_feature(n, t, name, path) for n, t in _take(data, "features", dict, path,
                                                                  "the recipe", default={}).items())
    return Recipe(
        name=name,
        version=_take(data, "version", str, path, "the recipe"),
        license=_take(data, "license", str, path, "the recipe"),
        homepage=_take(data, "homepage", str, path, "the recipe"),
        depends=_take(data, "depends", list, path, "the recipe"),
        source=source,
        test_suite=test_suite,
        patches=patches,
        configure=_take(build, "configure", list, path, "[build]", default=()),
        make=_take(build, "make", list, path, "[build]", default=()),
        install=_take(build, "install", list, path, "[build]", default=("install",)),
        configure_command=_take(build, "configure_command", list, path, "[build]", default=("./configure",)),
        make_command=_take(build, "make_command", list, path, "[build]", default=("make", "-j{jobs}")),
        install_command=_take(build, "install_command", list, path, "[build]",
                              default=("make", "DESTDIR={destdir}")),
        tools=_take(build, "tools", list, path, "[build]", default=()),
        cross_configure=_take(build, "cross_configure", list, path, "[build]", default=()),
        profile=profile,
        provides=_take(data, "provides", str, path, "the recipe", default=""),
        static_libs=_take(data, "static_libs", list, path, "the recipe", default=()),
        link_also=_take(data, "link_also", list, path, "the recipe", default=()),
        ships=_take(data, "ships", list, path, "the recipe", default=()),
        modules=_take(build, "modules", list, path, "[build]", default=()),
        load_first=_take(build, "load_first", list, path, "[build]", default=()),
        prune=_take(build, "prune", list, path, "[build]", default=()),
        license_files=_take(build, "license_files", list, path, "[build]", default=()),
        files=tuple(sorted(_take(build, "files", dict, path, "[build]", default={}).items())),
        features=features,
        package_build=_take(data, "package_build", int, path, "the recipe", default=0),
        source_date_epoch=_take(data, "source_date_epoch", int, path, "the recipe", default=0),
        cpe=cpe,
        purl=_take(data, "purl", str, path, "the recipe"),
        series=_take(updates, "series", str, path, "[updates]", default=""),
        updates_url=_take(updates, "url", str, path, "[updates]", default=""),
        updates_pattern=_take(updates, "pattern", str, path, "[updates]", default=""),
        path=path,
    )


def load_recipes(directory: Path = RECIPES_DIR, profile: str = "system") -> Dict[str, Recipe]:
    """The recipes of a profile, keyed by name, in an order where every component follows its
    dependencies. In the portable profile a component also depends on the vendored libraries of
    its features."""
    found = {p.stem: load_recipe(p) for p in sorted(directory.glob("*.toml"))}
    found = {n: r for n, r in found.items() if r.profile in ("", profile)}
    owner = {f.name: r.name for r in found.values() for f in r.features}
    # every component whose configure a feature using the library reaches (APR-util's crypto uses
    # mod_ssl's OpenSSL: APR-util is built after OpenSSL)
    users: Dict[str, list] = {}
    for f in (f for r in found.values() for f in r.features):
        users.setdefault(f.library_feature, []).extend([f.component] + [c for c, *_ in f.elsewhere])
    for vendored in [r for r in found.values() if r.vendored]:
        if vendored.provides not in owner:
            raise RecipeError(f"recipe {vendored.path} provides {vendored.provides!r}, which no recipe has as a feature",
                              "a vendored library is built for a feature of another component",
                              "correct `provides`")
        for name in dict.fromkeys(users[vendored.provides]):
            if name in found and vendored.name not in found[name].depends:
                found[name] = replace(found[name], depends=found[name].depends + (vendored.name,))
    missing = [c for c in COMPONENTS if c not in found]
    if missing:
        raise RecipeError(f"no recipe for {', '.join(missing)} in {directory}",
                          "httpd needs all of " + ", ".join(COMPONENTS), "restore the missing recipe files")
    ordered: Dict[str, Recipe] = {}

    def visit(name: str, chain: Tuple[str, ...]) -> None:
        if name in ordered:
            return
        if name in chain:
            raise RecipeError(f"recipes depend on each other in a circle: {' -> '.join(chain + (name,))}",
                              "a build order needs a dependency tree", "correct `depends`")
        if name not in found:
            raise RecipeError(f"recipe {chain[-1]} depends on {name!r}, which has no recipe",
                              "", f"add recipes/{name}.toml or correct `depends`")
        for dep in found[name].depends:
            visit(dep, chain + (name,))
        ordered[name] = found[name]

    for name in found:
        visit(name, ())
    return ordered


def every_recipe(directory: Path = RECIPES_DIR) -> Dict[str, Recipe]:
    """The components and every library a build may build in (what the build chooses from)."""
    return load_recipes(directory, profile=next(p.name for p in PROFILES.values() if p.vendors))


def package_version(recipes: Dict[str, Recipe]) -> str:
    httpd = recipes["httpd"]
    return f"{httpd.version}.{httpd.package_build}"


def providers(recipes: Mapping[str, Recipe]) -> Dict[str, Tuple[Recipe, ...]]:
    """The vendored recipes that build each feature's libraries (mod_md's: curl and Jansson)."""
    found: Dict[str, Tuple[Recipe, ...]] = {}
    for r in recipes.values():
        if r.vendored:
            found[r.provides] = found.get(r.provides, ()) + (r,)
    return found


def all_features(recipes: Dict[str, Recipe]) -> Dict[str, Feature]:
    return {f.name: f for r in recipes.values() for f in r.features}


def main(argv) -> int:
    """The one way ci/ scripts ask the recipes (python -m build_httpd.recipes):
         (nothing)            every recipe, a line each: name, version, profile, source file
         NAME FIELD           one value: a recipe's field, or its source's (source.sha256)
         --packages MANAGER   the feature libraries' development packages for a package manager"""
    recipes = every_recipe()
    if not argv:
        for r in recipes.values():
            print(r.name, r.version, r.profile or "-", r.source.filename)
        return 0
    if len(argv) == 2 and argv[0] == "--packages":
        names = {p for f in all_features(recipes).values() for p in f.packages.get(argv[1], "").split()}
        print(" ".join(sorted(names)))
        return 0
    if len(argv) == 2 and argv[0] in recipes:
        value = recipes[argv[0]]
        for part in argv[1].split("."):
            value = getattr(value, part, None)
        if value is not None and not callable(value):
            print(" ".join(map(str, value)) if isinstance(value, tuple) else value)
            return 0
    print(main.__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
