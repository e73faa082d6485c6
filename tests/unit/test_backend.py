"""The PEP 517 surface: metadata hooks answer without compiling; the build cache degrades safely."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from build_httpd import cache
from build_httpd.recipes import load_recipes, package_version

ROOT = Path(__file__).resolve().parents[2]

HOOKS = """
import sys, tempfile
from build_httpd import backend
print(backend.get_requires_for_build_wheel())
print(backend.prepare_metadata_for_build_wheel(tempfile.mkdtemp()))
print("build_httpd.build" in sys.modules, "build_httpd.sources" in sys.modules)
"""


def checkout_copy(tmp_path) -> Path:
    """The hooks write metadata (an .egg-info) beside the sources: run them on a copy."""
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv*", "build", "*.egg-info",
                                                              "__pycache__", "upstream", "tests"))
    return copy


def test_metadata_hooks_never_reach_the_build_engine(tmp_path):
    copy = checkout_copy(tmp_path)
    before = sorted((ROOT / "src").glob("*.egg-info"))
    result = subprocess.run([sys.executable, "-c", HOOKS], cwd=copy, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-2] == f"mod_wsgi_httpd-{package_version(load_recipes())}.dist-info"
    assert lines[-1] == "False False"  # neither the engine nor the downloader was even imported
    assert sorted((ROOT / "src").glob("*.egg-info")) == before  # the checkout itself was not written to
    assert list((copy / "src").glob("*.egg-info"))


def test_an_unusable_build_cache_is_skipped_not_fatal(tmp_path, capsys):
    not_a_dir = tmp_path / "cache"
    not_a_dir.write_text("a file where the cache directory should be")
    assert cache.open_cache(not_a_dir) == (None, None)
    assert f"build cache bypassed: {not_a_dir} is not a directory" in capsys.readouterr().err


def test_a_target_s_toolchain_is_made_beforehand_not_a_build_requirement():
    """-C target=manylinux_2_28_x86_64 compiles with a toolchain made before the build (zig is
    needed to make it, python -m build_httpd.toolchain, not by the build): pip's isolated build
    environment gets nothing for it."""
    from build_httpd import backend
    plain = backend.get_requires_for_build_wheel({"target": "manylinux_2_31_x86_64"})
    for target in ("manylinux_2_28_x86_64", "musllinux_1_2_x86_64"):
        assert backend.get_requires_for_build_wheel({"target": target}) == plain


def test_a_feature_without_a_library_of_its_own_has_no_dir_setting(tmp_path):
    """session-crypto uses mod_ssl's OpenSSL: -C session-crypto-dir would be accepted and ignored,
    so it is refused, naming the settings there are; ssl-dir is one of them."""
    from build_httpd import backend
    from build_httpd.errors import SettingError
    from build_httpd.recipes import load_recipes
    with pytest.raises(SettingError) as e:
        backend._settings({"session-crypto-dir": str(tmp_path)}, load_recipes())
    assert "unknown config setting -C session-crypto-dir" in str(e.value) and "ssl-dir=DIR" in str(e.value)
    assert backend._settings({"ssl-dir": str(tmp_path)}, load_recipes()).feature_dirs["ssl"] == tmp_path.resolve()
