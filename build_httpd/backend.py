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
    get_requires_for_build_wheel,
    prepare_metadata_for_build_wheel,
)

BUILT_PREFIX_ENV = "_MOD_WSGI_HTTPD_BUILT_PREFIX"
BUILD_BASE_ENV = "_MOD_WSGI_HTTPD_BUILD_BASE"


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
    from .recipes import all_features, load_recipes
    from .settings import SETUPTOOLS_KEYS, load_settings

    out = Path(tempfile.mkdtemp(prefix="mod_wsgi-httpd-wheel-"))
    try:
        try:
            recipes = load_recipes()
            features = {name: f.modes for name, f in all_features(recipes).items()}
            prefix = build_prefix(load_settings(config_settings, features), out)
        except BuildError as error:
            sys.stderr.write(format_error(error))
            sys.stderr.flush()
            raise SystemExit(1) from None
        passed = {k: v for k, v in (config_settings or {}).items() if k in SETUPTOOLS_KEYS}
        # SOURCE_DATE_EPOCH: fixed timestamps inside the wheel too (setuptools honours it)
        with _environ(**{BUILT_PREFIX_ENV: str(prefix), BUILD_BASE_ENV: str(out / "setuptools-build"),
                         "SOURCE_DATE_EPOCH": source_date_epoch(recipes)}):
            return _setuptools.build_wheel(wheel_directory, passed or None, metadata_directory)
    finally:
        shutil.rmtree(out, ignore_errors=True)
