"""Recipes are data: the real ones load, bad ones are one clear error."""

import os
import shutil

import pytest

from build_httpd import build
from build_httpd.errors import RecipeError
from build_httpd.recipes import RECIPES_DIR, load_recipe, load_recipes, package_version

PUBLISHED = {  # from the issue that pinned these releases
    "httpd": ("2.4.69", "c551b9861e26f146f57e1b1765e69c89a60b3db0ec252ccab0d36283487016bb"),
    "apr": ("1.7.6", "6a10e7f7430510600af25fabf466e1df61aaae910bf1dc5d10c44a4433ccc81d"),
    "apr-util": ("1.6.5", "f43a1c8c79eef497a022ec6c99dddbdf57e42001da6ccbfae259631ed5aa2805"),
    "pcre2": ("10.49", "929f0b20e62879252a15886b06c89f1edef61a363cbd5826fb041080a5e557ae"),
}


def test_real_recipes_load_in_dependency_order():
    recipes = load_recipes()
    order = list(recipes)
    assert order.index("apr") < order.index("apr-util") < order.index("httpd")
    assert order.index("pcre2") < order.index("httpd")
    for name, (version, sha256) in PUBLISHED.items():
        assert (recipes[name].version, recipes[name].source.sha256) == (version, sha256)
        assert recipes[name].source.filename == f"{name}-{version}.tar.gz"
        assert len(recipes[name].source.urls) >= 2  # primary and archive
    assert package_version(recipes) == "2.4.69.4"


@pytest.fixture
def recipes_copy(tmp_path):
    target = tmp_path / "recipes"
    shutil.copytree(RECIPES_DIR, target)
    return target


def edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize("old,new,expect", [
    ('sha256 = "6a10e7f7', 'sha256 = "6a10e7f', "64 lowercase hexadecimal"),
    ('size = 1138032', 'size = "big"', "`size`"),
    ('version = "1.7.6"\n', "", "no `version`"),
    ('patches = ["apr-relocatable-config-script.patch"]', 'patches = ["gone.patch"]', "gone.patch"),
    ('name = "apr"', 'name = "apr"\nname = "twice"', "not valid TOML"),
    ('"https://downloads.apache.org/apr/apr-1.7.6.tar.gz"', '"ftp://example.invalid/apr.tgz"', "not http"),
])
def test_a_bad_recipe_is_one_clear_error(recipes_copy, old, new, expect):
    edit(recipes_copy / "apr.toml", old, new)
    with pytest.raises(RecipeError) as e:
        load_recipes(recipes_copy)
    assert expect in str(e.value) and "apr.toml" in str(e.value)


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
    vendored = {"openssl", "nghttp2", "brotli", "zlib", "expat", "lua", "libxml2"}
    assert set(system) == {"apr", "apr-util", "pcre2", "httpd"}
    assert set(portable) == set(system) | vendored
    order = list(portable)
    for name in ("openssl", "nghttp2", "brotli", "zlib", "lua", "libxml2"):
        assert name in portable["httpd"].depends and order.index(name) < order.index("httpd")
        assert name not in system["httpd"].depends
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
