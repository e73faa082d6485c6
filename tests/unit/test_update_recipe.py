"""ci/update_recipe.py: a version bump is one reviewed command."""

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile

from pathlib import Path

from build_httpd.recipes import RECIPES_DIR, load_recipes

ROOT = Path(__file__).resolve().parents[2]


def update_with(tmp_path, filename, top):
    """ci/update_recipe.py on a copy of the recipes, given one small tarball named `filename`."""
    recipes = tmp_path / "recipes"
    shutil.copytree(RECIPES_DIR, recipes)
    tarball = tmp_path / "new" / filename
    tarball.parent.mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"{top}/README")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    tarball.write_bytes(buffer.getvalue())
    result = subprocess.run([sys.executable, str(ROOT / "ci" / "update_recipe.py"), "--recipes", str(recipes),
                             str(tarball.parent)], capture_output=True, text=True)
    return recipes, tarball, result


def test_writes_version_size_and_sha256_and_shows_the_diff(tmp_path):
    recipes, tarball, result = update_with(tmp_path, "apr-1.7.7.tar.gz", "apr-1.7.7")
    assert result.returncode == 0, result.stderr
    apr = load_recipes(recipes)["apr"]
    assert apr.version == "1.7.7" and apr.source.filename == "apr-1.7.7.tar.gz"
    assert apr.source.size == tarball.stat().st_size
    assert apr.source.sha256 == hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert all("1.7.7" in url for url in apr.source.urls)
    assert "+version = \"1.7.7\"" in result.stdout and "-version = \"1.7.6\"" in result.stdout
    assert load_recipes(recipes)["httpd"].version == "2.4.69"  # the others are untouched


def test_a_debian_orig_tarball_updates_the_recipe_that_names_its_source_package(tmp_path):
    recipes, tarball, result = update_with(tmp_path, "openssl_3.5.8.orig.tar.gz", "openssl-3.5.8")
    assert result.returncode == 0, result.stderr
    openssl = load_recipes(recipes, profile="portable")["openssl"]
    assert openssl.version == "3.5.8" and openssl.source.filename == "openssl-3.5.8.tar.gz"
    assert openssl.source.sha256 == hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert all("3.5.8" in url for url in openssl.source.urls)
    assert "check `origin`" in result.stderr and "debian_revision" in result.stderr


def test_any_archive_kind_a_recipe_uses_and_only_the_lines_that_change(tmp_path):
    """OpenLDAP releases .tgz, libxml2 .tar.xz: both are matched; the recipe is edited as TOML, so
    its comments, quoting and layout stay as written (only the source's own lines change)."""
    recipes, tarball, result = update_with(tmp_path, "openldap-2.6.15.tgz", "openldap-2.6.15")
    assert result.returncode == 0, result.stderr
    openldap = load_recipes(recipes, profile="portable")["openldap"]
    assert openldap.version == "2.6.15" and openldap.source.filename == "openldap-2.6.15.tgz"
    assert openldap.source.sha256 == hashlib.sha256(tarball.read_bytes()).hexdigest()
    removed = [line for line in result.stdout.splitlines() if line.startswith("-") and not line.startswith("---")]
    assert removed and all(line.split("=")[0].strip("- ") in {"version", "filename", "size", "sha256"}
                           or "2.6.14" in line for line in removed), removed
    assert "pattern = 'openldap-(2\\.6\\.\\d+)\\.tgz'" in (recipes / "openldap.toml").read_text()
    _, _, xz = update_with(tmp_path / "xz", "libxml2-2.15.5.tar.xz", "libxml2-2.15.5")
    assert xz.returncode == 0 and "libxml2.toml: 2.15.4 -> 2.15.5" in xz.stdout, xz.stderr
