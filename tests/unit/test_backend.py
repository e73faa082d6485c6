"""The PEP 517 surface: metadata hooks answer without compiling; the build cache degrades safely."""

import subprocess
import sys
from pathlib import Path

from build_httpd import cache

ROOT = Path(__file__).resolve().parents[2]

HOOKS = """
import sys, tempfile
from build_httpd import backend
print(backend.get_requires_for_build_wheel())
print(backend.prepare_metadata_for_build_wheel(tempfile.mkdtemp()))
print("build_httpd.build" in sys.modules, "build_httpd.sources" in sys.modules)
"""


def test_metadata_hooks_never_reach_the_build_engine(tmp_path):
    result = subprocess.run([sys.executable, "-c", HOOKS], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-2] == "mod_wsgi_httpd-2.4.69.2.dist-info"
    assert lines[-1] == "False False"  # neither the engine nor the downloader was even imported


def test_an_unusable_build_cache_is_skipped_not_fatal(tmp_path, capsys):
    not_a_dir = tmp_path / "cache"
    not_a_dir.write_text("a file where the cache directory should be")
    with cache.exclusive(not_a_dir, "0" * 64) as locked:
        assert locked is False
    assert "cannot be locked" in capsys.readouterr().err


def test_the_build_lock_is_taken_and_released(tmp_path):
    with cache.exclusive(tmp_path, "1" * 64) as locked:
        assert locked is True
        assert (tmp_path / "builds" / ("1" * 64 + ".lock")).exists()
    with cache.exclusive(tmp_path, "1" * 64) as again:  # released: a second holder gets it at once
        assert again is True
