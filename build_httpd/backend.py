"""PEP 517 backend: setuptools.build_meta, with the native httpd build added to build_wheel only.
The metadata hooks and build_sdist never compile anything."""

import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import (  # noqa: F401 - re-exported hooks
    get_requires_for_build_sdist,
    prepare_metadata_for_build_wheel,
)

BUILT_PREFIX_ENV = "_MOD_WSGI_HTTPD_BUILT_PREFIX"
BUILD_BASE_ENV = "_MOD_WSGI_HTTPD_BUILD_BASE"
PLATFORM_ENV = "_MOD_WSGI_HTTPD_PLATFORM"  # the wheel's platform tag, when built for another machine


def _settings(config_settings, recipes):
    """The build's settings: the recipes say which features there are and which of them use a
    library of their own (-C FEATURE-dir)."""
    from .recipes import all_features
    from .settings import load_settings
    features = all_features(recipes)
    return load_settings(config_settings, {name: f.modes for name, f in features.items()},
                         with_dirs=[name for name, f in features.items() if f.library_feature == name])


def get_requires_for_build_wheel(config_settings=None):
    """setuptools' own, plus CMake from the package index when a library the build will build in
    needs it (brotli, expat, Jansson, libxml2 and nghttp2 build with CMake) and this machine has
    none: on a machine without a library's headers, as in the portable profile."""
    from .errors import BuildError
    from .features import chosen_recipes, decide
    from .recipes import all_features, every_recipe

    requires = list(_setuptools.get_requires_for_build_wheel(config_settings))
    if shutil.which("cmake"):
        return requires
    recipes = every_recipe()
    try:
        settings = _settings(config_settings, recipes)
        env = settings.target.environment(dict(os.environ))  # (what build_httpd.build decides with)
        built = chosen_recipes(recipes, decide(all_features(recipes), settings, recipes, env["CC"], env,
                                               have=lambda tool: True))
    except BuildError:  # a bad setting or a missing library: build_wheel says so, with the whole message
        return requires
    if any("cmake" in r.build_tools for r in built.values()):
        requires.append("cmake>=3.16")
    # (a target's toolchain is made before the build, python -m build_httpd.toolchain)
    return requires


def build_sdist(sdist_directory, config_settings=None):
    """An sdist that carries the verified source tarballs in upstream/, so that installing from it
    needs nothing but the index (for build tools) and a compiler; they are verified again then."""
    from .cache import open_cache
    from .errors import BuildError, format_error
    from .recipes import ROOT, load_recipes
    from .sources import Places, obtain_sources

    upstream = ROOT / "upstream"
    created = not upstream.exists()
    try:
        try:
            recipes = load_recipes()
            settings = _settings(config_settings, recipes)
            _, sources = open_cache(settings.cache_dir) if settings.use_build_cache else (None, None)
            with tempfile.TemporaryDirectory() as scratch:
                found = obtain_sources((r.source for r in recipes.values()), Path(scratch),
                                       Places(sources_dir=settings.sources_dir, cache_dir=sources))
                upstream.mkdir(exist_ok=True)
                for name, path in found.items():
                    shutil.copyfile(path, upstream / name)
        except BuildError as error:
            sys.stderr.write(format_error(error))
            raise SystemExit(1) from None
        return _setuptools.build_sdist(sdist_directory, _setuptools_settings(config_settings))
    finally:
        if created:
            shutil.rmtree(upstream, ignore_errors=True)


def _setuptools_settings(config_settings):
    """Only the config settings setuptools itself understands; ours are read by load_settings."""
    from .settings import SETUPTOOLS_KEYS
    passed = {k: v for k, v in (config_settings or {}).items() if k in SETUPTOOLS_KEYS}
    return passed or None


@contextmanager
def _environ(**values):
    """Set environment variables for setup.py (which setuptools runs in this process), then
    restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    """Build (or reuse from the build cache) httpd, then let setuptools package it."""
    from .build import build_prefix, source_date_epoch
    from .errors import BuildError, format_error
    from .recipes import every_recipe

    out = Path(tempfile.mkdtemp(prefix="mod_wsgi-httpd-wheel-"))
    try:
        try:
            recipes = every_recipe()
            settings = _settings(config_settings, recipes)
            prefix = build_prefix(settings, out, recipes)
        except BuildError as error:
            sys.stderr.write(format_error(error))
            sys.stderr.flush()
            raise SystemExit(1) from None
        passed = _setuptools_settings(config_settings)
        # SOURCE_DATE_EPOCH: fixed timestamps inside the wheel too (setuptools honours it)
        platform = {PLATFORM_ENV: settings.target.wheel_platform} if settings.target.cross else {}
        with _environ(**{BUILT_PREFIX_ENV: str(prefix), BUILD_BASE_ENV: str(out / "setuptools-build"),
                         "SOURCE_DATE_EPOCH": source_date_epoch(recipes)}, **platform):
            return _setuptools.build_wheel(wheel_directory, passed, metadata_directory)
    finally:
        shutil.rmtree(out, ignore_errors=True)
