"""examples/docker/Dockerfile, built for real (podman, chroot isolation) twice: the same image ID
both times, and a test stage FROM it serves a page and stops on the image's STOPSIGNAL, with no
compiler in the image. All of it is ci/docker-image-test; this runs it and reads what it printed."""

import os
import re
import shutil
import subprocess

import pytest

from .conftest import ROOT


def test_the_example_image_is_reproducible_serves_and_has_no_compiler(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("podman builds with chroot isolation need root here")
    if not (ROOT / ".git").exists() or not shutil.which("git"):
        pytest.skip("the base image comes from ci/fresh-root, which needs a git checkout")
    result = subprocess.run(["bash", ROOT / "ci" / "docker-image-test"], capture_output=True, text=True,
                            env=dict(os.environ, TMPDIR=str(tmp_path)), timeout=3000)
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-6000:]
    ids = re.findall(r"^image [ab]: ([0-9a-f]{64})$", result.stdout, re.M)
    assert len(ids) == 2 and ids[0] == ids[1], result.stdout
    assert "served: b'Hello from mod_wsgi-httpd\\n'" in text and "stopped gracefully on SIGWINCH" in text
    size = int(re.search(r"^size: +(\d+) bytes", result.stdout, re.M).group(1))
    assert size < 400_000_000, f"the image grew to {size} bytes"
