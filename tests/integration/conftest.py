"""Integration tier: build the real httpd once per session (pip wheel . from verified tarballs),
install it into a fresh virtualenv with the real mod_wsgi from the package index, start real
servers on 127.0.0.1."""

import json
import os
import platform
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "ci")]
from build_httpd.recipes import load_recipes, package_version  # noqa: E402
from waiting import wait_until  # noqa: E402

RECIPES = load_recipes()
VERSION = package_version(RECIPES)  # this package's version, e.g. 2.4.69.2
V = {name: r.version for name, r in RECIPES.items()}  # component versions, from the recipes
# what `httpd -V` says it loaded
LOADED = f"Server loaded:  APR {V['apr']}, APR-UTIL {V['apr-util']}, PCRE {V['pcre2']}"
MACHINE = platform.machine()
MOD_WSGI = os.environ.get("MOD_WSGI_VERSION_SPEC", "mod_wsgi==6.1.1")
FEATURES = ["-C", "ssl=system", "-C", "http2=system", "-C", "deflate=system", "-C", "brotli=system",
            "-C", "lua=system", "-C", "proxy-html=system", "-C", "md=system", "-C", "ldap=system",
            "-C", "session-crypto=system", "-C", "expat=system"]



def run(argv, **kwargs):
    kwargs.setdefault("check", True)
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    try:
        return subprocess.run([str(a) for a in argv], **kwargs)
    except subprocess.CalledProcessError as e:
        raise AssertionError(f"{e.cmd} failed ({e.returncode}):\n{e.stdout}\n{e.stderr}") from None


def open_to_others(path: Path):
    """As root, mod_wsgi-express's workers run as nobody, who must reach the Python installation and
    the test's files: give every directory on the way the search (x) bit. Test setup, not product."""
    if os.geteuid() != 0:
        return
    path = Path(path).resolve()
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & 0o001:
            os.chmod(directory, mode | 0o001)


def shared_dir(prefix):
    d = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(d, 0o755)
    open_to_others(d)
    return d


_PORTS_HANDED_OUT = set()


def fresh_root_unavailable():
    """Why ci/fresh-root cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "ci/fresh-root needs root (debootstrap, chroot, namespaces)"
    if not (ROOT / ".git").exists() or not shutil.which("git"):
        return "ci/fresh-root copies a `git archive` of HEAD: this is not a git checkout"
    if not shutil.which("unshare"):
        return "ci/fresh-root needs unshare (util-linux)"
    return None


@pytest.fixture
def requires_fresh_root():
    """For a test that runs ci/fresh-root: skipped, saying why, where it cannot run."""
    why = fresh_root_unavailable()
    if why:
        pytest.skip(why)


def free_port():
    """A port nobody listens on, and one this session has not handed out already (two calls in a
    row may otherwise get the same port back from the kernel)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _PORTS_HANDED_OUT:
            _PORTS_HANDED_OUT.add(port)
            return port


def wait_for(url, proc=None, timeout=60, **kwargs):
    try:
        return wait_until(lambda: requests.get(url, timeout=5, **kwargs), url, timeout,
                          alive=None if proc is None else lambda: proc.poll() is None)
    except AssertionError as e:
        output = proc.stdout.read() if proc is not None and proc.poll() is not None and proc.stdout else ""
        raise AssertionError(f"{e}\n{output}") from None


def assert_sbom_names_every_linked_library(prefix: Path):
    """Every library an installed binary needs (each NEEDED entry of each ELF file) is a component
    of the package's SBOM, by its SONAME: the package's own, a system library, the C library."""
    sbom = json.loads((prefix / "sbom.cdx.json").read_text())
    named = {p["value"] for c in sbom["components"] for p in c.get("properties", [])
             if p["name"] == "mod_wsgi-httpd:soname"}
    needed = set()
    for path in prefix.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.open("rb").read(4) == b"\x7fELF":
            needed.update(re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", run(["readelf", "-d", path]).stdout))
    # what auditwheel grafted into a wheel is named after its file, with a hash: libcrypt-cef2a912.so.1.1.0
    # for libcrypt.so.1
    needed = {re.sub(r"-[0-9a-f]{8}(\.so\.\d+)[\d.]*$", r"\1", n) for n in needed}
    assert "libc.so.6" in needed or any(n.startswith("libc.musl") for n in needed), needed
    assert needed <= named, sorted(needed - named)
    return sbom


@pytest.fixture(scope="session")
def session_cache():
    """A cache of this session's own, empty at the start: the first build is a real build from
    sources fetched and verified afresh; later builds of the same key in the session reuse it."""
    d = Path(tempfile.mkdtemp(prefix="mod_wsgi-httpd-test-cache-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def wheel(session_cache):
    """The wheel of this checkout, built for real, every feature with the system's library."""
    out = Path(tempfile.mkdtemp(prefix="mod_wsgi-httpd-test-wheel-"))
    result = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", out, *FEATURES, ROOT],
                 check=False, env=dict(os.environ, MOD_WSGI_HTTPD_CACHE=str(session_cache)))
    (out / "build.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, f"pip wheel failed:\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}"
    assert "build cache miss" in result.stdout + result.stderr
    wheels = list(out.glob("mod_wsgi_httpd-*.whl"))
    assert len(wheels) == 1, wheels
    yield wheels[0]
    shutil.rmtree(out, ignore_errors=True)


class Venv:
    def __init__(self, path: Path):
        self.path = path
        self.bin = path / "bin"
        self.python = self.bin / "python"

    def pip(self, *args, **kwargs):
        return run([self.python, "-m", "pip", "--disable-pip-version-check", *args], **kwargs)

    def site_packages(self):
        return Path(run([self.python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())

    def prefix(self):
        return self.site_packages() / "mod_wsgi_packages" / "httpd"


PIP_POLICIES = ("upgrade", "as-is")


def make_venv(path: Path, python=sys.executable, *, pip: str) -> Venv:
    """A virtualenv of `python`. Every caller says what it does with pip: "upgrade" (what
    ci/serve-hello and the README do) or "as-is" (the pip that this Python's venv brings, which on
    Debian 12 is 23.0.1: tested on purpose)."""
    assert pip in PIP_POLICIES, pip
    run([python, "-m", "venv", path])
    open_to_others(path)
    open_to_others(Path(os.path.realpath(python)))
    env = Venv(path)
    if pip == "upgrade":
        # as ci/system-packages.sh's make_venv: on Pythons before 3.10, pip from the index would
        # trust its own bundle instead of the system's (truststore needs 3.10)
        if run([env.python, "-c", "import sys; print(sys.version_info < (3, 10))"]).stdout.strip() == "True":
            bundle = run([env.python, ROOT / "ci" / "system-ca-bundle.py"]).stdout.strip()
            if bundle:
                (path / "pip.conf").write_text(f"[global]\ncert = {bundle}\n")
        env.pip("install", "-q", "--upgrade", "pip")
    return env


# What the applications of the express tests need; installed once, so that no test changes the
# session's virtualenv (and no test depends on another having run first).
APP_PACKAGES = ["PasteDeploy", "django"]


@pytest.fixture(scope="session")
def venv(wheel):
    """A fresh virtualenv with our wheel and the real mod_wsgi, built with default isolation.
    Shared by the session: tests only read it."""
    base = shared_dir("mod_wsgi-httpd-test-venv-")
    env = make_venv(base / "venv", pip="upgrade")
    env.pip("install", wheel)
    # default build isolation, no flags, pip called by path (the virtualenv is not activated)
    result = env.pip("install", "--no-cache-dir", MOD_WSGI, check=False)
    assert result.returncode == 0, f"pip install {MOD_WSGI} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    env.pip("install", "-q", *APP_PACKAGES)
    yield env
    shutil.rmtree(base, ignore_errors=True)


def worker_identity():
    """--user/--group for mod_wsgi-express when running as root."""
    if os.geteuid() != 0:
        return []
    import grp
    user = pwd.getpwnam("nobody")
    return ["--user", user.pw_name, "--group", grp.getgrgid(user.pw_gid).gr_name]


class Express:
    """One mod_wsgi-express server on a free port, stopped at the end of the test."""

    def __init__(self, venv, tmp, *args, env=None, cwd=None):
        self.port = free_port()
        self.server_root = tmp / f"server-root-{self.port}"
        self.argv = [venv.bin / "mod_wsgi-express", "start-server", *args, "--host", "127.0.0.1",
                     "--port", str(self.port), "--server-root", self.server_root, *worker_identity()]
        self.env = dict(os.environ, **(env or {}))
        self.env.pop("LD_LIBRARY_PATH", None)
        self.cwd = cwd
        self.proc = None
        self.log = tmp / f"express-{self.port}.log"

    def __enter__(self):
        self.logf = open(self.log, "w+")
        self.proc = subprocess.Popen([str(a) for a in self.argv], stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=self.env, cwd=self.cwd, start_new_session=True)
        return self

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def output(self):
        self.logf.flush()
        return self.log.read_text()

    def get(self, path="/", timeout=60, **kwargs):
        try:
            return wait_until(lambda: requests.get(self.url(path), timeout=10, **kwargs),
                              f"mod_wsgi-express on port {self.port}", timeout, alive=lambda: self.proc.poll() is None)
        except AssertionError as e:
            raise AssertionError(f"{e}:\n{self.output()}") from None

    def __exit__(self, *exc):
        import signal
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.logf.close()


def serve_and_get(express, app, base, env=None, as_root_user=True, path="/"):
    """Run `express start-server app` on a free port (express may be a command prefix, such as
    runuser ... mod_wsgi-express), GET one page, stop it; returns the response."""
    import signal
    port = free_port()
    prefix = express if isinstance(express, list) else [express]
    argv = [*prefix, "start-server", app, "--host", "127.0.0.1", "--port", port, "--server-root",
            base / f"sr-{port}", *(worker_identity() if as_root_user else [])]
    proc = subprocess.Popen([str(a) for a in argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        return wait_for(f"http://127.0.0.1:{port}{path}", proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


@pytest.fixture
def shared_tmp():
    d = shared_dir("mod_wsgi-httpd-test-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


HELLO = '''\
def application(environ, start_response):
    body = b"Hello from mod_wsgi-httpd"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


@pytest.fixture
def hello(shared_tmp):
    path = shared_tmp / "hello.wsgi"
    path.write_text(HELLO)
    return path
