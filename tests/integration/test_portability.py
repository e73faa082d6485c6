"""Issue 6: one wheel for every Python 3; wheels built here install and serve elsewhere."""

import glob
import os
import re
import shutil
import subprocess

import pytest

from .conftest import HELLO, LOADED, MACHINE, MOD_WSGI, make_venv, run, serve_and_get, shared_dir


def pythons():
    """Every CPython 3.9+ this machine has, by real path: the system's python3 and python3.N (the
    Pythons users have), and a pyenv's versions where there is one (this development machine)."""
    candidates = [os.path.join(d, name) for d in ("/usr/bin", "/usr/local/bin")
                  for name in ["python3"] + [f"python3.{n}" for n in range(9, 15)]]
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(os.path.join(pyenv, "versions", "3.*", "bin", "python3")))
    found = {}
    for exe in candidates:
        real = os.path.realpath(exe)
        if real in found or not os.access(real, os.X_OK):
            continue
        out = subprocess.run([real, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True)
        version = out.stdout.strip()
        if out.returncode == 0 and (3, 9) <= tuple(int(p) for p in version.split(".")[:2]):
            found[real] = version
    return found


PYTHONS = pythons()


@pytest.mark.parametrize("exe", sorted(PYTHONS) or [None], ids=lambda e: f"{PYTHONS[e]}-{e}" if e else "none")
def test_one_wheel_serves_every_python(exe, wheel):
    """Each Python found, with the pip its venv brings upgraded (as ci/serve-hello does)."""
    if exe is None:
        pytest.fail("no CPython 3.9 or newer was found on this machine")
    version = PYTHONS[exe]
    base = shared_dir(f"mod_wsgi-httpd-test-py{version}-")
    try:
        env = make_venv(base / "venv", exe, pip="upgrade")
        env.pip("install", "-q", wheel)
        # mod_wsgi 6 needs Python 3.10+; on 3.9 the newest mod_wsgi that supports it (5.0.x)
        env.pip("install", "-q", "--no-cache-dir", MOD_WSGI if not version.startswith("3.9.") else "mod_wsgi")
        app = base / "hello.wsgi"
        app.write_text(HELLO)
        assert serve_and_get(env.bin / "mod_wsgi-express", app, base).text == "Hello from mod_wsgi-httpd"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_the_pip_a_python_brings_builds_with_config_settings(session_cache, wheel, shared_tmp):
    """The pip of a fresh venv, deliberately not upgraded (Debian 12: 23.0.1, which knows
    --config-settings but not -C): this checkout installs with --config-settings (from the
    session's build cache), then mod_wsgi."""
    from .conftest import FEATURES, ROOT
    target = make_venv(shared_tmp / "old-pip", pip="as-is")
    long_form = [("--config-settings" if a == "-C" else a) for a in FEATURES]
    installed = target.pip("install", "-v", *long_form, ROOT, env=dict(os.environ, MOD_WSGI_HTTPD_CACHE=str(session_cache)))
    assert "build cache hit" in installed.stdout + installed.stderr
    target.pip("install", "-q", "--no-cache-dir", MOD_WSGI)
    app = shared_tmp / "old-pip.wsgi"
    app.write_text(HELLO)
    assert serve_and_get(target.bin / "mod_wsgi-express", app, shared_tmp).text == "Hello from mod_wsgi-httpd"


def test_wheels_install_and_serve_where_no_compiler_is(venv, wheel):
    """A mod_wsgi wheel built against ours here, installed with ours into a virtualenv elsewhere,
    with no C compiler reachable and no index: it serves."""
    base = shared_dir("mod_wsgi-httpd-test-nocc-")
    try:
        wheels = base / "wheels"
        venv.pip("wheel", "--no-deps", "--no-cache-dir", "-w", wheels, MOD_WSGI)
        shutil.copy(wheel, wheels)
        target = make_venv(base / "elsewhere" / "venv", pip="as-is")  # no index to upgrade from
        tools = base / "tools"  # a PATH with a shell and nothing that compiles
        tools.mkdir()
        for tool in ("bash", "sh", "env"):
            (tools / tool).symlink_to(shutil.which(tool))
        env = {"PATH": f"{target.bin}:{tools}", "CC": "/nonexistent/cc", "HOME": str(base)}
        assert shutil.which("cc", path=env["PATH"]) is None and shutil.which("gcc", path=env["PATH"]) is None
        run([target.python, "-m", "pip", "install", "--no-index", "--find-links", wheels, "mod_wsgi-httpd",
             "mod_wsgi"], env=env)
        app = base / "hello.wsgi"
        app.write_text(HELLO)
        assert serve_and_get(target.bin / "mod_wsgi-express", app, base, env=env).text == "Hello from mod_wsgi-httpd"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_the_sdist_carries_verified_sources_and_they_are_verified_again(tmp_path):
    import hashlib
    import subprocess
    import sys
    import tarfile

    from build_httpd.recipes import load_recipes
    from .conftest import ROOT

    from build_httpd.build import HAS_TAR_FILTERS, safe_members
    from .conftest import VERSION

    run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", tmp_path, ROOT])
    (sdist,) = tmp_path.glob(f"mod_wsgi_httpd-{VERSION}.tar.gz")
    with tarfile.open(sdist) as tar:  # the engine's own checks, on every Python
        tar.extractall(tmp_path, members=safe_members(tar, sdist), **({"filter": "data"} if HAS_TAR_FILTERS else {}))
    tree = tmp_path / f"mod_wsgi_httpd-{VERSION}"
    for recipe in load_recipes().values():
        carried = tree / "upstream" / recipe.source.filename
        assert hashlib.sha256(carried.read_bytes()).hexdigest() == recipe.source.sha256
    for needed in ("recipes/httpd.toml", "patches/httpd-server-root-from-executable.patch", "build_httpd/build.py",
                   "scripts/mod_wsgi-apxs", "setup.py", "pyproject.toml", "LICENSE"):
        assert (tree / needed).is_file(), needed
    assert not (ROOT / "upstream").exists()  # build_sdist cleaned up after itself
    # a tampered tarball inside the sdist is caught before anything compiles
    apr = tree / "upstream" / load_recipes()["apr"].source.filename
    data = bytearray(apr.read_bytes())
    data[1000] ^= 0xFF
    apr.write_bytes(bytes(data))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                             str(tmp_path / "w"), "-C", "cache=off", str(tree)], capture_output=True, text=True)
    text = result.stdout + result.stderr
    assert result.returncode != 0 and f"{apr.name} from this sdist" in text and "sha256" in text
    assert "configure apr" not in text


def test_uv_installs_this_then_mod_wsgi_in_an_activated_virtualenv(session_cache, wheel, shared_tmp):
    """`uv pip install .` then `uv pip install mod_wsgi`, with the virtualenv activated (VIRTUAL_ENV
    and PATH, as `activate` sets them). The build reuses this session's build cache."""
    import sys
    from .conftest import FEATURES, HELLO, ROOT, Venv
    uv = shutil.which("uv", path=os.path.dirname(sys.executable)) or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed (ci/requirements-test.txt installs it)")
    target = shared_tmp / "uv-venv"
    run([uv, "venv", "--python", sys.executable, target])
    # UV_NATIVE_TLS: uv trusts its own roots unless told to use the system's, as a user behind an
    # organisation's CA does (pip and our build use the system's by themselves)
    env = dict(os.environ, VIRTUAL_ENV=str(target), PATH=f"{target / 'bin'}:{os.environ['PATH']}",
               MOD_WSGI_HTTPD_CACHE=str(session_cache), UV_NO_CACHE="1", UV_NATIVE_TLS="1")
    installed = run([uv, "pip", "install", "-v", *FEATURES, ROOT], env=env)
    assert "build cache hit" in installed.stdout + installed.stderr
    run([uv, "pip", "install", MOD_WSGI], env=env)
    v = Venv(target)
    out = run([v.python, "-c", "from mod_wsgi.express import apxs_config as c; print(c.HTTPD)"]).stdout.strip()
    assert out == str(v.prefix() / "bin" / "httpd")
    app = shared_tmp / "uv.wsgi"
    app.write_text(HELLO)
    assert serve_and_get(target / "bin" / "mod_wsgi-express", app, shared_tmp).text == "Hello from mod_wsgi-httpd"


def test_two_builds_in_different_places_give_byte_identical_wheels(wheel, tmp_path):
    """The session's wheel against a second build, from a copy of the checkout at another path,
    at another time, without the build cache. If a byte differs, the test names the file."""
    import hashlib
    import sys
    import zipfile
    from .conftest import FEATURES, ROOT

    copy = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv*", "build", "*.egg-info",
                                                              "__pycache__", "upstream"))
    out = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", out, *FEATURES, "-C", "cache=off", copy])
    (second,) = out.glob("*.whl")
    assert second.name == wheel.name
    if hashlib.sha256(second.read_bytes()).hexdigest() == hashlib.sha256(wheel.read_bytes()).hexdigest():
        return
    with zipfile.ZipFile(wheel) as a, zipfile.ZipFile(second) as b:
        names_a, names_b = a.namelist(), b.namelist()
        assert names_a == names_b, "the wheels list different files, or in another order"
        differing = [n for n in names_a if a.read(n) != b.read(n)]
        meta = [n for n in names_a if (a.getinfo(n).date_time, a.getinfo(n).external_attr) !=
                (b.getinfo(n).date_time, b.getinfo(n).external_attr)]
    pytest.fail(f"not reproducible: content differs in {differing[:20]}; timestamps or modes in {meta[:20]}")


def test_auditwheel_tags_the_wheel_manylinux_without_grafting_system_libraries(wheel, tmp_path):
    import sys
    import zipfile
    from .conftest import ROOT
    run([sys.executable, ROOT / "ci" / "portable_wheel.py", "--repair", wheel, tmp_path / "out"])
    (repaired,) = (tmp_path / "out").glob("*.whl")
    assert re.search(rf"-py3-none-manylinux_2_\d+_{MACHINE}", repaired.name), repaired.name
    with zipfile.ZipFile(repaired) as z:
        names = z.namelist()
    assert not [n for n in names if ".libs/" in n or "libssl" in n], "nothing may be grafted"
    target = make_venv(tmp_path / "venv", pip="as-is")  # installing a local wheel: any pip does
    target.pip("install", "-q", repaired)
    out = run([target.prefix() / "bin" / "httpd", "-V"]).stdout
    assert LOADED in out
    runpath = run(["readelf", "-d", target.prefix() / "bin" / "httpd"]).stdout
    assert "$ORIGIN/../lib" in runpath
