"""Run by ci/portable/check in a fresh root, with the virtualenv's python: serve ci/portable/app.wsgi
through mod_wsgi-express with the portable build (30 threads) over HTTP, HTTPS and HTTP/2, and
check that the httpd process uses the system's libssl/libcrypto/libz for Python and nothing else
for those names (mod_ssl's own OpenSSL is linked in, invisible); then concurrent load, a request
that recurses through C in a request thread, a graceful restart under that load, and a clean stop.
Prints one JSON line of findings last; exits non-zero on the first failed check."""

import hashlib
import json
import os
import re
import ssl
import subprocess
import sys
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from waiting import wait_until  # noqa: E402
from build_httpd import elf  # noqa: E402  (the project's one ELF reader)

VENV = Path(sys.prefix)
TLS = Path(sys.argv[1])  # ca.crt, server.crt, server.key
HTTP_PORT, HTTPS_PORT = int(sys.argv[2]), int(sys.argv[3])
ROOT = Path("/srv/portable-check")
THREADS = 30
DEPTH = 400  # levels of recursion through C in one request (200 crash CPython in 128 KB of stack)
ERROR_LOG = ROOT / "express" / "error_log"  # mod_wsgi-express's, at level info: its daemons' lives are there
# a process that died: httpd's children (exit signal), mod_wsgi's daemon outside a stop (its
# monitor's words), or a crash in any of them
DIED = re.compile(r"Segmentation fault|exit signal|terminated by signal|has died; deregistering|appears to have been lost")
# mod_wsgi's words for a request its daemon ended without an answer: the 502s
DROPPED = re.compile(r"closed connection before sending complete response headers|Error reading response headers")


def error_log():
    """The server's error log, its lines, and those of them that say a process died."""
    lines = ERROR_LOG.read_text(errors="replace").splitlines()
    return lines, [line for line in lines if DIED.search(line)]


def check(ok, what):
    if not ok:
        sys.exit(f"portable check FAILED: {what}")
    print(f"ok: {what}", flush=True)


def answers(verify, requests, path="/"):
    """`requests` HTTPS requests, THREADS at a time: (status code, monotonic time it came) each."""
    def one(_):
        try:
            with httpx.Client(verify=verify, timeout=120) as client:
                code = client.get(f"https://localhost:{HTTPS_PORT}{path}").status_code
        except httpx.HTTPError as e:
            code = type(e).__name__
        return code, time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(one, range(requests)))


def load(verify, requests, path="/"):
    """The status codes of `answers`, by count."""
    return dict(Counter(code for code, _ in answers(verify, requests, path)))


def under_load(verify, apachectl):
    """Every daemon thread busy at once, the recursion through C in them, a graceful restart
    while requests run (mod_wsgi answers a few with 503 while its daemon socket is rotated:
    WSGISocketRotation, counted not hidden; 502 for what httpd's parent cuts, below), then
    everything served again."""
    codes = load(verify, THREADS * 4)
    check(codes == {200: THREADS * 4}, f"{THREADS * 4} requests, {THREADS} at a time, all answered 200 ({codes})")
    deep = load(verify, THREADS, f"/recurse?n={DEPTH}")
    check(deep == {200: THREADS}, f"{THREADS} concurrent requests recursing {DEPTH} levels through C answered 200 "
          f"({deep}): the threads' stacks hold a Python interpreter")
    with ThreadPoolExecutor(1) as background:
        during = background.submit(answers, verify, THREADS * 4)
        time.sleep(0.5)
        restarted = time.monotonic()
        subprocess.run([apachectl, "graceful"], check=True)
        during = during.result()
    # The old daemon, told to stop as the restart begins, runs what it has accepted and no longer
    # accepts what is queued on its socket; httpd's parent ends it 3 s in (APR_KILL_AFTER_TIMEOUT;
    # mod_wsgi #383). A request queued there, or still running then, is answered 502 — rarely
    # natively, often under emulation, where a request takes seconds. The error log must give
    # mod_wsgi's reason for each 502 and show no process dying: a crash still fails.
    cut = [round(at - restarted, 2) for code, at in during if code == 502]
    codes = dict(Counter(code for code, _ in during))
    log, died = error_log()
    dropped = sum(1 for line in log if DROPPED.search(line))
    check(set(codes) <= {200, 502, 503} and dropped >= len(cut) and not died and codes.get(200, 0) >= THREADS,
          f"requests during a graceful restart were answered ({codes}; 503 while the daemon socket rotates, "
          f"502 for what the old daemon ended unanswered: {cut} s after the restart began, {dropped} said so in "
          f"the error log; no process died {died[:3]})")
    def settled():
        codes = load(verify, THREADS * 2)
        if codes != {200: THREADS * 2}:
            raise RuntimeError(f"answers {codes}")
        return codes
    codes = wait_until(settled, "every request answered 200 after the graceful restart", timeout=60, interval=1)
    check(codes == {200: THREADS * 2}, f"after the graceful restart, {THREADS * 2} requests at a time answered 200")


def stopped(pid_file):
    """apachectl stop ends the server: the pid file goes and nothing listens on the ports."""
    def gone():
        if pid_file.exists():
            raise RuntimeError(f"{pid_file} is still there")
        try:
            httpx.get(f"http://localhost:{HTTP_PORT}/", timeout=2)
        except httpx.ConnectError:
            return True
        raise RuntimeError("something still answers on the port")
    check(wait_until(gone, "httpd to stop", timeout=60, interval=0.5), "a clean stop: no pid file, no listener")


def bare_build_summary() -> str:
    """What a bare machine's build made, for the test to compare with the system build's: its
    MPMs, modules, profile and where each feature's library came from."""
    info = json.loads(subprocess.run([VENV / "bin" / "mod_wsgi-httpd", "info", "--json"], capture_output=True,
                                     text=True, check=True).stdout)
    return json.dumps({"mpms": info["mpms"], "modules": info["modules"], "profile": info["profile"],
                       "sources": {n: f["source"] for n, f in info["features"].items()}})


def main():
    print(f"ok: uname -m says {os.uname().machine}", flush=True)  # the test compares it with the wheel's
    if os.environ.get("BARE"):
        print(f"bare build: {bare_build_summary()}", flush=True)
    ROOT.mkdir(parents=True, exist_ok=True)
    app = ROOT / "app.wsgi"
    app.write_text((Path(__file__).parent / "app.wsgi").read_text())
    express = VENV / "bin" / "mod_wsgi-express"
    prefix = Path(subprocess.run([VENV / "bin" / "python", "-c",
                                  "import mod_wsgi_packages.httpd as h; print(h.PREFIX)"],
                                 capture_output=True, text=True, check=True).stdout.strip())
    # APR-util's drivers load as the server starts: crypto (mod_session_crypto's; a driver it
    # cannot find stops the start) and LDAP (mod_ldap's TLS set-up, said in the error log)
    drivers = ROOT / "drivers.conf"
    drivers.write_text("".join(f"LoadModule {m}_module {prefix}/modules/mod_{m}.so\n"
                               for m in ("session", "session_crypto", "ldap"))
                       + "<Location /session>\n    Session On\n    SessionCryptoPassphrase check\n</Location>\n")
    subprocess.run([express, "setup-server", app, "--server-root", ROOT / "express", "--host", "127.0.0.1",
                    "--port", str(HTTP_PORT), "--https-port", str(HTTPS_PORT), "--server-name", "localhost",
                    "--ssl-certificate-file", TLS / "server.crt", "--ssl-certificate-key-file", TLS / "server.key",
                    "--http2", "--threads", str(THREADS), "--user", "nobody", "--group", "nogroup", "--locale", "C.UTF-8",
                    "--log-level", "info", "--include-file", drivers], check=True)
    apachectl = ROOT / "express" / "apachectl"
    subprocess.run([apachectl, "start"], check=True)
    verify = ssl.create_default_context(cafile=str(TLS / "ca.crt"))
    try:
        # (under emulation an arm64 httpd takes its time to start)
        plain = wait_until(lambda: httpx.get(f"http://localhost:{HTTP_PORT}/", timeout=10),  # the --server-name
                           "mod_wsgi-express", timeout=120, interval=1)
        with httpx.Client(verify=verify, http2=False, timeout=10) as client:
            https = client.get(f"https://localhost:{HTTPS_PORT}/")
        with httpx.Client(verify=verify, http2=True, timeout=10) as client:
            h2 = client.get(f"https://localhost:{HTTPS_PORT}/")
        under_load(verify, apachectl)
    finally:
        subprocess.run([apachectl, "stop"])
    stopped(ROOT / "express" / "httpd.pid")
    log, died = error_log()
    print("\n".join(f"error_log: {line}" for line in log), flush=True)  # kept in the test's check.log
    check(not died, f"no process died from start to stop, by the error log ({len(log)} lines; {died[:3]})")
    for name, r in (("HTTP", plain), ("HTTPS", https), ("HTTP/2", h2)):
        check(r.status_code == 200, f"{name} answered 200 ({r.status_code})")
    check(https.http_version == "HTTP/1.1", "HTTPS without ALPN h2 is HTTP/1.1")
    check(h2.http_version == "HTTP/2", f"HTTP/2 negotiated over TLS ({h2.http_version})")
    seen = h2.json()
    data = b"mod_wsgi-httpd portable " * 100
    check(seen["python_openssl"] == ssl.OPENSSL_VERSION,
          f"Python in httpd has the system's OpenSSL ({seen['python_openssl']}), as outside it")
    check(seen["sha256"] == hashlib.sha256(data).hexdigest() and seen["sha3"] == hashlib.sha3_256(data).hexdigest(),
          "hashlib in httpd computes what it computes outside")
    check(seen["zlib_runtime"] == zlib.ZLIB_RUNTIME_VERSION and seen["zlib_roundtrip"],
          f"zlib in httpd is the system's ({seen['zlib_runtime']}) and round-trips")
    check(any("LDAP: SSL support available" in line for line in log),
          "APR-util's LDAP driver loaded with its TLS (mod_ldap said so in the error log)")
    # the modules of the libraries added last (mod_md: libcurl and Jansson; LDAP; APR-util's crypto)
    # load into this machine's httpd, with the modules whose symbols they use before them
    wanted = ("watchdog", "md", "ldap", "authnz_ldap", "session", "session_crypto")
    dumped = subprocess.run([prefix / "bin" / "httpd", "-d", prefix, "-t", "-D", "DUMP_MODULES"]
                            + [a for m in wanted for a in ("-C", f"LoadModule {m}_module modules/mod_{m}.so")],
                            capture_output=True, text=True)
    check(dumped.returncode == 0 and all(f" {m}_module " in dumped.stdout for m in wanted),
          f"mod_md, mod_ldap, mod_authnz_ldap and mod_session_crypto load ({dumped.stderr.strip()[-300:]})")
    inside = [m for m in seen["mapped"] if m.startswith(str(VENV))]
    check(not inside, f"no libssl/libcrypto/libz/nghttp2/brotli/expat file from the package is mapped ({inside})")
    check(any("libssl.so" in m for m in seen["mapped"]) and any("libcrypto.so" in m for m in seen["mapped"]),
          f"the system's libssl and libcrypto are mapped for Python's ssl ({seen['mapped']})")
    mod_ssl = elf.read(prefix / "modules" / "mod_ssl.so")
    needs_libc = any(n.startswith("libc.") for n in mod_ssl.needed)  # glibc's libc.so.6, musl's libc.so
    needs_openssl = any(n.startswith(("libssl", "libcrypto")) for n in mod_ssl.needed)
    check(needs_libc and not needs_openssl,
          f"mod_ssl.so needs its C library and no shared libssl/libcrypto ({mod_ssl.needed})")
    check("ssl_module" in mod_ssl.exported, "mod_ssl.so's exports are read (its ssl_module among them)")
    exported = [name for name in mod_ssl.exported if name.startswith(("SSL_", "EVP_", "OPENSSL_"))]
    check(not exported, f"mod_ssl.so exports no OpenSSL symbol ({exported[:5]})")
    print(json.dumps({"system_openssl": ssl.OPENSSL_VERSION, "mapped": seen["mapped"],
                      "http2": h2.http_version}))


if __name__ == "__main__":
    main()
