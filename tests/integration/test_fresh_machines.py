"""README command 1 on fresh machines: a minimal Debian root (ci/fresh-root) with nothing but what
`debootstrap --variant=minbase` gives, its own python3 and pip, and the system trust store. The
command installs what it needs and serves hello-world; this test fetches the page from outside.

Which suites: FRESH_ROOT_SUITES (default "bookworm", Debian 12; "bullseye bookworm trixie" for
Debian 11, 12 and 13). ci/fresh-root archives the committed HEAD: uncommitted changes are not in it.
"""

import os
import shutil
import signal
import subprocess
import time

import pytest
import requests

from .conftest import ROOT, free_port

SUITES = os.environ.get("FRESH_ROOT_SUITES", "bookworm").split()
SERVE_TIMEOUT = 1500  # seconds: apt-get, a build of httpd from scratch, mod_wsgi, on 2 CPUs


def fresh_root_available():
    if os.geteuid() != 0:
        return "ci/fresh-root needs root (debootstrap, chroot, namespaces)"
    if not (ROOT / ".git").exists() or not shutil.which("git"):
        return "ci/fresh-root copies a `git archive` of HEAD: this is not a git checkout"
    if not shutil.which("unshare"):
        return "ci/fresh-root needs unshare (util-linux)"
    return None


@pytest.mark.parametrize("suite", SUITES)
def test_readme_command_1_serves_hello_world_on_a_fresh_debian(suite, tmp_path):
    why = fresh_root_available()
    if why:
        pytest.skip(why)
    port = free_port()
    log = tmp_path / "serve-hello.log"
    env = dict(os.environ, FRESH_ROOT_ENV=f"PORT={port}")
    with open(log, "w") as out:
        proc = subprocess.Popen(["bash", ROOT / "ci" / "fresh-root", suite, "bash", "ci/serve-hello"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"serve-hello in {suite} ended ({proc.returncode}) without serving:\n"
                            f"{log.read_text()[-6000:]}")
            try:
                response = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, f"nothing served in {SERVE_TIMEOUT} s:\n{log.read_text()[-6000:]}"
                time.sleep(2)
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
