"""PEP 517 backend: setuptools.build_meta, with the native httpd build added to build_wheel only.
The metadata hooks and build_sdist never compile anything."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import (  # noqa: F401 - re-exported hooks
    build_sdist,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_wheel,
)

BUILT_PREFIX_ENV = "_MOD_WSGI_HTTPD_BUILT_PREFIX"
_SETUPTOOLS_KEYS = ("--build-option", "--global-option")


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
        passed = {k: v for k, v in (config_settings or {}).items() if k in _SETUPTOOLS_KEYS}
        return _setuptools.build_wheel(wheel_directory, passed or None, metadata_directory)
    finally:
        os.environ.pop(BUILT_PREFIX_ENV, None)
        shutil.rmtree(out, ignore_errors=True)
