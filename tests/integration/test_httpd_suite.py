"""httpd's own test suite (the perl-framework from Debian's apache2 source package) against this
checkout's build, run by ci/httpd_suite.py as Debian's autopkgtest runs it: an unprivileged user,
pointed at our apxs alone (it compiles the framework's c-modules), the framework inheriting the
installed httpd.conf with every module enabled, one MPM at a time.

CI runs the event MPM on the system-profile build (the session's wheel, every feature the system's) and
on the portable wheel (test_portable_wheel.py). HTTPD_SUITE_MPMS="event worker prefork" runs all three:
    HTTPD_SUITE_MPMS="event worker prefork" bash ci/test -k httpd_suite
"""

import os
import sys

import pytest

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "ci"))
import httpd_suite  # noqa: E402

pytestmark = pytest.mark.integration

MPMS = os.environ.get("HTTPD_SUITE_MPMS", "event").split()


def assert_suite_passes(prefix, mpm, logs, with_ldap=True):
    """0 failed test files, no crash, and no file skipped except those Debian's apache2 skips too
    (no PHP, 2.5-only tests, …); ldap.t, which Debian skips, runs here
    against real slapd servers (ci/test installs Debian's slapd) when the build has mod_ldap."""
    assert httpd_suite.SLAPD.is_file(), "slapd is missing: ci/test installs Debian's slapd package (TEST_PACKAGES)"
    [result] = httpd_suite.run_suite(prefix, [mpm], logs)
    print(result.summary())
    (logs / "summary.txt").write_text(result.summary() + "\n")
    assert result.files > 100 and result.tests > 5000, result.summary()
    assert result.ok, result.summary()
    assert set(result.skipped) <= set(httpd_suite.debian_skips(mpm)), result.summary()
    if with_ldap:
        assert "t/modules/ldap.t" not in result.skipped, result.summary()
    return result


@pytest.mark.parametrize("mpm", MPMS)
def test_httpd_suite_passes_on_the_system_build(venv, mpm, tmp_path_factory):
    assert_suite_passes(venv.prefix(), mpm, tmp_path_factory.mktemp(f"httpd-suite-{mpm}"))
