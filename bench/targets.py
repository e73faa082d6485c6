#!/usr/bin/env python3
"""Every portable target in one run: build time, wheel size, install time, and whether two runs
give the same bytes.

For each target (default: every row of recipes/systems/targets.toml, in that order), one
after another on this machine:
  - build time: the whole `bash ci/build-portable-wheel --target NAME OUTDIR/NAME` (a fresh root,
    its toolchain, the release artifacts from this checkout's HEAD, the offline build, auditwheel);
  - wheel size, compressed and unpacked, and its sha256;
  - install time (median of 3): `pip install` of it from a real index on 127.0.0.1 (pypiserver), by this
    machine's pip asking for the wheel's platform (--platform, --target): the work pip does on the
    target, natively, on this CPU (on the target itself each check prints it: ci/portable/check);
  - with --same-as DIR (an earlier run's OUTDIR, from the same commit: the wheel's METADATA
    carries the README), whether each wheel has the same sha256 as that run's (for the targets
    that run built).
Prints a Markdown table; writes OUTDIR/results.json. Run as root (ci/build-portable-wheel is).

    python3 bench/targets.py OUTDIR [--same-as DIR] [--measure-only] [TARGET ...]

--measure-only takes the wheels already in OUTDIR/NAME (and the build time recorded there).
"""

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "ci"))

from build_httpd.profile import TARGETS  # noqa: E402
from local_index import local_index  # noqa: E402


def build(name: str, out: Path) -> float:
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(out / "build.log", "w") as log:
        subprocess.run(["bash", str(ROOT / "ci" / "build-portable-wheel"), "--target", name, str(out)],
                       stdout=log, stderr=subprocess.STDOUT, check=True)
    seconds = time.monotonic() - start
    (out / "build-seconds").write_text(f"{seconds:.0f}\n")
    return seconds


def the_wheel(out: Path) -> Path:
    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"{out}: expected one wheel, found {[w.name for w in wheels]}")
    return wheels[0]


def install_seconds(wheel: Path, work: Path) -> float:
    """`pip install mod_wsgi-httpd` from a local index holding only this wheel, by this machine's
    pip asking for the wheel's platform: what pip does on the target, natively, on this CPU.
    The median of 3, each into a new directory."""
    index = work / "index"
    index.mkdir()
    (index / wheel.name).symlink_to(wheel)
    platforms = [a for p in wheel.name[:-len(".whl")].split("-")[-1].split(".") for a in ("--platform", p)]
    seconds = []
    with local_index(index, work / "pypiserver") as url:
        for run in range(3):
            start = time.monotonic()
            subprocess.run([sys.executable, "-m", "pip", "--isolated", "install", "-q", "--disable-pip-version-check",
                            "--no-cache-dir", "--no-deps", "--only-binary", ":all:", *platforms,
                            "--target", str(work / f"site-{run}"), "--index-url", url, "mod_wsgi-httpd"], check=True)
            seconds.append(time.monotonic() - start)
    return statistics.median(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", type=Path)
    # (checked below, not by choices=: argparse before 3.12 checks an empty list against them)
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=f"default: every target ({', '.join(TARGETS)})")
    parser.add_argument("--same-as", type=Path, help="an earlier run's OUTDIR to compare the bytes with")
    parser.add_argument("--measure-only", action="store_true", help="measure the wheels already in OUTDIR")
    args = parser.parse_args()
    unknown = [name for name in args.targets if name not in TARGETS]
    if unknown:
        parser.error(f"no such target: {', '.join(unknown)} (bash ci/build-portable-wheel --list lists them)")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()
    rows = {}
    for name in args.targets or list(TARGETS):
        out = args.outdir / name
        seconds = float((out / "build-seconds").read_text()) if args.measure_only else build(name, out)
        wheel = the_wheel(out)
        with zipfile.ZipFile(wheel) as z:
            unpacked = sum(i.file_size for i in z.infolist())
        row = {"wheel": wheel.name, "build_seconds": round(seconds), "size_mb": round(wheel.stat().st_size / 1e6, 1),
               "unpacked_mb": round(unpacked / 1e6, 1),
               "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()}
        if args.same_as and (args.same_as / name).is_dir():  # an earlier run need not hold every target
            row["same_bytes"] = row["sha256"] == hashlib.sha256(the_wheel(args.same_as / name).read_bytes()).hexdigest()
        with tempfile.TemporaryDirectory() as work:
            row["install_seconds"] = round(install_seconds(wheel, Path(work)), 1)
        rows[name] = row
        print(f"{name}: {json.dumps(row)}", file=sys.stderr, flush=True)
    (args.outdir / "results.json").write_text(json.dumps({"commit": commit, "date": time.strftime("%Y-%m-%d"),
                                                          "targets": rows}, indent=1))
    print("| target | build (whole command) | wheel (compressed / unpacked) | install | sha256"
          + (" | same bytes as --same-as" if args.same_as else "") + " |")
    print("| --- | ---: | ---: | ---: | ---" + (" | ---" if args.same_as else "") + " |")
    for name, r in rows.items():
        install = f"{r['install_seconds']} s"
        same = f" | {({True: 'yes', False: 'NO'}).get(r.get('same_bytes'), 'not in that run')}" if args.same_as else ""
        print(f"| `{name}` | {r['build_seconds'] // 60} min {r['build_seconds'] % 60} s | {r['size_mb']} MB / "
              f"{r['unpacked_mb']} MB | {install} | `{r['sha256'][:8]}…{r['sha256'][-6:]}`{same} |")


if __name__ == "__main__":
    main()
