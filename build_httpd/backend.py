"""PEP 517 backend: setuptools.build_meta, with the native httpd build added to build_wheel only.
The metadata hooks and build_sdist never compile anything."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import (  # noqa: F401 - re-exported hooks
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_wheel,
)

BUILT_PREFIX_ENV = "_MOD_WSGI_HTTPD_BUILT_PREFIX"
BUILD_BASE_ENV = "_MOD_WSGI_HTTPD_BUILD_BASE"
_SETUPTOOLS_KEYS = ("--build-option", "--global-option")


def build_sdist(sdist_directory, config_settings=None):
    """An sdist that carries the verified source tarballs in upstream/, so that installing from it
    needs nothing but the index (for build tools) and a compiler; they are verified again then."""
    from .errors import BuildError, format_error
    from .recipes import ROOT, load_recipes
    from .settings import default_cache_dir
    from .sources import obtain_sources

    upstream = ROOT / "upstream"
    created = not upstream.exists()
    try:
        try:
            recipes = load_recipes()
            with tempfile.TemporaryDirectory() as scratch:
                found = obtain_sources((r.source for r in recipes.values()), None,
                                       Path(os.environ.get("MOD_WSGI_HTTPD_CACHE") or default_cache_dir()),
                                       Path(scratch))
                upstream.mkdir(exist_ok=True)
                for name, path in found.items():
                    if path.parent != upstream:
                        shutil.copyfile(path, upstream / name)
        except BuildError as error:
            sys.stderr.write(format_error(error))
            raise SystemExit(1) from None
        return _setuptools.build_sdist(sdist_directory, config_settings)
    finally:
        if created:
            shutil.rmtree(upstream, ignore_errors=True)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    """Build (or reuse from the build cache) httpd, then let setuptools package it."""
    from .build import build_prefix
    from .errors import BuildError, format_error
    from .recipes import all_features, load_recipes
    from .settings import load_settings

    out = Path(tempfile.mkdtemp(prefix="mod_wsgi-httpd-wheel-"))
    try:
        try:
            features = {name: f.modes for name, f in all_features(load_recipes()).items()}
            prefix = build_prefix(load_settings(config_settings, features), out)
        except BuildError as error:
            sys.stderr.write(format_error(error))
            sys.stderr.flush()
            raise SystemExit(1) from None
        os.environ[BUILT_PREFIX_ENV] = str(prefix)
        os.environ[BUILD_BASE_ENV] = str(out / "setuptools-build")
        passed = {k: v for k, v in (config_settings or {}).items() if k in _SETUPTOOLS_KEYS}
        return _setuptools.build_wheel(wheel_directory, passed or None, metadata_directory)
    finally:
        os.environ.pop(BUILT_PREFIX_ENV, None)
        os.environ.pop(BUILD_BASE_ENV, None)
        shutil.rmtree(out, ignore_errors=True)
