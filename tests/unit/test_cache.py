"""The build cache is input, not truth: whose it is, what an entry may hold, damaged entries,
the lock, eviction, and the key."""

import json
import os
import pwd
import stat
from pathlib import Path

import pytest

from build_httpd import cache
from build_httpd.features import Decision
from build_httpd.recipes import all_features, load_recipes
from build_httpd.settings import load_settings

KEY = "a" * 64
RECIPES = load_recipes()
FEATURES = all_features(RECIPES)
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="making a directory owned by another user needs root")


def prefix_tree(base: Path) -> Path:
    """A small stand-in for a finished prefix: files in folders, one executable."""
    p = base / "prefix"
    (p / "bin").mkdir(parents=True)
    (p / "bin" / "httpd").write_bytes(b"\x7fELF not really")
    (p / "bin" / "httpd").chmod(0o755)
    (p / "conf").mkdir()
    (p / "conf" / "httpd.conf").write_text("ServerName localhost\n")
    (p / "conf" / "httpd.conf").chmod(0o644)
    return p


@pytest.fixture
def builds(tmp_path):
    b, s = cache.open_cache(tmp_path / "cache")
    assert b is not None and s is not None
    return b


def stored(builds, tmp_path):
    cache.store(builds, KEY, {"part": "x"}, prefix_tree(tmp_path))
    return builds / KEY


# -- whose is it ---------------------------------------------------------------------------------

def test_directories_are_created_private(tmp_path):
    builds, sources = cache.open_cache(tmp_path / "new" / "cache")
    for d in (tmp_path / "new" / "cache", builds, sources):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o775, 0o777, 0o757])
def test_a_cache_others_can_write_is_bypassed_with_one_line(tmp_path, capsys, mode):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache").chmod(mode)
    assert cache.open_cache(tmp_path / "cache") == (None, None)
    err = capsys.readouterr().err
    assert f"build cache bypassed: {tmp_path / 'cache'} can be written by" in err and f"{mode:04o}" in err
    assert not (tmp_path / "cache" / "builds").exists() or not any((tmp_path / "cache" / "builds").iterdir())


def test_a_group_writable_builds_directory_is_bypassed(tmp_path, capsys):
    builds, _ = cache.open_cache(tmp_path / "cache")
    builds.chmod(0o770)
    assert cache.open_cache(tmp_path / "cache") == (None, None)
    assert f"{builds} can be written by its group" in capsys.readouterr().err


@ROOT_ONLY
def test_a_cache_owned_by_another_user_is_bypassed(tmp_path, capsys):
    (tmp_path / "cache").mkdir(mode=0o700)
    os.chown(tmp_path / "cache", pwd.getpwnam("nobody").pw_uid, -1)
    assert cache.open_cache(tmp_path / "cache") == (None, None)
    assert "belongs to uid" in capsys.readouterr().err


def test_a_symlinked_cache_directory_is_bypassed(tmp_path, capsys):
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "cache").symlink_to(tmp_path / "elsewhere")
    assert cache.open_cache(tmp_path / "cache") == (None, None)
    assert "is a symbolic link" in capsys.readouterr().err


@ROOT_ONLY
def test_an_entry_owned_by_another_user_is_a_miss(builds, tmp_path):
    entry = stored(builds, tmp_path)
    os.chown(entry, pwd.getpwnam("nobody").pw_uid, -1)
    why = cache.fetch(builds, KEY, tmp_path / "out")
    assert why and "belongs to uid" in why and not (tmp_path / "out").exists()


# -- entries --------------------------------------------------------------------------------------

def test_store_then_fetch_gives_the_same_files_and_modes(builds, tmp_path):
    entry = stored(builds, tmp_path)
    manifest = json.loads((entry / cache.MANIFEST).read_text())
    assert manifest["bin/httpd"][1] == 0o755 and manifest["conf"] == ["dir", 0o755]
    assert cache.fetch(builds, KEY, tmp_path / "out") is None
    assert (tmp_path / "out" / "conf" / "httpd.conf").read_text() == "ServerName localhost\n"
    assert stat.S_IMODE((tmp_path / "out" / "bin" / "httpd").stat().st_mode) == 0o755


def test_a_symlinked_directory_in_an_entry_is_never_followed(builds, tmp_path):
    """The trial of the issue: httpd/x -> a secret directory must not land in the wheel."""
    entry = stored(builds, tmp_path)
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "id_rsa").write_text("PRIVATE")
    (entry / "httpd" / "x").symlink_to(secret)
    why = cache.fetch(builds, KEY, tmp_path / "out")
    assert why and "is a symbolic link" in why
    assert not (tmp_path / "out").exists()


def test_a_symlinked_file_in_an_entry_is_a_miss_even_if_the_manifest_lists_it(builds, tmp_path):
    entry = stored(builds, tmp_path)
    target = entry / "httpd" / "conf" / "httpd.conf"
    (tmp_path / "real.conf").write_text(target.read_text())
    target.unlink()
    target.symlink_to(tmp_path / "real.conf")
    assert "is a symbolic link" in cache.fetch(builds, KEY, tmp_path / "out")


def test_store_refuses_a_prefix_holding_a_link(builds, tmp_path, capsys):
    prefix = prefix_tree(tmp_path)
    (prefix / "lib").symlink_to("/etc")
    cache.store(builds, KEY, {}, prefix)
    assert not (builds / KEY).exists()
    assert "could not store" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["content", "mode", "missing file", "extra file", "no httpd", "manifest"])
def test_a_damaged_entry_is_a_miss_and_the_rebuild_replaces_it(builds, tmp_path, damage):
    entry = stored(builds, tmp_path)
    conf = entry / "httpd" / "conf" / "httpd.conf"
    if damage == "content":
        conf.write_text("ServerName evil\n")
    elif damage == "mode":
        conf.chmod(0o4755)
    elif damage == "missing file":
        conf.unlink()
    elif damage == "extra file":
        (entry / "httpd" / "bin" / "backdoor").write_text("x")
    elif damage == "no httpd":
        import shutil
        shutil.rmtree(entry / "httpd")
    else:
        (entry / cache.MANIFEST).write_text("{not json")
    why = cache.fetch(builds, KEY, tmp_path / "out")
    assert why and "damaged" in why, why
    assert not (tmp_path / "out").exists()
    # the rebuilt prefix replaces the damaged entry, and the next fetch is a hit
    cache.store(builds, KEY, {"part": "x"}, prefix_tree(tmp_path / "again"))
    assert cache.fetch(builds, KEY, tmp_path / "out") is None
    assert (tmp_path / "out" / "conf" / "httpd.conf").read_text() == "ServerName localhost\n"
    assert [p.name for p in builds.iterdir() if p.name.startswith(".")] == []


def test_a_missing_entry_is_a_plain_miss(builds, tmp_path):
    assert cache.fetch(builds, KEY, tmp_path / "out") == "not in the cache"


# -- the lock -------------------------------------------------------------------------------------

def test_the_lock_is_taken_released_and_waited_for(builds, monkeypatch, capsys):
    monkeypatch.setattr(cache, "LOCK_TIMEOUT", 1.5)
    with cache.exclusive(builds, KEY) as locked:
        assert locked is True
        lock = builds / f"{KEY}.lock"
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600
        with cache.exclusive(builds, KEY) as second:  # another holder waits, then gives up
            assert second is False
    assert "waiting for it" in capsys.readouterr().err
    with cache.exclusive(builds, KEY) as again:  # released: taken at once
        assert again is True


def test_a_symlinked_lock_file_is_not_followed(builds, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (builds / f"{KEY}.lock").symlink_to(victim)
    with cache.exclusive(builds, KEY) as locked:
        assert locked is False
    assert victim.read_text() == "precious"


# -- eviction -------------------------------------------------------------------------------------

def test_eviction_keeps_the_most_recently_used(builds, tmp_path):
    for n in range(4):
        cache.store(builds, str(n) * 64, {}, prefix_tree(tmp_path / str(n)))
        os.utime(builds / (str(n) * 64), (1000 + n, 1000 + n))
    removed = cache.evict(builds, max_entries=2)
    assert sorted(removed) == ["0" * 64, "1" * 64]
    assert sorted(e[0] for e in cache.entries(builds)) == ["2" * 64, "3" * 64]


def test_eviction_by_size(builds, tmp_path):
    for n in range(3):
        cache.store(builds, str(n) * 64, {}, prefix_tree(tmp_path / str(n)))
        os.utime(builds / (str(n) * 64), (1000 + n, 1000 + n))
    one = cache.entries(builds)[0][2]
    assert cache.evict(builds, max_bytes=one + 1) == ["1" * 64, "0" * 64]


# -- the key --------------------------------------------------------------------------------------

def decisions(fingerprint):
    return {n: Decision(f, "auto", True, "found", fingerprint) for n, f in FEATURES.items()}


def test_the_key_covers_the_headers_of_the_libraries_linked():
    s = load_settings({}, {n: f.modes for n, f in FEATURES.items()}, environ={})
    a, parts = cache.key(RECIPES, s, decisions("openssl-3.0.15"), "cc 12")
    b, _ = cache.key(RECIPES, s, decisions("openssl-3.0.16"), "cc 12")
    assert a != b
    assert cache.key(RECIPES, s, decisions("openssl-3.0.15"), "cc 12")[0] == a
    assert set(parts) >= {"recipes", "patches", "engine", "settings", "features", "compiler", "flags", "platform"}


def test_the_key_covers_a_library_directory_setting(tmp_path):
    modes = {n: f.modes for n, f in FEATURES.items()}
    a, _ = cache.key(RECIPES, load_settings({"ssl-dir": str(tmp_path / "a")}, modes, environ={}), {}, "cc")
    b, _ = cache.key(RECIPES, load_settings({"ssl-dir": str(tmp_path / "b")}, modes, environ={}), {}, "cc")
    assert a != b
