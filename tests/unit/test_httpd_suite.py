"""ci/httpd_suite.py reads Test::Harness's report as the framework prints it."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "ci"))
import httpd_suite  # noqa: E402

PASSED = """\
t/apache/byterange8.t ............... skipped: apache version 2.5.1 or higher is required, this is version 2.4.69
t/filter/case.t ..................... ok
t/modules/sed.t ..................... skipped: cannot find module 'LWP::Protocol::AnyEvent::http'
t/ssl/v2.t .......................... skipped: SSLv2 test(s) not applicable
All tests successful.
Files=145, Tests=7332, 311 wallclock secs ( 4.13 usr  1.09 sys + 78.86 cusr 23.83 csys = 107.91 CPU)
Result: PASS
"""

FAILED = """\
t/modules/lua.t ..................... skipped: cannot find module 'lua'
t/modules/rewrite.t ................. Failed 2/41 subtests
t/ssl/proxy.t ....................... Dubious, test returned 255 (wstat 65280, 0xff00)

Test Summary Report
-------------------
t/modules/rewrite.t (Wstat: 0 Tests: 41 Failed: 2)
  Failed tests:  7, 9
t/ssl/proxy.t (Wstat: 65280 (exited 255) Tests: 0 Failed: 0)
Files=145, Tests=7001, 300 wallclock secs
Result: FAIL
"""


def test_a_passing_run_with_only_debian_s_skips_is_ok():
    r = httpd_suite.parse("event", PASSED)
    assert (r.files, r.tests, r.passed, r.failed_files) == (145, 7332, True, [])
    assert set(r.skipped) == {"t/apache/byterange8.t", "t/modules/sed.t", "t/ssl/v2.t"}
    assert not r.missing_modules and not r.unexpected_skips and r.ok  # a Perl module is not an httpd module
    assert "event: 142 test files ok, 0 failed, 3 skipped, 7332 tests" in r.summary()


def test_failed_files_and_a_module_we_lack_are_named():
    r = httpd_suite.parse("worker", FAILED)
    assert not r.passed and not r.ok
    assert r.failed_files == ["t/modules/rewrite.t", "t/ssl/proxy.t"]
    assert r.missing_modules == {"t/modules/lua.t": "cannot find module 'lua'"}
    text = r.summary()
    assert "FAILED t/modules/rewrite.t" in text and "FAILED t/ssl/proxy.t" in text and "<- a module we lack" in text


INSTALLED = """Listen 8080
LoadModule mpm_event_module modules/mod_mpm_event.so
#LoadModule mpm_worker_module modules/mod_mpm_worker.so
#LoadModule watchdog_module modules/mod_watchdog.so
LoadModule alias_module modules/mod_alias.so
<IfModule !mpm_prefork_module>
	#LoadModule cgid_module modules/mod_cgid.so
</IfModule>
#LoadModule heartbeat_module modules/mod_heartbeat.so
IncludeOptional conf/local/*.conf
"""


def test_every_module_of_the_installed_configuration_is_enabled_with_one_mpm_in_its_order():
    conf = httpd_suite.enabled(INSTALLED, "worker")
    assert conf.splitlines() == [
        "Listen 8080",
        "#LoadModule mpm_event_module modules/mod_mpm_event.so",
        "LoadModule mpm_worker_module modules/mod_mpm_worker.so",
        "LoadModule watchdog_module modules/mod_watchdog.so",
        "LoadModule alias_module modules/mod_alias.so",
        "<IfModule !mpm_prefork_module>",
        "\tLoadModule cgid_module modules/mod_cgid.so",
        "</IfModule>",
        "LoadModule heartbeat_module modules/mod_heartbeat.so",
        "IncludeOptional conf/local/*.conf",
    ]
    assert httpd_suite.enabled(INSTALLED, "event").splitlines()[1:3] == [
        "LoadModule mpm_event_module modules/mod_mpm_event.so",
        "#LoadModule mpm_worker_module modules/mod_mpm_worker.so"]


def test_the_installed_configuration_is_as_it_was_after_the_run_even_a_failed_one(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "httpd.conf").write_text(INSTALLED)
    modules = tmp_path / "test-modules"
    with pytest.raises(KeyboardInterrupt):  # a run stopped by ^C
        with httpd_suite.configured(tmp_path, "prefork", modules):
            during = (tmp_path / "conf" / "httpd.conf").read_text()
            assert "\n#LoadModule mpm_event_module" in during and "\n#LoadModule mpm_worker_module" in during
            assert "\nLoadModule heartbeat_module" in during
            added = (tmp_path / "conf" / "local" / "httpd-suite-test-modules.conf").read_text().splitlines()
            assert added == [f"LoadModule {n}_module {modules}/mod_{n}.so"
                             for n in ("bucketeer", "case_filter", "case_filter_in")]
            raise KeyboardInterrupt
    assert (tmp_path / "conf" / "httpd.conf").read_text() == INSTALLED
    assert not (tmp_path / "conf" / "local").exists()
    (tmp_path / "conf" / "local").mkdir()
    (tmp_path / "conf" / "local" / "mine.conf").write_text("# the user's\n")
    with httpd_suite.configured(tmp_path, "event", modules):
        pass
    assert [p.name for p in (tmp_path / "conf" / "local").iterdir()] == ["mine.conf"]


def test_a_module_the_build_leaves_out_on_purpose_is_said_not_hidden():
    r = httpd_suite.parse("event", PASSED.replace(
        "All tests", "t/modules/ldap.t .................... skipped: cannot find module 'authnz_ldap', "
        "LDAP testing not configured\nAll tests"))
    assert r.missing_modules and not r.ok
    r.left_out = {"authnz_ldap": "not built in the portable profile: why", "ldap": "same"}
    assert not r.missing_modules and r.ok
    assert "left out of this build on purpose (authnz_ldap: not built in the portable profile: why)" in r.summary()


def test_a_skip_debian_does_not_have_fails_the_run_but_prefork_may_skip_heartbeat():
    line = "t/modules/heartbeat.t ............... skipped: no reason given\nAll tests"
    assert not httpd_suite.parse("event", PASSED.replace("All tests", line)).ok
    assert httpd_suite.parse("prefork", PASSED.replace("All tests", line)).ok


def test_a_step_that_hangs_is_stopped_and_fails_the_run(tmp_path, monkeypatch):
    """A hung server or test does not hold CI: the step's whole process group is killed after
    STEP_TIMEOUT and the run counts as failed, saying so in the log."""
    import time
    monkeypatch.setattr(httpd_suite, "STEP_TIMEOUT", 1)
    runner = httpd_suite.Runner(tmp_path, tmp_path, tmp_path)
    runner.user = __import__("pwd").getpwuid(__import__("os").geteuid()).pw_name
    start = time.monotonic()
    with open(tmp_path / "log", "w") as log:
        rc = runner.as_user("sleep 30 & sleep 30", log, tmp_path)
    assert rc == httpd_suite.TIMED_OUT and time.monotonic() - start < 10
    assert "did not finish in 1 s" in (tmp_path / "log").read_text()


def test_modules_left_out_on_purpose_come_from_the_build_report(tmp_path):
    """A feature the profile leaves out on purpose excuses its modules' skips; one left out for want
    of a library (or switched off) does not, whatever its reason says."""
    import json
    (tmp_path / "build-info.json").write_text(json.dumps({"features": {
        "ldap": {"built": False, "reason": "not built in the portable profile: two copies", "left_out_on_purpose": True},
        "md": {"built": False, "reason": "not built in the ... (a reason that only looks like it)"},
        "ssl": {"built": True, "reason": "openssl/ssl.h found", "left_out_on_purpose": False},
    }}))
    assert httpd_suite.left_out_on_purpose(tmp_path) == {
        "ldap": "not built in the portable profile: two copies",
        "authnz_ldap": "not built in the portable profile: two copies"}
