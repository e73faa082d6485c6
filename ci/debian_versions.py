"""Debian's version order (dpkg --compare-versions), for ci/check_updates.py alone: which revision or
release is newer. The build never compares versions; it finds files by size and sha256."""

import re
import sys
from pathlib import Path
from typing import Iterable, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from build_httpd.debian import Entry  # noqa: E402


def _order(c: str) -> int:
    if c == "~":
        return -1
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _compare_part(a: str, b: str) -> int:
    """dpkg's comparison of an upstream version or a revision: runs of non-digits (letters before
    other characters, ~ before everything, even the end), then runs of digits as numbers."""
    while a or b:
        na = re.match(r"\D*", a).group()
        nb = re.match(r"\D*", b).group()
        for i in range(max(len(na), len(nb))):
            ca = _order(na[i]) if i < len(na) else 0
            cb = _order(nb[i]) if i < len(nb) else 0
            if ca != cb:
                return -1 if ca < cb else 1
        a, b = a[len(na):], b[len(nb):]
        da = re.match(r"\d*", a).group()
        db = re.match(r"\d*", b).group()
        if int(da or 0) != int(db or 0):
            return -1 if int(da or 0) < int(db or 0) else 1
        a, b = a[len(da):], b[len(db):]
    return 0


def compare(a: str, b: str) -> int:
    """Debian's version order (dpkg --compare-versions): -1, 0 or 1."""
    def split(v: str) -> Tuple[int, str, str]:
        epoch, _, rest = v.rpartition(":") if ":" in v else ("0", "", v)
        upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")
        return int(epoch or 0), upstream, revision
    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


def newest(entries: Iterable[Entry]) -> Optional[Entry]:
    best = None
    for entry in entries:
        if best is None or compare(entry.version, best.version) > 0:
            best = entry
    return best
