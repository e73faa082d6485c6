"""Debian's archive as a place to find a source file by what it is, not by a revision's name.

A recipe names a Debian source package (`debian = "expat"`) and the exact bytes it wants (size and
sha256). Debian's source indexes (dists/SUITE/main/source/Sources) list, for every revision of every
package they carry, the files with their size and sha256; any stanza of that package that lists
those bytes gives the pool path (Directory + file name). Revisions come and go from the indexes
with every security update; the bytes, and so the recipe, stay the same.

The archive is the one this machine's apt configuration names (never a host written into the
project). The indexes are only a locator: what is downloaded is checked against the recipe, as
from every other place. `ci/check_updates.py` reads the same indexes for the newest revisions.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

APT_DIR = Path("/etc/apt")
# The suites searched, in order: the security suites first (small indexes, newest fixes), then
# unstable and testing (newest upstream releases), then the stable releases this project builds on.
SECURITY_SUITES = ("trixie-security", "bookworm-security", "bullseye-security")
SUITES = ("sid", "forky", "trixie", "trixie-updates", "bookworm", "bookworm-updates", "bullseye",
          "bullseye-updates")
# What each suite is, for ci/check_updates.py' columns.
SUITE_KIND = {"sid": "unstable", "forky": "testing", "trixie": "stable", "trixie-updates": "stable",
              "bookworm": "oldstable", "bookworm-updates": "oldstable", "bullseye": "oldoldstable",
              "bullseye-updates": "oldoldstable"}
SUITE_KIND.update({s: "security" for s in SECURITY_SUITES})
CODENAMES = {s.split("-")[0] for s in SUITES} | {"buster", "stable", "testing", "unstable", "oldstable"}
INDEX_LIMIT = 64 << 20  # bytes: a compressed Sources index of main is about 12 MB


def _decompressors(modules=(("xz", "lzma"), ("gz", "gzip"), ("bz2", "bz2"))):
    """Compressed forms of an index, best first, with how to open them: those this Python can open
    (lzma and bz2 are missing from a Python compiled without liblzma's or libbz2's headers, as a
    pyenv or self-built one may be; gzip never is)."""
    found = []
    for compression, module in modules:
        try:
            found.append((compression, importlib.import_module(module).decompress))
        except ImportError:
            continue
    return tuple(found)


COMPRESSIONS = _decompressors()


@dataclass(frozen=True)
class Archive:
    """A Debian archive named by the apt configuration: `security` ones carry the -security suites."""

    uri: str
    security: bool

    def index_url(self, suite: str, compression: str) -> str:
        return f"{self.uri.rstrip('/')}/dists/{suite}/main/source/Sources.{compression}"

    def file_url(self, directory: str, filename: str) -> str:
        return f"{self.uri.rstrip('/')}/{directory.strip('/')}/{filename}"

    def suites(self) -> Tuple[str, ...]:
        return SECURITY_SUITES if self.security else SUITES


@dataclass(frozen=True)
class Entry:
    """One stanza of a Sources index: a revision of a source package and its files."""

    package: str
    version: str
    directory: str
    files: Tuple[Tuple[str, int, str], ...]  # (file name, size, sha256)
    suite: str = ""

    def file(self, size: int, sha256: str) -> Optional[str]:
        return next((name for name, s, digest in self.files if s == size and digest == sha256), None)

    @property
    def upstream(self) -> str:
        return upstream_version(self.version)


# -- apt's configuration ---------------------------------------------------------------------------

def _deb822(text: str) -> Iterator[Tuple[List[str], List[str], List[str]]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: Dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        yield fields.get("types", "").split(), fields.get("uris", "").split(), fields.get("suites", "").split()


def _one_line(text: str) -> Iterator[Tuple[List[str], List[str], List[str]]]:
    for line in text.splitlines():
        words = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] in ("deb", "deb-src"):
            yield [words[0]], [words[1]], [words[2]]


def archives(apt_dir: Path = APT_DIR) -> List[Archive]:
    """The Debian archives this machine's apt configuration names, main ones first, each once.
    An entry is Debian's when its suites are Debian's code names (other vendors' repositories in
    the same configuration are passed over)."""
    found: Dict[str, Archive] = {}
    files = [(p, _deb822) for p in sorted((apt_dir / "sources.list.d").glob("*.sources"))]
    files += [(p, _one_line) for p in [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]]
    for path, parse in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for _types, uris, suites in parse(text):
            debian = [s for s in suites if s.split("-")[0] in CODENAMES]
            if not debian:
                continue
            security = any(s.endswith("-security") for s in debian)
            for uri in uris:
                if uri.startswith(("http://", "https://")) and uri not in found:
                    found[uri] = Archive(uri, security)
    return sorted(found.values(), key=lambda a: not a.security)  # the security suites first (SUITES' comment)


# -- Sources indexes -------------------------------------------------------------------------------

def parse_sources(text: str, suite: str = "", packages: Optional[Iterable[str]] = None) -> List[Entry]:
    """The stanzas of a Sources index (only those of `packages`, when given)."""
    wanted = set(packages) if packages is not None else None
    entries = []
    for stanza in text.split("\n\n"):
        package = re.search(r"^Package: *(\S+)", stanza, re.M)
        if not package or (wanted is not None and package.group(1) not in wanted):
            continue
        version = re.search(r"^Version: *(\S+)", stanza, re.M)
        directory = re.search(r"^Directory: *(\S+)", stanza, re.M)
        block = re.search(r"^Checksums-Sha256:[^\n]*\n((?:[ \t][^\n]*\n?)*)", stanza, re.M)
        if not (version and directory and block):
            continue
        files = tuple((name, int(size), digest) for digest, size, name in
                      re.findall(r"^[ \t]+([0-9a-f]{64})[ \t]+(\d+)[ \t]+(\S+)", block.group(1), re.M))
        entries.append(Entry(package.group(1), version.group(1), directory.group(1), files, suite))
    return entries


def decompress(compression: str, data: bytes) -> str:
    return dict(COMPRESSIONS)[compression](data).decode("utf-8", "replace")


# -- versions --------------------------------------------------------------------------------------

def upstream_version(version: str) -> str:
    """The upstream part of a Debian version: no epoch, no revision, no repack marker
    (1:1.3.dfsg+really1.3.2-4 → 1.3.2; 2.5.0-1+deb12u2 → 2.5.0)."""
    upstream = version.split(":", 1)[-1]
    if "-" in upstream:
        upstream = upstream.rsplit("-", 1)[0]
    upstream = upstream.rsplit("really", 1)[-1]
    return re.sub(r"[+.~](dfsg|ds|repack)\d*$", "", upstream)
