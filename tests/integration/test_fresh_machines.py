"""README command 1 on fresh machines: a minimal Debian root (ci/fresh-root) with nothing but what
`debootstrap --variant=minbase` gives, its own python3 and pip, and the system trust store. The
command installs what it needs and serves hello-world; this test fetches the page from outside.

Which suites: FRESH_ROOT_SUITES (default "bookworm", Debian 12; "bullseye bookworm trixie" for
Debian 11, 12 and 13). FRESH_ROOT_ARCH=arm64: the roots are arm64 and run under qemu-user (the
sdist route on arm64: everything compiles emulated, many times slower). ci/fresh-root archives the
committed HEAD: uncommitted changes are not in it.
"""

import os
import signal
import subprocess

import pytest
import requests

from .conftest import ROOT, free_port, wait_until

SUITES = os.environ.get("FRESH_ROOT_SUITES", "bookworm").split()
# seconds: apt-get, a build of httpd from scratch, mod_wsgi, on 2 CPUs (emulated: far longer)
SERVE_TIMEOUT = 5400 if os.environ.get("FRESH_ROOT_ARCH") else 1500


@pytest.mark.parametrize("suite", SUITES)
def test_readme_command_1_serves_hello_world_on_a_fresh_debian(suite, tmp_path, requires_fresh_root):
    port = free_port()
    log = tmp_path / "serve-hello.log"
    env = dict(os.environ, FRESH_ROOT_ENV=f"PORT={port}")
    with open(log, "w") as out:
        proc = subprocess.Popen(["bash", ROOT / "ci" / "fresh-root", suite, "bash", "ci/serve-hello"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        try:
            response = wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=5),
                                  f"serve-hello in {suite}", SERVE_TIMEOUT, interval=2, alive=lambda: proc.poll() is None)
        except AssertionError as e:
            pytest.fail(f"{e}:\n{log.read_text()[-6000:]}")
        assert response.status_code == 200 and response.text == "Hello from mod_wsgi-httpd\n"  # examples/hello.wsgi
        text = log.read_text()
        installed = text.split("installing Debian packages:")[1].splitlines()[0].split()
        assert {"python3-venv", "python3-dev", "build-essential", "libssl-dev"} <= set(installed)
        assert "apache2-dev" not in installed  # only the tests need a system apxs
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
