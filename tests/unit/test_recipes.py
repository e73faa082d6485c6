"""Recipes are data: the real ones load, bad ones are one clear error."""

import os
import shutil
from pathlib import Path

import pytest

from build_httpd import build
from build_httpd.errors import RecipeError
from build_httpd.recipes import RECIPES_DIR, load_recipe, load_recipes, package_version

def test_real_recipes_load_in_dependency_order():
    """Every component after what it depends on; each upstream tarball named NAME-VERSION with a
    primary and an archive URL; the package version is httpd's plus the recipe's build number
    (taken from the recipes: a version bump changes nothing here)."""
    recipes = load_recipes()
    order = list(recipes)
    for name, recipe in recipes.items():
        assert all(order.index(d) < order.index(name) for d in recipe.depends), name
    assert order.index("apr") < order.index("apr-util") < order.index("httpd")
    for name in ("httpd", "apr", "apr-util", "pcre2"):
        assert recipes[name].source.filename == f"{name}-{recipes[name].version}.tar.gz"
        assert len(recipes[name].source.urls) >= 2  # primary and archive
    httpd = recipes["httpd"]
    assert package_version(recipes) == f"{httpd.version}.{httpd.package_build}"


@pytest.fixture
def recipes_copy(tmp_path):
    target = tmp_path / "recipes"
    shutil.copytree(RECIPES_DIR, target)
    return target


def edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


APR = load_recipe(RECIPES_DIR / "apr.toml")  # the edits below are made of its own values: a version bump changes nothing
HTTPD = load_recipe(RECIPES_DIR / "httpd.toml")


@pytest.mark.parametrize("name,old,new,expect", [
    ("apr", f'sha256 = "{APR.source.sha256}"', f'sha256 = "{APR.source.sha256[:-1]}"', "64 lowercase hexadecimal"),
    ("apr", f"size = {APR.source.size}", 'size = "big"', "`size`"),
    ("apr", f'version = "{APR.version}"\n', "", "no `version`"),
    ("apr", f'patches = ["{APR.patches[0]}"]', 'patches = ["gone.patch"]', "gone.patch"),
    ("apr", 'name = "apr"', 'name = "apr"\nname = "twice"', "not valid TOML"),
    ("apr", f'"{APR.source.urls[0]}"', '"ftp://example.invalid/apr.tgz"', "not http"),
    ("httpd", f'sha256 = "{HTTPD.test_suite.sha256}"', 'sha256 = "abc"', "[test_suite] sha256"),
    ("httpd", f'debian = "{HTTPD.test_suite.debian}"\norigin', 'origin', "[test_suite] names no URL and no Debian"),
])
def test_a_bad_recipe_is_one_clear_error(recipes_copy, name, old, new, expect):
    edit(recipes_copy / f"{name}.toml", old, new)
    with pytest.raises(RecipeError) as e:
        load_recipes(recipes_copy)
    assert expect in str(e.value) and f"{name}.toml" in str(e.value)


def test_circular_dependencies_are_reported(recipes_copy):
    edit(recipes_copy / "apr.toml", "depends = []", 'depends = ["httpd"]')
    with pytest.raises(RecipeError, match="circle"):
        load_recipes(recipes_copy)


def test_a_patch_that_does_not_apply_is_a_hard_error(tmp_path):
    recipe = load_recipe(RECIPES_DIR / "apr.toml")
    (tmp_path / "apr-config.in").write_text("nothing the patch expects\n")
    with pytest.raises(RecipeError) as e:
        build.apply_patches(recipe, tmp_path, tmp_path / "logs", dict(os.environ))
    assert "apr-relocatable-config-script.patch does not apply" in str(e.value)
    assert "refresh" in str(e.value)


def test_the_portable_profile_adds_the_vendored_libraries_before_their_users():
    system, portable = load_recipes(), load_recipes(profile="portable")
    vendored = {"openssl", "nghttp2", "brotli", "zlib", "expat", "lua", "libxml2", "curl", "jansson", "openldap"}
    assert set(system) == {"apr", "apr-util", "pcre2", "httpd"}
    assert set(portable) == set(system) | vendored
    order = list(portable)
    for name in ("openssl", "nghttp2", "brotli", "zlib", "lua", "libxml2", "curl", "jansson", "openldap"):
        assert name in portable["httpd"].depends and order.index(name) < order.index("httpd")
        assert name not in system["httpd"].depends
    # mod_md's libcurl and OpenLDAP's TLS are the vendored OpenSSL; APR-util's LDAP layer is OpenLDAP
    for name in ("curl", "openldap"):
        assert order.index("openssl") < order.index(name)
    assert "openldap" in portable["apr-util"].depends and order.index("openldap") < order.index("apr-util")
    assert "expat" in portable["apr-util"].depends and order.index("expat") < order.index("apr-util")
    # APR-util's crypto (mod_session_crypto) uses mod_ssl's OpenSSL: the same one, built first
    assert "openssl" in portable["apr-util"].depends and order.index("openssl") < order.index("apr-util")
    for name in vendored:
        r = portable[name]
        assert r.vendored and r.source.origin and r.source.debian and r.license and r.license_files
    assert portable["openssl"].version.startswith("3.5.")  # the LTS series the issue asks for
    assert portable["brotli"].source_dir_name == "google-brotli-028fb5a"


def test_a_vendored_library_for_an_unknown_feature_is_one_clear_error(recipes_copy):
    edit(recipes_copy / "zlib.toml", 'provides = "deflate"', 'provides = "gzip"')
    load_recipes(recipes_copy)  # the system profile does not read it
    with pytest.raises(RecipeError) as e:
        load_recipes(recipes_copy, profile="portable")
    assert "'gzip'" in str(e.value) and "zlib.toml" in str(e.value)


def test_the_shell_s_package_list_is_the_recipes_own():
    """ci/system-packages.sh reads the -dev packages with sed (no Python in a fresh root yet): it
    must give exactly what `python -m build_httpd.recipes --packages debian` gives."""
    import subprocess
    import sys
    root = RECIPES_DIR.parent
    shell = subprocess.run(["bash", "-c", ". ci/system-packages.sh; recipe_dev_packages"], cwd=root,
                           capture_output=True, text=True, check=True).stdout.split()
    python = subprocess.run([sys.executable, "-m", "build_httpd.recipes", "--packages", "debian"], cwd=root,
                            capture_output=True, text=True, check=True).stdout.split()
    assert sorted(shell) == python and python


def test_what_vendored_archives_need_is_in_the_libs_of_the_components_that_link_them_only():
    """OpenSSL's -ldl in APR's LIBS made APR record none of its own (apr-1-config --libs), and ab,
    which links APR's recorded libraries, failed to link on Debian 11; a -ldl before the archives
    (LDFLAGS) does not help there: that linker drops a shared library nothing needs yet."""
    from build_httpd.profile import PROFILES, link_libs
    recipes, portable = load_recipes(profile="portable"), PROFILES["portable"]
    assert link_libs("apr", recipes, "-lfoo") == "-lfoo"
    assert link_libs("pcre2", recipes) == ""
    assert link_libs("httpd", load_recipes(), "-lfoo") == "-lfoo"  # the system profile vendors nothing
    libs = link_libs("httpd", recipes, "-lfoo").split()
    assert libs[0] == "-lfoo" and {"-ldl", "-pthread", "-lm"} <= set(libs) and libs.count("-lm") == 1
    # every component that links a vendored archive has the same, so they share one autoconf cache
    assert link_libs("apr-util", recipes, "-lfoo") == link_libs("curl", recipes, "-lfoo") == " ".join(libs)
    assert build.config_cache(Path("/w"), "") == Path("/w/config.cache")
    assert build.config_cache(Path("/w"), " ".join(libs)) != build.config_cache(Path("/w"), "-lfoo") != Path("/w/config.cache")
    env = portable.environment({"LDFLAGS": "-Wl,-z,now", "LIBS": "-lfoo"}, recipes)
    assert env["LIBS"] == "-lfoo" and "-ldl" not in env["LDFLAGS"]


def test_the_portable_build_root_has_every_tool_the_recipes_run():
    """ci/system-packages.sh finds CMake in the recipes with grep (no Python in a fresh root yet):
    the portable build root's package list must hold every program a recipe's build runs, as
    the recipes themselves say (Recipe.build_tools: Perl for OpenSSL, CMake for five)."""
    import subprocess
    shell = subprocess.run(["bash", "-c", '. ci/system-packages.sh; echo "$PORTABLE_BUILD_PACKAGES"'],
                           cwd=RECIPES_DIR.parent, capture_output=True, text=True, check=True).stdout.split()
    tools = {t for r in load_recipes(profile="portable").values() for t in r.build_tools}
    assert tools >= {"perl", "cmake"} and tools <= set(shell), (tools, shell)
