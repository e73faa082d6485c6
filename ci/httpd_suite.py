"""httpd's own test suite (the Apache HTTP Server project's perl-framework, as Debian's apache2
source package carries it) against an installed mod_wsgi-httpd prefix, run the way Debian's
autopkgtest `debian/tests/run-test-suite` runs it against Debian's apache2: as an unprivileged user,
with the prefix's own apxs (the framework's c-modules compile through it) and nothing else: the
framework inherits the installed conf/httpd.conf, in which every module is enabled for the run
(one MPM at a time), plus httpd's test modules (bucketeer, case_filter, case_filter_in) compiled
from httpd's sources and loaded from a file of conf/local/; the configuration is as it was after.

    python ci/httpd_suite.py [--mpm event|worker|prefork|all] [--logs DIR] PREFIX|VENV

The framework is a source like any other: the httpd recipe's [test_suite] names the Debian file by
size and sha256; it is found through Debian's indexes, verified and kept in the source cache.
Exit status 0 only when every MPM's run has no failed test file, no crash, no test file skipped for
a module the prefix lacks (unless the build says it leaves it out on purpose), and no skipped file
that Debian's apache2 does not skip too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "ci")]
from build_httpd.conftree import LOAD_LINE  # noqa: E402
from build_httpd.recipes import Source, all_features, load_recipes  # noqa: E402

MPMS = ("event", "worker", "prefork")
TEST_USER = "httpd-test"
# httpd's modules for testing only, from its source tree (Debian builds and loads them the same way)
TEST_MODULES = {"bucketeer": "modules/debugging/mod_bucketeer.c",
                "case_filter": "modules/examples/mod_case_filter.c",
                "case_filter_in": "modules/examples/mod_case_filter_in.c"}
# The test files Debian's apache2 skips too (its autopkgtest on Debian 12, every module loaded):
# they need what neither build has here, not a module. Any other skipped file is a finding.
DEBIAN_SKIPS = {
    "t/apache/byterange8.t": "2.5-only",
    "t/filter/byterange.t": "2.5-only",
    "t/apache/leaks.t": "needs mod_memory_track, a debugging module outside httpd's tree",
    "t/modules/ldap.t": "needs LDAP servers set up for the framework (run here when Debian's slapd is installed)",
    "t/modules/sed.t": "needs Perl's LWP::Protocol::AnyEvent::http (not in the suite's packages)",
    "t/php/all.t": "PHP",
    "t/security/CVE-2004-0958.t": "PHP",
    "t/security/CVE-2004-0959.t": "PHP",
    "t/protocol/nntp-like.t": "deferred accept() on Linux",
    "t/ssl/v2.t": "SSLv2 is gone from OpenSSL",
}
# and with one MPM: what the test file itself excludes
DEBIAN_SKIPS_WITH = {"prefork": {"t/modules/heartbeat.t": "the test excludes prefork (it needs a threaded MPM)"}}


def debian_skips(mpm: str) -> Dict[str, str]:
    return {**DEBIAN_SKIPS, **DEBIAN_SKIPS_WITH.get(mpm, {})}
# "cannot find module 'lua'" (an httpd module; Perl modules have "::" in their names)
SKIP_MODULE = re.compile(r"cannot find module '([a-z0-9_]+)'")


def test_suite_source() -> Source:
    """The framework's Debian file, as the httpd recipe names it ([test_suite])."""
    return load_recipes()["httpd"].test_suite


def httpd_source() -> Source:
    return load_recipes()["httpd"].source


def obtain(sources: List[Source], scratch: Path) -> Dict[str, Path]:
    from build_httpd.settings import default_cache_dir
    from build_httpd.sources import Places, obtain_sources
    cache = Path(os.environ.get("MOD_WSGI_HTTPD_CACHE") or default_cache_dir()) / "sources"
    cache.mkdir(parents=True, exist_ok=True)
    return obtain_sources(sources, scratch, Places(cache_dir=cache))


def find_prefix(path: Path) -> Path:
    """An httpd prefix (bin/apxs), or a virtualenv holding mod_wsgi-httpd."""
    if (path / "bin" / "apxs").is_file():
        return path
    found = sorted(path.glob("lib/python3*/site-packages/mod_wsgi_packages/httpd"))
    if found and (found[0] / "bin" / "apxs").is_file():
        return found[0]
    raise SystemExit(f"{path} is neither an httpd prefix (bin/apxs) nor a virtualenv with mod_wsgi-httpd installed: "
                     "give the prefix (python -m mod_wsgi_packages.httpd --json shows it) or the virtualenv")


# How long one step of a run may take (one MPM's whole run: 170–420 s on 2 CPUs); a hung server
# or test fails the run instead of holding CI until its own limit.
STEP_TIMEOUT = int(os.environ.get("HTTPD_SUITE_STEP_TIMEOUT", "1800"))
TIMED_OUT = 124


@dataclass
class Result:
    mpm: str
    files: int = 0
    tests: int = 0
    passed: bool = False
    failed_files: List[str] = field(default_factory=list)
    skipped: Dict[str, str] = field(default_factory=dict)  # file -> reason
    crashed: bool = False
    seconds: float = 0.0
    log: Path = Path()

    # modules the build leaves out on purpose, with why (a feature its profile does not build)
    left_out: Dict[str, str] = field(default_factory=dict)

    @property
    def missing_modules(self) -> Dict[str, str]:
        """Skipped files whose reason is a module the prefix lacks, unless the build says it leaves
        that module out on purpose."""
        return {f: r for f, r in self.skipped.items()
                if any(m not in self.left_out for m in SKIP_MODULE.findall(r))}

    @property
    def ok(self) -> bool:
        return (self.passed and not self.failed_files and not self.crashed and not self.missing_modules
                and not self.unexpected_skips)

    @property
    def unexpected_skips(self) -> Dict[str, str]:
        return {f: r for f, r in self.skipped.items() if f not in debian_skips(self.mpm)}

    def summary(self) -> str:
        ok_files = self.files - len(self.failed_files) - len(self.skipped)
        lines = [f"{self.mpm}: {ok_files} test files ok, {len(self.failed_files)} failed, {len(self.skipped)} skipped, "
                 f"{self.tests} tests, {self.seconds:.0f} s (log: {self.log})"]
        lines += [f"  FAILED {f}" for f in self.failed_files]
        def note(f: str, r: str) -> str:
            if f in self.missing_modules:
                return "   <- a module we lack"
            on_purpose = [f"{m}: {self.left_out[m]}" for m in SKIP_MODULE.findall(r) if m in self.left_out]
            if on_purpose:
                return "   <- left out of this build on purpose (" + "; ".join(on_purpose) + ")"
            return "   <- Debian's apache2 does not skip it" if f in self.unexpected_skips else ""
        lines += [f"  skipped {f}: {r}{note(f, r)}" for f, r in sorted(self.skipped.items())]
        if self.crashed:
            lines.append("  a server process dumped core (see the log)")
        return "\n".join(lines)


def parse(mpm: str, output: str) -> Result:
    result = Result(mpm)
    m = re.search(r"^Files=(\d+), Tests=(\d+)", output, re.M)
    if m:
        result.files, result.tests = int(m.group(1)), int(m.group(2))
    result.passed = bool(re.search(r"^Result: PASS", output, re.M))
    result.crashed = "server dumped core" in output
    for m in re.finditer(r"^(t/\S+\.t) \.+ skipped: (.*)$", output, re.M):
        result.skipped[m.group(1)] = m.group(2).strip()
    summary = output.split("Test Summary Report", 1)[-1] if "Test Summary Report" in output else ""
    result.failed_files = sorted(set(re.findall(r"^(t/\S+\.t)\s+\(Wstat", summary, re.M)))
    if not result.passed and not result.failed_files:
        result.failed_files = sorted(set(re.findall(r"^(t/\S+\.t) \.+ (?:Failed|Dubious)", output, re.M)))
    return result


def left_out_on_purpose(prefix: Path) -> Dict[str, str]:
    """module → why, for the features the build reports as left out on purpose (one its profile
    has no recipe for: `left_out_on_purpose` in its build-info.json)."""
    import json
    features = all_features(load_recipes())
    info = json.loads((prefix / "build-info.json").read_text())
    return {m: f["reason"] for name, f in info["features"].items()
            if f.get("left_out_on_purpose") and name in features for m in features[name].modules}


def enabled(conf: str, mpm: str) -> str:
    """The installed httpd.conf with every module enabled, as Debian's autopkgtest enables every
    module of apache2 before the run: each LoadModule line active, in the file's own order (the
    build's, which loads what others need first), one MPM active and the others commented."""
    out = []
    for line in conf.split("\n"):
        m = LOAD_LINE.match(line)
        if m:
            name = m.group(3)
            active = name == f"mpm_{mpm}" or not name.startswith("mpm_")
            indent = line[:len(line) - len(line.lstrip())]
            line = f"{indent}{'' if active else '#'}LoadModule {m.group(2)}_module modules/mod_{name}.so"
        out.append(line)
    return "\n".join(out)


def test_modules_conf(test_modules: Path) -> str:
    """httpd's test modules, in a file of conf/local/ (which httpd.conf includes, so the framework
    inherits them too)."""
    return "".join(f"LoadModule {n}_module {test_modules}/mod_{n}.so\n" for n in TEST_MODULES)


@contextlib.contextmanager
def configured(prefix: Path, mpm: str, test_modules: Path):
    """The installed configuration, every module enabled with one MPM and httpd's test modules
    added, for the run; as it was afterwards."""
    conf = prefix / "conf" / "httpd.conf"
    local = prefix / "conf" / "local"
    added = local / "httpd-suite-test-modules.conf"
    original = conf.read_text()
    made_local = not local.exists()
    try:
        conf.write_text(enabled(original, mpm))
        local.mkdir(exist_ok=True)
        added.write_text(test_modules_conf(test_modules))
        yield
    finally:
        conf.write_text(original)
        added.unlink(missing_ok=True)
        if made_local:
            local.rmdir()


class Runner:
    def __init__(self, prefix: Path, work: Path, logs: Path):
        self.prefix = prefix
        self.work = work
        self.logs = logs
        self.user = TEST_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    def as_user(self, command: str, log, cwd: Path) -> int:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C", "HOME": str(self.work),
               "HARNESS_VERBOSE": "0"}
        argv = ["bash", "-c", command]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", self.user, "--"] + argv
        log.flush()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return proc.wait(timeout=STEP_TIMEOUT)
        except subprocess.TimeoutExpired:  # a hung server or test: the whole group goes, the run fails
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            log.write(f"\nhttpd_suite: {command!r} did not finish in {STEP_TIMEOUT} s; stopped\n")
            return TIMED_OUT

    def prepare(self) -> Path:
        """The framework unpacked and the test modules compiled, owned by the test user."""
        if os.geteuid() == 0 and subprocess.run(["id", "-u", TEST_USER], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "--user-group", "--system", "--no-create-home", "-s", "/bin/bash", TEST_USER],
                           check=True)
        got = obtain([test_suite_source(), httpd_source()], self.work / "scratch")
        framework = self.work / "perl-framework"
        with tarfile.open(got[test_suite_source().filename]) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith("debian/perl-framework/")]
            # tarfile's "data" filter: nothing outside the directory, no devices, modes masked
            # (every Python this runs on has it: 3.11.4+, and the 2023 security releases)
            tar.extractall(self.work, members=members, filter="data")
        shutil.move(str(self.work / "debian" / "perl-framework"), framework)
        modules = self.work / "test-modules"
        modules.mkdir()
        src = httpd_source()
        with tarfile.open(got[src.filename]) as tar:
            for name, path in TEST_MODULES.items():
                member = tar.getmember(f"{src.filename[:-len('.tar.gz')]}/{path}")
                (modules / Path(path).name).write_bytes(tar.extractfile(member).read())
        with open(self.logs / "test-modules.log", "w") as log:
            for name, path in TEST_MODULES.items():
                rc = subprocess.run([self.prefix / "bin" / "apxs", "-c", "-o", f"mod_{name}.la", Path(path).name],
                                    cwd=modules, stdout=log, stderr=subprocess.STDOUT).returncode
                if rc != 0:
                    raise SystemExit(f"compiling httpd's test module {name} with {self.prefix}/bin/apxs failed: "
                                     f"see {self.logs / 'test-modules.log'}")
                shutil.copy(modules / ".libs" / f"mod_{name}.so", modules / f"mod_{name}.so")
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", f"{self.user}:", self.work], check=True)
            for d in [self.work, *self.work.parents]:
                os.chmod(d, os.stat(d).st_mode | 0o001)
        return framework

    def run(self, framework: Path, mpm: str, test_args=()) -> Result:
        log_path = self.logs / f"testlog.{mpm}"
        start = time.monotonic()
        with open(log_path, "w") as log, configured(self.prefix, mpm, self.work / "test-modules"):
            self.as_user("make clean >/dev/null 2>&1 || true", log, framework)
            # no -httpd_conf: the framework inherits the installed configuration, as from any Apache
            rc = self.as_user(f"perl Makefile.PL -apxs {self.prefix}/bin/apxs", log, framework)
            if rc == 0 and self.as_user(" ".join(["t/TEST", *test_args]), log, framework) == TIMED_OUT:
                rc = TIMED_OUT
            # the server's own log, for a failure's reasons
        server_log = framework / "t" / "logs" / "error_log"
        if server_log.is_file():
            shutil.copy(server_log, self.logs / f"error_log.{mpm}")
        result = parse(mpm, log_path.read_text(errors="replace"))
        result.left_out = left_out_on_purpose(self.prefix)
        result.seconds = time.monotonic() - start
        result.log = log_path
        if rc != 0:
            result.passed = False
            why = f"(timed out after {STEP_TIMEOUT} s)" if rc == TIMED_OUT else "(perl Makefile.PL failed)"
            result.failed_files = result.failed_files + [why]
        return result


# t/modules/ldap.t wants two directory servers at fixed ports (its configuration names them):
# dc=example,dc=com with the framework's scripts/httpd.ldif, and the server its referral points to
LDAP_SERVERS = {8389: "httpd.ldif", 8390: "httpd-sub.ldif"}
SLAPD = Path("/usr/sbin/slapd")
SUFFIX = "dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n"


@contextlib.contextmanager
def ldap_servers(framework: Path, work: Path, log, prefix: Path):
    """Real slapd servers for ldap.t, as the framework's scripts/ldap-init.sh sets them up (no
    anonymous bind): yields whether they run. Without mod_authnz_ldap, without Debian's slapd, or
    with the ports taken, ldap.t is skipped, as on Debian."""
    import socket
    if not (prefix / "modules" / "mod_authnz_ldap.so").is_file():
        print("ldap.t: this build has no mod_authnz_ldap", file=log)
        yield False
        return
    if not SLAPD.is_file() or not Path("/etc/ldap/schema/inetorgperson.schema").is_file():
        print("ldap.t: no slapd here (Debian's slapd package), so it is skipped", file=log)
        yield False
        return
    for port in LDAP_SERVERS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                print(f"ldap.t: port {port} is taken, so it is skipped", file=log)
                yield False
                return
    procs = []
    try:
        for port, ldif in LDAP_SERVERS.items():
            home = work / f"slapd-{port}"
            (home / "db").mkdir(parents=True)
            conf = home / "slapd.conf"
            conf.write_text("".join(f"include /etc/ldap/schema/{s}.schema\n" for s in ("core", "cosine", "inetorgperson"))
                            + f"modulepath /usr/lib/ldap\nmoduleload back_mdb\npidfile {home}/slapd.pid\n"
                            "disallow bind_anon\nrequire authc\ndatabase mdb\nsuffix \"dc=example,dc=com\"\n"
                            f"rootdn \"cn=admin,dc=example,dc=com\"\nrootpw travis\ndirectory {home}/db\n")
            (home / "data.ldif").write_text(SUFFIX + (framework / "scripts" / ldif).read_text())
            subprocess.run([SLAPD.parent / "slapadd", "-f", conf, "-l", home / "data.ldif"], check=True,
                           stdout=log, stderr=subprocess.STDOUT)
            procs.append(subprocess.Popen([SLAPD, "-d", "0", "-f", conf, "-h", f"ldap://127.0.0.1:{port}/"],
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

        def listening():
            for port in LDAP_SERVERS:
                with socket.create_connection(("127.0.0.1", port), timeout=2):
                    pass
            return True
        from waiting import wait_until
        wait_until(listening, "slapd on ports 8389 and 8390", 30, alive=lambda: all(p.poll() is None for p in procs))
        yield True
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(20)


def run_suite(prefix: Path, mpms, logs: Path) -> List[Result]:
    logs.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="httpd-suite-"))
    os.chmod(work, 0o755)
    try:
        runner = Runner(prefix, work, logs)
        framework = runner.prepare()
        with open(logs / "slapd.log", "w") as log, ldap_servers(framework, work, log, prefix) as ldap:
            return [runner.run(framework, mpm, ["-defines", "LDAP"] if ldap else []) for mpm in mpms]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mpm", default="event", choices=MPMS + ("all",))
    parser.add_argument("--logs", type=Path, default=Path("httpd-suite-logs"))
    parser.add_argument("target", type=Path, help="an httpd prefix, or a virtualenv with mod_wsgi-httpd")
    args = parser.parse_args(argv)
    prefix = find_prefix(args.target.resolve())
    mpms = MPMS if args.mpm == "all" else (args.mpm,)
    results = run_suite(prefix, mpms, args.logs.resolve())
    for r in results:
        print(r.summary())
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
