"""The setuptools half of the build: puts the httpd prefix that build_httpd built into the wheel,
and tags the wheel as independent of the Python ABI (nothing in it links Python)."""

import os
import shutil
import stat
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel as _bdist_wheel
from setuptools.command.build import build as _build
from setuptools.command.build_py import build_py as _build_py

from build_httpd.backend import BUILD_BASE_ENV, BUILT_PREFIX_ENV, PLATFORM_ENV
from build_httpd.recipes import load_recipes, package_version
from build_httpd.report import SBOM


class build(_build):
    def initialize_options(self):
        super().initialize_options()
        # pip builds a local directory in place: a private build directory per build keeps stale
        # files of an earlier build (other features) and concurrent builds out of this wheel
        self.build_base = os.environ.get(BUILD_BASE_ENV) or self.build_base


def copy_plain_tree(source: Path, target: Path) -> None:
    """Copy the built prefix into the wheel: regular files and directories only. A link would
    copy whatever it points at on this machine into the wheel, so it stops the build."""
    for dirpath, dirnames, filenames in os.walk(source):
        here = Path(dirpath)
        (target / here.relative_to(source)).mkdir(parents=True, exist_ok=True)
        for name in dirnames + filenames:
            path = here / name
            mode = os.lstat(path).st_mode
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise SystemExit(f"mod_wsgi-httpd: {path} is not a regular file or directory; "
                                 "nothing but those goes into the wheel")
            if stat.S_ISREG(mode):
                shutil.copy2(path, target / path.relative_to(source), follow_symlinks=False)


class build_py(_build_py):
    def run(self):
        super().run()
        built = os.environ.get(BUILT_PREFIX_ENV)
        if not built:
            raise SystemExit("mod_wsgi-httpd: build wheels through the PEP 517 backend "
                             "(pip install . / pip wheel . / python -m build), not setup.py")
        target = Path(self.build_lib) / "mod_wsgi_packages" / "httpd"
        for name in os.listdir(built):  # the Python files of the package stay; the prefix is replaced
            if (target / name).is_dir():
                shutil.rmtree(target / name)
        copy_plain_tree(Path(built), target)


class BinaryDistribution(Distribution):
    """Native code without a Python extension: the files belong in platlib, at the wheel's root
    (auditwheel refuses binaries under .data/purelib)."""

    def has_ext_modules(self):
        return True


class bdist_wheel(_bdist_wheel):
    def get_tag(self):
        """Any Python 3, no Python ABI; the platform is this machine's, or the target's when the
        backend cross-compiled (build_httpd/profile.py)."""
        _, _, platform = super().get_tag()
        return "py3", "none", os.environ.get(PLATFORM_ENV) or platform

    def write_wheelfile(self, distinfo_path, *args, **kwargs):
        """The SBOM of what the wheel carries also goes where PEP 770 says tools look for it (the
        .dist-info directory is complete here, whether copied from prepared metadata or made)."""
        super().write_wheelfile(distinfo_path, *args, **kwargs)
        built = os.environ.get(BUILT_PREFIX_ENV)
        if built:  # not while only the metadata is prepared
            sboms = Path(distinfo_path) / "sboms"
            sboms.mkdir(exist_ok=True)
            shutil.copy2(Path(built) / SBOM, sboms / SBOM)


setup(
    version=package_version(load_recipes()),
    distclass=BinaryDistribution,
    cmdclass={"build": build, "build_py": build_py, "bdist_wheel": bdist_wheel},
)
