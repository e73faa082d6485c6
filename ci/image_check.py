"""Runs inside the example image, as its user (ci/docker-image-test copies it there beside
ci/waiting.py): no compiler is in the image; the server starts, serves, and stops on the image's
STOPSIGNAL (SIGWINCH: graceful)."""

import getpass
import glob
import shutil
import signal
import subprocess
import sys
import urllib.request

from waiting import wait_until


def main() -> None:
    compilers = [t for t in ("cc", "gcc", "c++", "g++", "make") if shutil.which(t)] + glob.glob("/usr/bin/*gcc*")
    if compilers:
        sys.exit(f"a compiler tool is in the image: {compilers}")
    if getpass.getuser() != "app":
        sys.exit(f"the image runs as {getpass.getuser()}, not as its user app")
    server = subprocess.Popen(["/venv/bin/mod_wsgi-express", "start-server", "/app/app.wsgi", "--port", "8000",
                               "--log-to-terminal", "--server-root", "/tmp/mod_wsgi-express", "--shutdown-timeout", "5"])
    body = wait_until(lambda: urllib.request.urlopen("http://127.0.0.1:8000/", timeout=5).read(),
                      "the server on port 8000", timeout=60, interval=0.5, alive=lambda: server.poll() is None)
    print("served:", body, flush=True)
    if body != b"Hello from mod_wsgi-httpd\n":
        sys.exit(f"unexpected answer: {body!r}")
    server.send_signal(signal.SIGWINCH)
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        sys.exit("SIGWINCH did not stop the server in 20 s")
    print("stopped gracefully on SIGWINCH", flush=True)


if __name__ == "__main__":
    main()
