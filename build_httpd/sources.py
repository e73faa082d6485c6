"""Fetch and verify: a source file comes from the first place that has it, and is used only after
its size and sha256 match the recipe.

A file is wanted by identity (file name, size, sha256), never by a release's or a revision's name.
Places, in order: MOD_WSGI_HTTPD_SOURCES (a directory), the sdist's own upstream/ folder, the user
cache, the recipe's URLs, Debian's archive (located through its source indexes by the sha256, for a
recipe that names a Debian source package; the archive is the one apt is configured with), and the
`upstream/` folder of a mod_wsgi-httpd sdist on the package index pip is configured to use (for the
files such an sdist carries).

Verify, then use the same bytes: whatever the place, the file is copied into the build's private
directory while it is hashed, and only that copy is ever extracted; the place may change afterwards
without effect. Unverified bytes never reach the cache: a download is verified in the private
directory first and then copied into the cache beside its final name and renamed into place.

This module decides the order of the places and keeps one record of what each answered
(transfer.Attempts). The places themselves: transfer.py (HTTP, retries, verified writes),
index.py (sdists on the package index), archive.py (Debian's archive), cache.py (the source
cache, read here and written there).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from . import archive, cache, debian, index, network
from .console import say
from .errors import FetchError, VerificationError
from .network import redact
from .recipes import Source
from .transfer import (CHUNK, Attempts, PermanentError, TransferError, copy_verified, http_chunks, settle,
                       stream_into, with_retries)


@dataclass(frozen=True)
class Places:
    """Where obtain_sources looks besides each recipe's own URLs (every one may be left out)."""
    sources_dir: Optional[Path] = None  # MOD_WSGI_HTTPD_SOURCES / -C sources=DIR
    bundled_dir: Optional[Path] = None  # the upstream/ folder of an sdist of this package
    cache_dir: Optional[Path] = None  # the source cache (None: none; the caller decides whether one can be trusted)
    index_urls: Optional[List[str]] = None  # None: the index pip (or uv) is configured with
    debian_archives: Optional[List[debian.Archive]] = None  # None: apt's configuration; []: none


def obtain_sources(sources: Iterable[Source], scratch_dir: Path, places: Places = Places(),
                   sleep: Callable[[float], None] = time.sleep) -> Dict[str, Path]:
    """A verified private copy of every source file, in scratch_dir/sources, keyed by filename.
    The places are asked in the README's order: the local ones, then the recipe's URLs, Debian's
    archive, the package index; each writes what it answered into one record (Attempts), which
    the message names when a file is found nowhere."""
    sources_dir, bundled_dir, cache_dir = places.sources_dir, places.bundled_dir, places.cache_dir
    sources = list(sources)
    private = scratch_dir / "sources"
    private.mkdir(parents=True, exist_ok=True)
    attempts = Attempts(s.filename for s in sources)
    found: Dict[str, Path] = {}
    for source in sources:
        local = _from_local(source, sources_dir, bundled_dir, cache_dir, private, attempts)
        if local is not None:
            found[source.filename] = local
    missing = [s for s in sources if s.filename not in found]
    if not missing:
        return found
    session = network.session()

    def settle_all(got: Dict[str, Path], where: str) -> None:
        for name, tmp in got.items():
            found[name] = settle(tmp, private / name)
            say(f"{name}: verified from {where}")

    for source in missing:
        tmp, url = _from_urls(session, source, private, attempts, sleep)
        if tmp is not None:
            settle_all({source.filename: tmp}, f"a download from {redact(url)}")
    still = {s.filename: s for s in missing if s.filename not in found}
    if still:
        archives = debian.archives() if places.debian_archives is None else places.debian_archives
        settle_all(archive.from_debian(session, still, private, attempts, archives, sleep), "Debian's archive")
    still = {n: s for n, s in still.items() if n not in found}
    if still:
        settle_all(index.from_index(session, still, private, attempts, places.index_urls, sleep),
                   "a mod_wsgi-httpd sdist on the package index")
    if cache_dir is not None:
        for source in missing:
            if source.filename in found:
                cache.remember_source(found[source.filename], cache_dir)
    unresolved = [s for s in sources if s.filename not in found]
    if unresolved:
        raise _not_found(unresolved, attempts, session.trust.advice() if attempts.untrusted else "")
    return found


def _from_local(source: Source, sources_dir: Optional[Path], bundled_dir: Optional[Path],
                cache_dir: Optional[Path], private: Path, attempts: Attempts) -> Optional[Path]:
    """A verified copy from MOD_WSGI_HTTPD_SOURCES, this sdist's upstream/ or the cache, if one
    of them has it. A damaged cached copy is a miss: it is fetched again and replaced."""
    name = source.filename
    if sources_dir is not None:
        candidate = sources_dir / name
        if candidate.is_file():
            copy = copy_verified(candidate, source, f"MOD_WSGI_HTTPD_SOURCES ({candidate})", private)
            say(f"{name}: verified from {sources_dir}")
            return copy
        attempts.note([name], f"{candidate}: not there")
    if bundled_dir is not None and (bundled_dir / name).is_file():
        copy = copy_verified(bundled_dir / name, source, f"this sdist ({bundled_dir / name})", private)
        say(f"{name}: verified from this sdist's upstream/")
        return copy
    if cache_dir is None:
        return None
    cached = cache_dir / name
    if not cached.is_file():
        attempts.note([name], f"{cached}: not cached yet")
        return None
    try:
        copy = copy_verified(cached, source, f"the cache ({cached})", private)
    except (VerificationError, TransferError, OSError) as e:
        say(f"{name}: the cached copy is not usable ({e}); fetching it again")
        attempts.note([name], f"{cached}: damaged, not used")
        return None
    say(f"{name}: verified from the cache")
    return copy


def _from_urls(session, source: Source, private: Path, attempts: Attempts, sleep) -> Tuple[Optional[Path], str]:
    """The recipe's URLs in order, until one gives the verified bytes: (the file or None, its URL)."""
    for url in source.urls:
        chunks = lambda: http_chunks(session, url, source.filename, source.size, 2 * source.size + CHUNK)  # noqa: E731
        try:
            tmp = with_retries(lambda: stream_into(private, chunks(), source, url), source.filename, sleep)
        except (TransferError, PermanentError) as e:
            attempts.failed([source.filename], redact(url), e)
            continue
        return tmp, url
    return None, ""


def _not_found(unresolved: List[Source], attempts: Attempts, trust_advice: str) -> FetchError:
    """One message: each file, its size and sha256, and what every place answered."""
    lines = "\n".join(f"  {s.filename} ({s.size} bytes, sha256 {s.sha256}):\n"
                      + "\n".join(f"    - {t}" for t in attempts.tried[s.filename]) for s in unresolved)
    fix = ("download the file(s) on a machine that can reach one of these places (or take them from "
           "this release's sources archive, docs/releasing.md) and point MOD_WSGI_HTTPD_SOURCES "
           "(-C sources=DIR) at the directory holding them; they are verified before use")
    if trust_advice:
        fix = trust_advice + "; or " + fix
    return FetchError(f"could not obtain a verified copy of {', '.join(s.filename for s in unresolved)}",
                      f"every place was tried:\n{lines}\n", fix)
