"""A real package index on 127.0.0.1 (pypiserver, from the package index) serving a directory of
distributions: what users' pip sees from the real index, for the tests and the benchmark.

    with local_index(packages_dir, venv_dir) as url:   # url ends in /simple/
        pip install --index-url url mod_wsgi-httpd
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from waiting import wait_until  # noqa: E402

PYPISERVER = "pypiserver==2.4.2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_index(packages: Path, venv: Path, python: str = sys.executable):
    """pypiserver in its own virtualenv `venv` (made if missing), serving `packages`, with no
    fallback to another index: what is not in `packages` is not found."""
    server = venv / "bin" / "pypi-server"
    if not server.exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", PYPISERVER],
                       check=True)
    port = _free_port()
    log = open(venv / f"pypiserver-{port}.log", "w")
    proc = subprocess.Popen([str(server), "run", "-i", "127.0.0.1", "-p", str(port), "--disable-fallback",
                             "-a", ".", "-P", ".", str(packages)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}/simple/"
    try:
        try:
            wait_until(lambda: urllib.request.urlopen(url, timeout=5).read(), "pypiserver", timeout=30,
                       alive=lambda: proc.poll() is None)
        except AssertionError as e:
            log.flush()
            raise RuntimeError(f"{e}:\n{(venv / f'pypiserver-{port}.log').read_text()[-2000:]}") from None
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        log.close()
