#!/usr/bin/env python3
"""How well the Apache we build serves, beside the distribution's, in one run (issue 36).

Servers, each with the real mod_wsgi for the distribution's python3 and one configuration written
once for all (CONF below; only module paths differ):
  debian    the distribution's apache2 and libapache2-mod-wsgi-py3 (installed here if missing, with a
            policy-rc.d that keeps them from starting on port 80)
  ours      this checkout's system build, `pip install .` into a virtualenv of the same python3,
            with pip's mod_wsgi compiled against it (the build cache makes a second run quick)
  portable  with --wheel PATH: that portable wheel, installed the same way
  NAME      with --checkout NAME=DIR (repeatable): another source tree's system build, as ours
            (a change measured against the commit before it, in the same run)
Workloads (wrk and h2load from the distribution; each run --duration seconds):
  static-1k     1 KB file, HTTP/1.1 keep-alive, wrk -c32
  tls-1k        the same over TLS (2048-bit RSA)
  static-100k   100 KB file (sendfile)
  gzip-100k     100 KB html compressed by mod_deflate (Accept-Encoding: gzip)
  h2-tls        HTTP/2 over TLS, h2load -c16 -m10, 1 KB file
  wsgi          a WSGI hello in mod_wsgi daemon mode (the mod_wsgi versions differ: not ours to judge)
  rewrite       60 RewriteRules that do not match, then the 1 KB file
The client shares the CPUs with the servers: all servers run at once on their own ports, and each
round runs every workload against each server in turn (the order alternating by round); the
table gives the medians of --rounds rounds, and each server's ratio to debian's as the median of
the ratios within each round (the machine's pace drifts between rounds by as much as 30%, and a
round's servers share it; a ratio of medians would mix rounds). Memory: PSS
(/proc/PID/smaps_rollup) of httpd's own processes, and apart of the WSGI daemon, idle after the
start and after one run of every workload, each server measured alone: PSS divides a page among
the processes that map it, so servers running side by side would share the pages of the system
libraries two of them link (debian's and ours: libcrypto, libpython) and look smaller than
they are on their own, beside one that has its libraries inside (portable). For the same reason,
run it on a quiet machine: another program mapping the distribution's libcrypto (a Python with ssl
imported) takes a share of those pages too.

    python3 bench/serve.py [--rounds 3] [--duration 8] [--wheel PATH] [--checkout NAME=DIR] [--json OUT]
    (as root; --rounds 0 measures memory only)
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "ci"))
from waiting import wait_until  # noqa: E402

PYTHON = "/usr/bin/python3"  # the distribution's, which its mod_wsgi is built for
PACKAGES = ["apache2", "libapache2-mod-wsgi-py3", "wrk", "nghttp2-client", "openssl", "python3-venv", "python3-dev"]
DEBIAN_MODULES = Path("/usr/lib/apache2/modules")
MODULES = ["mpm_event", "authz_core", "unixd", "mime", "filter", "deflate", "rewrite", "socache_shmcb", "ssl",
           "http2"]
RULES = 60

CONF = """\
ServerRoot "{root}"
PidFile "{root}/httpd.pid"
DefaultRuntimeDir "{root}"
ErrorLog "{root}/error.log"
LogLevel warn
{loads}
Listen 127.0.0.1:{http}
Listen 127.0.0.1:{https}
Listen 127.0.0.1:{rewrite}
User nobody
Group nogroup
ServerName localhost
DocumentRoot "{docroot}"
<Directory "{docroot}">
    Require all granted
</Directory>
TypesConfig /dev/null
AddType text/plain .txt
AddType text/html .html
# Debian's mpm_event.conf, written out: the same numbers for every server
StartServers 2
MinSpareThreads 25
MaxSpareThreads 75
ThreadLimit 64
ThreadsPerChild 25
MaxRequestWorkers 150
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
EnableSendfile On
Protocols h2 http/1.1
AddOutputFilterByType DEFLATE text/html
SSLSessionCache "shmcb:{root}/ssl_scache(512000)"
WSGISocketPrefix "{root}/wsgi"
# daemon mode only, as mod_wsgi-express configures it: no Python interpreter in httpd's own processes
WSGIRestrictEmbedded On
WSGIDaemonProcess hello processes=1 threads=15 display-name=%{{GROUP}}
WSGIScriptAlias /wsgi "{app}" process-group=hello application-group=%{{GLOBAL}}
<VirtualHost 127.0.0.1:{https}>
    SSLEngine on
    SSLCertificateFile "{tls}/server.crt"
    SSLCertificateKeyFile "{tls}/server.key"
</VirtualHost>
<VirtualHost 127.0.0.1:{rewrite}>
    RewriteEngine On
{rules}
</VirtualHost>
"""
HELLO = ("def application(environ, start_response):\n"
         "    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '5')])\n"
         "    return [b'hello']\n")


def sh(argv, **kw):
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kw)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))[:300]} failed ({result.returncode}):\n"
                           f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_packages() -> None:
    """The distribution's server, its mod_wsgi and the clients; nothing started on port 80."""
    installed = sh(["bash", "-c", '. ci/system-packages.sh && installed_packages "$@"', "-", *PACKAGES],
                   cwd=ROOT).stdout.split()
    missing = [p for p in PACKAGES if p not in installed]
    if not missing:
        return
    policy = Path("/usr/sbin/policy-rc.d")
    had_policy = policy.exists()
    if not had_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        sh(["apt-get", "update", "-qq"])
        sh(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    finally:
        if not had_policy:
            policy.unlink()


def venv_with(tmp: Path, name: str, install: list) -> Path:
    """A virtualenv of the distribution's python3 with `install` (pip arguments), then pip's
    mod_wsgi compiled against that httpd; returns the venv."""
    venv = tmp / name
    sh([PYTHON, "-m", "venv", venv])
    pip = [venv / "bin" / "python", "-m", "pip", "--disable-pip-version-check", "-q"]
    sh([*pip, "install", "--upgrade", "pip"])
    sh([*pip, "install", *install])
    sh([*pip, "install", "mod_wsgi"])
    for path in (tmp, venv):  # the server's user reads the app and the venv
        path.chmod(0o755)
    return venv


class Server:
    def __init__(self, name: str, binary: Path, loads: str, tmp: Path, tls: Path, docroot: Path, app: Path):
        self.name, self.binary = name, binary
        self.root = tmp / f"server-{name}"
        self.root.mkdir()
        self.ports = {"http": free_port(), "https": free_port(), "rewrite": free_port()}
        rules = "\n".join(f"    RewriteRule ^/nomatch{i}/(.*)$ /other{i}/$1 [L]" for i in range(RULES))
        self.conf = self.root / "httpd.conf"
        self.conf.write_text(CONF.format(root=self.root, loads=loads, docroot=docroot, tls=tls, app=app,
                                         rules=rules, **self.ports))
        shutil.chown(self.root, "nobody")  # the WSGI daemon's socket directory

    def start(self) -> None:
        sh([self.binary, "-f", self.conf, "-k", "start"])
        wait_until(lambda: sh(["curl", "-sf", f"http://127.0.0.1:{self.ports['http']}/1k.txt"]),
                   f"{self.name} to answer", timeout=30, interval=0.3)

    def stop(self) -> None:
        subprocess.run([str(self.binary), "-f", str(self.conf), "-k", "stop"], capture_output=True)
        wait_until(lambda: self.gone(), f"{self.name} to stop", timeout=30)

    def gone(self) -> None:
        if (self.root / "httpd.pid").exists():
            raise OSError("its pid file is still there")

    def memory(self) -> dict:
        """PSS in kB of httpd's processes and of the WSGI daemon."""
        parent = int((self.root / "httpd.pid").read_text())
        own, daemon = [parent], []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    cmdline = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if ppid == parent:
                    (daemon if cmdline.startswith(b"(wsgi:") else own).append(int(entry.name))
        return {"httpd": sum(pss(p) for p in own), "wsgi": sum(pss(p) for p in daemon)}

    def url(self, workload: str) -> str:
        scheme, port, path = WORKLOADS[workload][:3]
        return f"{scheme}://127.0.0.1:{self.ports[port]}{path}"


def pss(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return int(re.search(r"^Pss:\s+(\d+) kB", text, re.M).group(1))


# name: (scheme, port, path, client)
WORKLOADS = {
    "static-1k": ("http", "http", "/1k.txt", "wrk"),
    "tls-1k": ("https", "https", "/1k.txt", "wrk"),
    "static-100k": ("http", "http", "/100k.txt", "wrk"),
    "gzip-100k": ("http", "http", "/100k.html", "wrk-gzip"),
    "h2-tls": ("https", "https", "/1k.txt", "h2load"),
    "wsgi": ("http", "http", "/wsgi", "wrk"),
    "rewrite": ("http", "rewrite", "/1k.txt", "wrk"),
}


def load(url: str, client: str, duration: int) -> float:
    """Requests per second the client measured."""
    if client == "h2load":
        out = sh(["h2load", "-c16", "-m10", "-D", str(duration), url]).stdout
        if not re.search(r"status codes: \d+ 2xx, 0 3xx, 0 4xx, 0 5xx", out) or "Application protocol: h2" not in out:
            raise RuntimeError(f"h2load: not every request was answered 200 over h2:\n{out[-1500:]}")
        return float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    headers = ["-H", "Accept-Encoding: gzip"] if client == "wrk-gzip" else []
    out = sh(["wrk", "-t2", "-c32", f"-d{duration}s", *headers, url]).stdout
    # (a read error or two is wrk ending its TLS connections at the deadline)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if "Non-2xx" in out or (errors and (int(errors.group(1)) or int(errors.group(3)) or int(errors.group(4))
                                        or int(errors.group(2)) > 32)):
        raise RuntimeError(f"wrk: errors against {url}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def content(tmp: Path) -> Path:
    docroot = tmp / "htdocs"
    docroot.mkdir()
    (docroot / "1k.txt").write_bytes(b"x" * 1023 + b"\n")
    (docroot / "100k.txt").write_bytes(os.urandom(50 * 1024).hex().encode())
    words = " ".join(f"<p>paragraph {i} of a page that compresses like a real one</p>" for i in range(1700))
    (docroot / "100k.html").write_text(f"<html><body>{words}</body></html>"[:100 * 1024])
    return docroot


def certificate(tmp: Path) -> Path:
    tls = tmp / "tls"
    tls.mkdir()
    sh(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
        "-keyout", tls / "server.key", "-out", tls / "server.crt"])
    for p in (tls, *tls.iterdir()):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return tls


def loads_for(binary: Path, modules_dir: Path, wsgi: str) -> str:
    """The LoadModule lines of MODULES, but for those compiled into the binary (Debian's unixd)."""
    compiled_in = set(re.findall(r"^\s+mod_(\w+)\.c$", sh([binary, "-l"]).stdout, re.M))
    return "\n".join([f"LoadModule {m}_module {modules_dir / f'mod_{m}.so'}" for m in MODULES if m not in compiled_in]
                     + [wsgi])


def servers(tmp: Path, wheel, checkouts, tls: Path, docroot: Path, app: Path) -> list:
    debian = Path("/usr/sbin/apache2")
    made = [Server("debian", debian,
                   loads_for(debian, DEBIAN_MODULES, f"LoadModule wsgi_module {DEBIAN_MODULES / 'mod_wsgi.so'}"),
                   tmp, tls, docroot, app)]
    builds = [("ours", [str(ROOT)])] + [(name, [str(Path(d).resolve())]) for name, d in checkouts] + \
        ([("portable", ["--no-deps", str(wheel)])] if wheel else [])
    for name, install in builds:
        venv = venv_with(tmp, f"venv-{name}", install)
        prefix = Path(sh([venv / "bin" / "python", "-c",
                          "import mod_wsgi_packages.httpd as h; print(h.PREFIX)"]).stdout.strip())
        wsgi = sh([venv / "bin" / "mod_wsgi-express", "module-config"]).stdout.strip()
        httpd = prefix / "bin" / "httpd"
        made.append(Server(name, httpd, loads_for(httpd, prefix / "modules", wsgi), tmp, tls, docroot, app))
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--wheel", help="a portable wheel: a third server")
    parser.add_argument("--checkout", action="append", default=[], metavar="NAME=DIR",
                        help="another source tree, built and served as ours is")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("run as root: it installs the distribution's apache2 and starts servers as nobody")
    ensure_packages()
    tmp = Path(tempfile.mkdtemp(prefix="mod_wsgi-httpd-serve-"))
    tmp.chmod(0o755)
    tls, docroot = certificate(tmp), content(tmp)
    app = tmp / "hello.wsgi"
    app.write_text(HELLO)
    checkouts = [c.split("=", 1) for c in args.checkout]
    if any(len(c) != 2 or c[0] in ("debian", "ours", "portable") for c in checkouts):
        parser.error("--checkout takes NAME=DIR, NAME not debian, ours or portable")
    running = servers(tmp, args.wheel, checkouts, tls, docroot, app)
    rates = {s.name: {w: [] for w in WORKLOADS} for s in running}
    try:
        for s in running:
            s.start()
        for r in range(args.rounds):
            order = running if r % 2 == 0 else running[::-1]
            for workload, (_, _, _, client) in WORKLOADS.items():
                for s in order:
                    rates[s.name][workload].append(load(s.url(workload), client, args.duration))
    finally:
        for s in running:
            s.stop()
    memory = {"idle": {}, "after": {}}
    for s in running:  # each alone (the module's docstring says why)
        s.start()
        try:
            time.sleep(2)
            memory["idle"][s.name] = s.memory()
            for workload, (_, _, _, client) in WORKLOADS.items():
                load(s.url(workload), client, args.duration)
            time.sleep(2)
            memory["after"][s.name] = s.memory()
        finally:
            s.stop()
    result = {"rounds": args.rounds, "duration": args.duration,
              "medians": {n: {w: statistics.median(v) for w, v in per.items() if v} for n, per in rates.items()},
              "ratios": paired_ratios(rates),
              "runs": rates, "memory_kb": memory,
              "versions": {s.name: sh([s.binary, "-v"]).stdout.splitlines()[0] for s in running}}
    print(table(result, [s.name for s in running]))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def paired_ratios(rates: dict) -> dict:
    """Each server's ratio to debian's per workload: the median of the ratios within a round."""
    return {n: {w: statistics.median(a / b for a, b in zip(v, rates["debian"][w])) for w, v in per.items() if v}
            for n, per in rates.items()}


def table(result: dict, names: list) -> str:
    medians, ratios, memory = result["medians"], result["ratios"], result["memory_kb"]
    others = [n for n in names if n != "debian"]
    lines = [f"{result['rounds']} rounds of {result['duration']} s, medians of requests/s; ratio = server / debian, "
             "the median of each round's",
             "", "| workload | " + " | ".join(names) + " | " + " | ".join(f"{n} / debian" for n in others) + " |",
             "|---" * (1 + len(names) + len(others)) + "|"]
    for w in WORKLOADS if result["rounds"] else ():  # --rounds 0: memory only
        lines.append(f"| {w} | " + " | ".join(f"{medians[n][w]:,.0f}" for n in names) + " | "
                     + " | ".join(f"{ratios[n][w]:.2f}" for n in others) + " |")
    for when in ("idle", "after"):
        for part in ("httpd", "wsgi"):
            label = f"PSS of {'httpd' if part == 'httpd' else 'the WSGI daemon'}, {when} (MB)"
            lines.append(f"| {label} | " + " | ".join(f"{memory[when][n][part] / 1024:.1f}" for n in names) + " | "
                         + " | ".join(f"{memory[when][n][part] / memory[when]['debian'][part]:.2f}" for n in others)
                         + " |")
    lines += ["", "servers: " + "; ".join(f"{n}: {v}" for n, v in result["versions"].items())]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
