"""Issue 5 (and 3): hostile or unusual environments end in success or one clear paragraph, before
anything compiles; a failed install leaves nothing behind."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import MOD_WSGI, RECIPES, ROOT, make_venv, open_to_others, run, serve_and_get, shared_dir

FAST = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w"]


def wheel_attempt(tmp_path, *settings, env=None):
    """pip wheel of this checkout that is expected to stop early, with a cache and a temporary
    directory of its own; returns (returncode, output). A failure must leave nothing behind."""
    cache, tmp = tmp_path / "cache", tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    full_env = dict(os.environ, MOD_WSGI_HTTPD_CACHE=str(cache), TMPDIR=str(tmp))
    full_env.update(env or {})
    result = run([*FAST, tmp_path / "wheels", *settings, ROOT], check=False, env=full_env)
    if result.returncode:
        left_nothing_behind(cache, Path(full_env["TMPDIR"]))
    return result.returncode, result.stdout + result.stderr


def left_nothing_behind(cache: Path, tmp: Path):
    """No cache entry (a lock file may stay), no half-written cache file, and of a build directory
    at most its logs."""
    if (cache / "builds").is_dir():
        assert [p.name for p in (cache / "builds").iterdir() if not p.name.endswith(".lock")] == []
    if (cache / "sources").is_dir():
        assert [p.name for p in (cache / "sources").iterdir() if p.name.startswith(".")] == []
    for build_dir in tmp.glob("mod_wsgi-httpd-build-*"):
        assert [p.name for p in build_dir.iterdir()] in ([], ["logs"]), build_dir


def assert_stopped_before_compiling(text):
    assert "configure apr" not in text and "make httpd" not in text, text[-3000:]


def test_no_c_compiler(tmp_path):
    code, text = wheel_attempt(tmp_path, env={"CC": "/nonexistent/cc"})
    assert code != 0
    assert "'/nonexistent/cc' was not found" in text and "set CC" in text and "build-essential" in text
    assert_stopped_before_compiling(text)


def test_no_make(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("cc", "gcc", "patch", "sh", "as", "ld"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    code, text = wheel_attempt(tmp_path, env={"PATH": str(bin_dir)})
    assert code != 0 and "'make' was not found" in text and str(bin_dir) in text
    assert_stopped_before_compiling(text)


def test_no_patchelf_stops_before_compiling(tmp_path):
    """patchelf is needed only at the end (relocation): missing, it is named before minutes of
    compiling are spent."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("cc", "gcc", "make", "patch", "sh", "as", "ld"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    code, text = wheel_attempt(tmp_path, env={"PATH": str(bin_dir)})
    assert code != 0 and "'patchelf' was not found" in text and "relocatable" in text
    assert_stopped_before_compiling(text)


def test_missing_expat_headers(tmp_path):
    (tmp_path / "empty" / "include").mkdir(parents=True)
    # a -dir names where the system's library is: without its headers there, nothing is built in
    code, text = wheel_attempt(tmp_path, "-C", f"expat-dir={tmp_path / 'empty'}")
    assert code != 0
    # ci/test runs on Debian: the package is named in apt's words alone (tests/unit/test_systems.py
    # covers dnf's and apk's)
    for needle in ("expat-dir: expat is wanted from this system", "expat.h", "apt-get install libexpat1-dev",
                   "nothing was compiled"):
        assert needle in text, needle
    assert "expat-devel" not in text
    assert_stopped_before_compiling(text)


def test_a_system_feature_with_its_library_missing_fails_fast(tmp_path):
    (tmp_path / "empty" / "include").mkdir(parents=True)
    code, text = wheel_attempt(tmp_path, "-C", "ssl=system", "-C", f"ssl-dir={tmp_path / 'empty'}")
    assert code != 0 and "OpenSSL is wanted from this system for HTTPS (mod_ssl)" in text and "libssl-dev" in text
    assert_stopped_before_compiling(text)


@pytest.mark.parametrize("setting,names", [
    (["-C", "ssl=maybe"], ["-C ssl", "auto, system, builtin, required, off"]),
    (["-C", "colour=blue"], ["-C colour", "jobs=N"]),
])
def test_bad_settings_through_pip(tmp_path, setting, names):
    code, text = wheel_attempt(tmp_path, *setting)
    assert code != 0 and all(n in text for n in names)


def test_bad_environment_value_through_pip(tmp_path):
    code, text = wheel_attempt(tmp_path, env={"MOD_WSGI_HTTPD_JOBS": "lots"})
    assert code != 0 and "MOD_WSGI_HTTPD_JOBS is 'lots'" in text


def mounted_tmpfs(options):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the decision itself is exercised in the unit tests")
    point = Path(tempfile.mkdtemp(prefix="tmpfs-"))
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)]).returncode:
        point.rmdir()
        pytest.skip("this container may not mount a tmpfs")
    return point


def unmount(point):
    subprocess.run(["umount", str(point)])
    point.rmdir()


@pytest.fixture
def noexec_mount():
    point = mounted_tmpfs("noexec,size=64m")
    yield point
    unmount(point)


@pytest.fixture
def small_disk():
    """A real filesystem too small for a build: 64 MB."""
    point = mounted_tmpfs("size=64m")
    yield point
    unmount(point)


def test_too_little_free_space_stops_before_anything_is_fetched(small_disk, tmp_path):
    code, text = wheel_attempt(tmp_path, "-C", "cache=off", env={"TMPDIR": str(small_disk)})
    assert code != 0 and f"not enough free space to build in {small_disk}" in text, text[-3000:]
    assert "MB free, about 400 MB needed" in text and "TMPDIR" in text
    assert "fetch+verify" not in text
    assert_stopped_before_compiling(text)
    assert list(small_disk.iterdir()) == []


def test_noexec_tmpdir_falls_back_to_the_cache_directory(noexec_mount, tmp_path):
    from build_httpd.build import _work_dir
    old = tempfile.tempdir
    tempfile.tempdir = str(noexec_mount)
    try:
        work = _work_dir(tmp_path / "cache" / "tmp")
    finally:
        tempfile.tempdir = old
    assert work.parent == tmp_path / "cache" / "tmp"
    assert not list(noexec_mount.iterdir())  # the probe directory there was removed


def test_noexec_everywhere_stops_before_starting(noexec_mount, tmp_path):
    code, text = wheel_attempt(tmp_path, "-C", "cache=off",
                               env={"TMPDIR": str(noexec_mount), "MOD_WSGI_HTTPD_CACHE": str(noexec_mount / "c")})
    assert code != 0 and "mounted noexec" in text and "TMPDIR" in text
    assert_stopped_before_compiling(text)


def test_system_apxs_on_path_does_not_win(venv, tmp_path):
    """With Debian's apache2-dev installed (an apxs on PATH), mod_wsgi still builds against ours.
    Built as a wheel, so that the session's virtualenv is not changed."""
    if not shutil.which("apxs"):
        pytest.skip("apache2-dev is not installed (ci/test installs it when run as root)")
    venv.pip("wheel", "--no-deps", "--no-cache-dir", "-w", tmp_path, MOD_WSGI)
    (built,) = tmp_path.glob("mod_wsgi-*.whl")
    with zipfile.ZipFile(built) as z:
        (config,) = [n for n in z.namelist() if n.endswith("apxs_config.py")]
        text = z.read(config).decode()
    # mod_wsgi's setup.py writes this when it compiled against mod_wsgi_packages.httpd, and the
    # directories its apxs answered (ours, not /usr/sbin) for the other case
    assert "WITH_HTTPD_PACKAGE = True" in text, text[:2000]
    assert f"BINDIR = '{venv.prefix() / 'bin'}'" in text and "/usr/sbin" not in text, text[:2000]


def test_an_unprivileged_user_installs_and_serves(wheel):
    if os.geteuid() != 0:
        pytest.skip("already unprivileged: every other test is this test")
    base = shared_dir("mod_wsgi-httpd-test-user-")
    home = base / "home"
    home.mkdir()
    shutil.copy(wheel, base / wheel.name)
    app = base / "hello.wsgi"
    app.write_text("def application(e, sr):\n    sr('200 OK', [('Content-Type', 'text/plain')])\n"
                   "    return [b'as nobody']\n")
    shutil.chown(home, "nobody")
    os.chmod(base, 0o777)
    open_to_others(Path(os.path.realpath(sys.executable)))
    env = {"HOME": str(home), "PATH": os.environ["PATH"], "PIP_NO_CACHE_DIR": "1"}
    env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_")})

    def as_nobody(*argv, **kw):
        return run(["runuser", "-u", "nobody", "--", *argv], env=env, **kw)

    try:
        # the pip this Python's venv brings, as it is: an unprivileged user's first try
        as_nobody(sys.executable, "-m", "venv", base / "venv")
        as_nobody(base / "venv" / "bin" / "pip", "install", "-q", base / wheel.name)
        as_nobody(base / "venv" / "bin" / "pip", "install", "-q", MOD_WSGI)
        express = ["runuser", "-u", "nobody", "--", base / "venv" / "bin" / "mod_wsgi-express"]
        assert serve_and_get(express, app, base, env=env, as_root_user=False).text == "as nobody"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_three_concurrent_installs_share_the_caches_and_ssl_off_means_off(shared_tmp):
    """Three `pip install . -C ssl=off` at once into three virtualenvs, one source cache, one build
    cache: one builds, the others wait for it and reuse it; the caches are intact afterwards."""
    cache = shared_tmp / "cache"
    venvs = [make_venv(shared_tmp / f"venv{i}", pip="upgrade") for i in range(3)]
    env = dict(os.environ, MOD_WSGI_HTTPD_CACHE=str(cache))

    def install(v):
        return run([v.python, "-m", "pip", "install", "-v", "-C", "ssl=off", ROOT], env=env, check=False)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(install, venvs))
    for r in results:
        assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    logs = [r.stdout + r.stderr for r in results]
    assert sum("build cache miss" in log for log in logs) == 1, "exactly one install builds"
    assert sum("build cache hit" in log for log in logs) == 2
    entries = [p for p in (cache / "builds").iterdir() if p.is_dir()]
    assert len(entries) == 1 and not any(p.name.startswith(".") for p in entries)
    assert sorted(p.name for p in (cache / "sources").iterdir()) == sorted(r.source.filename for r in RECIPES.values())
    from build_httpd.cache import manifest_of
    assert json.loads((entries[0] / "manifest.json").read_text()) == manifest_of(entries[0] / "httpd")
    assert {oct(d.stat().st_mode)[-3:] for d in (cache, cache / "builds", cache / "sources", entries[0])} == {"700"}
    # -C ssl=off really leaves mod_ssl out, and info says so
    for v in venvs:
        assert not (v.prefix() / "modules" / "mod_ssl.so").exists()
        info = json.loads(run([v.bin / "mod_wsgi-httpd", "info", "--json"]).stdout)
        assert info["features"]["ssl"]["built"] is False and "ssl=off" in info["features"]["ssl"]["reason"]
        assert "ssl" not in info["modules"] and "http2" in info["modules"]


def test_a_virtualenv_path_with_spaces_holds_a_working_httpd(wheel, shared_tmp):
    """Our part works in a path with spaces: httpd, apxs, apachectl and the *-config scripts. mod_wsgi
    itself does not (its setup.py splits apxs answers on white space, and its generated apachectl
    leaves the httpd path unquoted), nor does pip's "#!" line for scripts: docs/reliability.md."""
    target = make_venv(shared_tmp / "with spaces" / "venv", pip="upgrade")
    target.pip("install", "-q", wheel)
    prefix = target.prefix()
    assert " " in str(prefix)
    assert "Server MPM:     event" in run([prefix / "bin" / "httpd", "-V"]).stdout
    assert run([prefix / "bin" / "apachectl", "configtest"]).returncode == 0
    assert run([prefix / "bin" / "apxs", "-q", "LIBEXECDIR"]).stdout.strip() == f"{prefix}/modules"
    assert run([prefix / "bin" / "apr-1-config", "--bindir"]).stdout.strip() == f"{prefix}/bin"
    # pip writes the script's "#!" line with the space in it, which the kernel cannot follow;
    # through the interpreter it answers
    apxs = run([target.python, target.bin / "mod_wsgi-apxs", "-q", "INCLUDEDIR"])
    assert apxs.stdout.strip() == f"{prefix}/include"
