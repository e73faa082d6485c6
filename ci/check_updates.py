#!/usr/bin/env python3
"""Is any component behind a security fix? One row per recipe (every profile): the pinned version,
the newest revision in each kind of Debian suite this machine's apt archive serves (stable,
security, testing, unstable), the newest upstream release where its release page can be reached,
and a verdict:

  current                      nothing newer anywhere
  update available             a newer release or revision, not a security one
  SECURITY UPDATE              a -security suite carries a fix we lack, and its source can be
                               downloaded here: make the release (docs/releasing.md)
  security update, source not obtainable here
                               the same, but the file it needs answers 404 (or cannot be fetched)

A fix "we lack" is a newer upstream version in a -security suite, or a newer Debian revision of
the pinned upstream version there (Debian's security patches; a recipe that applies them names the
revision in `debian_revision`). A recipe's `[updates] series` keeps it on a release series
(OpenSSL 3.5, its LTS).

Usage:  python3 ci/check_updates.py [--json] [--apt-dir DIR] [--recipes DIR]
Exit status: 1 when an obtainable security update is pending; 2 when no Debian source index could
be read at all, or a security suite's could not (then a pending fix may be missing); 0 otherwise.
"""

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from build_httpd import debian  # noqa: E402
from build_httpd.recipes import RECIPES_DIR, load_recipes  # noqa: E402
from build_httpd.archive import debian_entries  # noqa: E402
from debian_versions import compare, newest  # noqa: E402  (ci/, beside this script)
from stdlib_http import session as http_session  # noqa: E402

COLUMNS = ("stable", "security", "testing", "unstable")


def obtainable(session, archive, entry, wanted_suffix) -> bool:
    """Whether the file a release needs from this revision answers: the .orig tarball for a new
    upstream version, the Debian part (its patches) for a new revision of the same one."""
    names = [n for n, _, _ in entry.files if re.search(wanted_suffix, n) and not n.endswith(".asc")]
    if not names:
        return False
    try:  # the status line is the answer; the body is not read
        with session.get(archive.file_url(entry.directory, names[0]), stream=True, timeout=(10, 30)) as response:
            return response.status_code == 200
    except Exception:  # noqa: BLE001 - any failure to reach it means: not obtainable now
        return False


def upstream_newest(session, recipe):
    """The newest version on the recipe's upstream release page, or why it is not known."""
    url, pattern = recipe.updates_url, recipe.updates_pattern
    if not url:
        return None, "no release page in the recipe"
    try:
        response = session.get(url, timeout=(10, 30))
    except Exception as e:  # noqa: BLE001
        return None, f"unreachable ({type(e).__name__})"
    if response.status_code != 200:
        return None, f"HTTP {response.status_code}"
    versions = [v.replace("_", ".") for v in re.findall(pattern, response.text)]
    versions = [v for v in versions if v.startswith(recipe.series)]
    if not versions:
        return None, "no version found on the page"
    best = versions[0]
    for v in versions[1:]:
        if compare(v, best) > 0:
            best = v
    return best, ""


def row(session, recipe, entries):
    pinned, revision = recipe.version, recipe.source.debian_revision
    mine = [(a, e) for a, e in entries if e.package == recipe.source.debian and e.upstream.startswith(recipe.series)]
    columns = {}
    for kind in COLUMNS:
        kinds = ("security",) if kind == "security" else (kind,)
        best = newest(e for _, e in mine if debian.SUITE_KIND.get(e.suite) in kinds)
        columns[kind] = f"{best.version} ({best.suite})" if best else ""

    def newer(e) -> bool:
        upstream = compare(e.upstream, pinned)
        if upstream != 0:
            return upstream > 0
        if revision:
            return compare(e.version, revision) > 0
        return debian.SUITE_KIND.get(e.suite) == "security"  # Debian patched this version; we did not

    ahead = [(a, e) for a, e in mine if newer(e)]
    security = [(a, e) for a, e in ahead if debian.SUITE_KIND.get(e.suite) == "security"]
    upstream, why = upstream_newest(session, recipe)

    def need(e):  # the file a release would take from this revision
        return r"\.orig\.tar\." if compare(e.upstream, pinned) > 0 else r"\.debian\.tar\."

    pending = False
    if security:
        best = newest(e for _, e in security)
        archive = next(a for a, e in security if e is best)
        pending = obtainable(session, archive, best, need(best))
        if pending:
            verdict = f"SECURITY UPDATE: {best.version} ({best.suite})"
        else:
            verdict = f"security update, source not obtainable here: {best.version} ({best.suite})"
    elif ahead or (upstream and compare(upstream, pinned) > 0):
        best = newest(e for _, e in ahead)
        if best and not (upstream and compare(upstream, best.upstream) > 0):
            archive = next(a for a, e in ahead if e is best)
            there = "" if obtainable(session, archive, best, need(best)) else ", source not obtainable here"
            verdict = f"update available: {best.version} ({best.suite}{there})"
        else:
            verdict = f"update available: {upstream} (upstream)"
    else:
        verdict = "current"
    if not recipe.source.debian:
        verdict += " (no Debian package named: only upstream was asked)"
    return {"component": recipe.name, "pinned": pinned + (f" + {revision}" if revision else ""),
            "debian_package": recipe.source.debian, **columns,
            "upstream": upstream or why, "verdict": verdict,
            "security_pending": pending}


def table(rows):
    heads = ("component", "pinned") + COLUMNS + ("upstream", "verdict")
    widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in heads]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(heads, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(str(r[h]).ljust(w) for h, w in zip(heads, widths)) + " |" for r in rows]
    return "\n".join(lines)


def main(argv):
    parser = argparse.ArgumentParser(prog="ci/check_updates.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--apt-dir", type=Path, default=debian.APT_DIR, help="apt's configuration (default /etc/apt)")
    parser.add_argument("--recipes", type=Path, default=RECIPES_DIR)
    args = parser.parse_args(argv)
    recipes = load_recipes(args.recipes, profile="portable")  # every recipe of every profile
    archives = debian.archives(args.apt_dir)
    session = http_session()
    entries, read, unread = debian_entries(session, archives, {r.source.debian for r in recipes.values()})
    rows = [row(session, r, entries) for r in recipes.values()]
    if args.json:
        print(json.dumps({"suites_read": read, "suites_not_read": unread, "components": rows}, indent=2))
    else:
        print(table(rows))
        print(f"\nDebian suites read: {', '.join(read) or 'none'}"
              + (f"; not read: {'; '.join(f'{s}: {why}' for s, why in unread.items())}" if unread else ""))
    if not read:
        print("check-updates: no Debian source index could be read (apt configuration: "
              f"{args.apt_dir}); nothing is known", file=sys.stderr)
        return 2
    unread_security = [s for s in unread if debian.SUITE_KIND.get(s) == "security"]
    pending = [r["component"] for r in rows if r["security_pending"]]
    if pending:
        print(f"check-updates: obtainable security updates pending for {', '.join(pending)}: "
              "ci/update_recipe.py, then the tests, then a release (docs/releasing.md)", file=sys.stderr)
        return 1
    if unread_security:
        print(f"check-updates: the security suites {', '.join(unread_security)} could not be read: a pending "
              "security fix may be missing from the table above; run it again", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
