"""The release build on a fresh machine, the way a hosted CI runner is one: `python -m build` and
`uv build` in a fresh Debian root (ci/fresh-root) with empty caches and no pip or uv configuration,
where upstream's hosts are unreachable. Their isolated build environments have no pip: the backend
finds the package index itself, and httpd's tarball comes from a mod_wsgi-httpd sdist there
(ci/frontend-builds)."""

import os
import subprocess
import zipfile

from .conftest import RECIPES, ROOT, VERSION

TIMEOUT = 2400  # seconds: apt-get, one build of httpd from scratch and a cached one, on 2 CPUs


def test_python_m_build_and_uv_build_give_wheels_from_empty_caches(tmp_path, requires_fresh_root):
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(["bash", ROOT / "ci" / "fresh-root", "bookworm", "bash", "ci/frontend-builds"],
                            env=dict(os.environ, FRESH_ROOT_OUT=str(out)), capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    for frontend in ("build", "uv"):
        log = (out / f"{frontend}.log").read_text()
        # the sdist step found the index with no pip to ask (it is the only place with httpd's tarball)
        httpd = RECIPES["httpd"].source.filename
        assert f"{httpd}: verified from a mod_wsgi-httpd sdist on the package index" in log, log[-4000:]
        [wheel] = (out / frontend).glob("*.whl")
        assert wheel.name.startswith(f"mod_wsgi_httpd-{VERSION}-"), wheel.name
        with zipfile.ZipFile(wheel) as z:
            assert "mod_wsgi_packages/httpd/bin/httpd" in z.namelist()
