#!/usr/bin/env python3
"""Side-by-side benchmark: this checkout against today's mod_wsgi-httpd==2.4.69.1 sdist, in one run.

Measures, each in fresh virtualenvs with the sources already local for both and no caches:
  - cold build + install: wall time and CPU time (user+sys of every child process);
  - cached reinstall of ours into another new virtualenv (build cache hit);
  - installed size of the httpd package;
  - hello-world requests per second through mod_wsgi-express on each httpd (wrk, loopback only,
    bounded duration), with the real mod_wsgi compiled against each.
  - install from a real package index: pypiserver on 127.0.0.1 serving our sdist and the portable
    wheel (--portable-wheel, or built with ci/build-portable-wheel when run as root); pip picks the
    wheel, and the time is the whole `pip install --index-url … mod_wsgi-httpd` in a new virtualenv.
Reports medians of --runs runs and the ratios. Prints a table; writes .bench/results.json.

    python3 bench/run.py --runs 3 [--portable-wheel PATH]
"""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from build_httpd.network import index_urls, session  # noqa: E402
from build_httpd.index import index_sdists  # noqa: E402
from build_httpd.transfer import sha256_of  # noqa: E402

sys.path.insert(0, str(ROOT / "ci"))
from local_index import local_index  # noqa: E402
from waiting import wait_until  # noqa: E402

BASELINE = "mod_wsgi_httpd-2.4.69.1.tar.gz"
MOD_WSGI = "mod_wsgi==6.1.1"
HELLO = (b"def application(environ, start_response):\n"
         b"    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '5')])\n"
         b"    return [b'hello']\n")


def sh(argv, **kw):
    return subprocess.run([str(a) for a in argv], check=True, capture_output=True, text=True, **kw)


def timed(argv, env=None):
    """(wall seconds, CPU seconds of the children) for one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    result = subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{argv} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def fetch_baseline(work: Path) -> Path:
    """Today's sdist from the configured index, checked against the index's sha256."""
    client = session()
    for index in index_urls():
        for filename, url, digest in index_sdists(client, index):
            if filename == BASELINE:
                path = work / filename
                with client.get(url, stream=True, timeout=(10, 60)) as r:
                    r.raise_for_status()
                    with open(path, "wb") as f:
                        shutil.copyfileobj(r.raw, f)
                if digest and sha256_of(path) != digest:
                    raise SystemExit(f"{filename}: sha256 differs from the index's")
                return path
    raise SystemExit(f"{BASELINE} is not on the configured index")


def venv(path: Path) -> Path:
    sh([sys.executable, "-m", "venv", path])
    sh([path / "bin" / "python", "-m", "pip", "install", "-q", "--upgrade", "pip", "setuptools", "wheel"])
    return path


def site(v: Path) -> Path:
    return Path(sh([v / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rps(v: Path, work: Path, seconds: int, repeats: int):
    app = work / "hello.wsgi"
    app.write_bytes(HELLO)
    port = free_port()
    ident = ["--user", "nobody", "--group", sh(["id", "-gn", "nobody"]).stdout.strip()] if os.geteuid() == 0 else []
    argv = [v / "bin" / "mod_wsgi-express", "start-server", app, "--host", "127.0.0.1", "--port", port,
            "--server-root", work / f"sr-{port}", "--processes", "2", "--threads", "10", *ident]
    proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_until(lambda: subprocess.run(["curl", "-sf", f"http://127.0.0.1:{port}/"], check=True,
                                          capture_output=True), "mod_wsgi-express", alive=lambda: proc.poll() is None)
        sh(["wrk", "-t2", "-c20", "-d2s", f"http://127.0.0.1:{port}/"])  # warm-up
        results = []
        for _ in range(repeats):
            out = sh(["wrk", "-t2", "-c20", f"-d{seconds}s", f"http://127.0.0.1:{port}/"]).stdout
            results.append(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)))
        return results
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def open_to_nobody(path: Path):
    if os.geteuid() == 0:
        for d in [path, *path.parents]:
            os.chmod(d, d.stat().st_mode | 0o001)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="cold builds of each (default 3)")
    parser.add_argument("--wrk-seconds", type=int, default=5)
    parser.add_argument("--wrk-repeats", type=int, default=3)
    parser.add_argument("--portable-wheel", type=Path, help="the portable wheel (default: build one, as root)")
    args = parser.parse_args()
    for tool in ("wrk", "curl"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed (Debian: apt-get install {tool})")

    work = Path(tempfile.mkdtemp(prefix="mod_wsgi-httpd-bench-"))
    os.chmod(work, 0o755)
    open_to_nobody(work)
    open_to_nobody(Path(os.path.realpath(sys.executable)))
    try:
        sdist = fetch_baseline(work)
        with tarfile.open(sdist) as tar:
            tar.extractall(work, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(work)
        upstream = work / sdist.name[: -len(".tar.gz")] / "upstream"
        # a snapshot of the checkout, so that editing it while the benchmark runs changes nothing
        checkout = work / "checkout"
        shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(
            ".git", ".venv*", "build", "*.egg-info", "__pycache__", ".bench", "upstream"))

        index = work / "index"
        index.mkdir()
        wheel = args.portable_wheel
        if wheel is None:
            built = sh(["bash", ROOT / "ci" / "build-portable-wheel", work / "portable"])
            wheel = Path(built.stdout.strip().splitlines()[-1])
        shutil.copy(wheel, index)
        tool = venv(work / "tool")
        sh([tool / "bin" / "pip", "install", "-q", "build"])
        sh([tool / "bin" / "python", "-m", "build", "--sdist", "--outdir", index, checkout],
           env=dict(os.environ, MOD_WSGI_HTTPD_SOURCES=str(upstream)))

        results = {"ours_cold": [], "theirs_cold": [], "ours_cached": [], "wheel_index": []}
        for run in range(args.runs):
            cache = work / f"cache-{run}"
            env = dict(os.environ, MOD_WSGI_HTTPD_SOURCES=str(upstream), MOD_WSGI_HTTPD_CACHE=str(cache),
                       PIP_NO_CACHE_DIR="1")
            ours = venv(work / f"ours-{run}")
            results["ours_cold"].append(timed([ours / "bin" / "pip", "install", checkout], env))
            again = venv(work / f"ours-again-{run}")
            results["ours_cached"].append(timed([again / "bin" / "pip", "install", checkout], env))
            theirs = venv(work / f"theirs-{run}")
            results["theirs_cold"].append(timed([theirs / "bin" / "pip", "install", sdist], env))
            with local_index(index, work / "pypiserver") as url:
                fresh = venv(work / f"wheel-{run}")
                results["wheel_index"].append(timed([fresh / "bin" / "pip", "--isolated", "install", "--index-url", url,
                                                     "mod_wsgi-httpd"], dict(env, PIP_NO_CACHE_DIR="1")))
            info = json.loads((site(fresh) / "mod_wsgi_packages" / "httpd" / "build-info.json").read_text())
            if info.get("profile") != "portable":
                raise SystemExit("pip installed something other than the portable wheel from the local index")
            print(f"run {run + 1}: ours {results['ours_cold'][-1][0]:.0f} s, cached {results['ours_cached'][-1][0]:.0f} s,"
                  f" theirs {results['theirs_cold'][-1][0]:.0f} s, portable wheel from an index "
                  f"{results['wheel_index'][-1][0]:.1f} s", file=sys.stderr, flush=True)

        ours, theirs = work / "ours-0", work / "theirs-0"
        size_ours = size_mb(site(ours) / "mod_wsgi_packages")
        size_theirs = size_mb(site(theirs) / "mod_wsgi_packages")
        size_wheel = size_mb(site(work / "wheel-0") / "mod_wsgi_packages")
        sh([ours / "bin" / "pip", "install", "-q", MOD_WSGI], env=dict(os.environ, PIP_NO_CACHE_DIR="1"))
        # today's package needs build isolation turned off for mod_wsgi to find it
        sh([theirs / "bin" / "pip", "install", "-q", "--no-build-isolation", MOD_WSGI],
           env=dict(os.environ, PIP_NO_CACHE_DIR="1"))
        open_to_nobody(work)
        rps_ours = rps(ours, work, args.wrk_seconds, args.wrk_repeats)
        rps_theirs = rps(theirs, work, args.wrk_seconds, args.wrk_repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def med(rows, i):
        return statistics.median(r[i] for r in rows)

    table = {
        "cold build wall (s)": (med(results["ours_cold"], 0), med(results["theirs_cold"], 0)),
        "cold build CPU (s)": (med(results["ours_cold"], 1), med(results["theirs_cold"], 1)),
        "cached reinstall wall (s)": (med(results["ours_cached"], 0), None),
        "portable wheel from index (s)": (med(results["wheel_index"], 0), med(results["theirs_cold"], 0)),
        "installed size (MB)": (size_ours, size_theirs),
        "installed size, portable (MB)": (size_wheel, size_theirs),
        "hello-world req/s (median)": (statistics.median(rps_ours), statistics.median(rps_theirs)),
    }
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}; runs: {args.runs}")
    print(f"{'measure':<30}{'ours':>12}{'2.4.69.1':>12}{'ratio':>9}")
    for name, (a, b) in table.items():
        ratio = f"{a / b:.2f}" if b else "-"
        print(f"{name:<30}{a:>12.1f}{(b if b is not None else float('nan')):>12.1f}{ratio:>9}")
    out = ROOT / ".bench"
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps({"raw": results, "rps": [rps_ours, rps_theirs],
                                                  "table": table, "date": time.strftime("%Y-%m-%d")}, indent=1))


if __name__ == "__main__":
    main()
