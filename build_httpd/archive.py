"""Debian's archive as a place of sources: the source indexes of the suites apt is configured with
(parsed by debian.py) list files by size and sha256, so a file is found by what it is, in any
revision, and downloaded from the pool path the index gives."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from . import debian
from .errors import VerificationError
from .network import redact
from .recipes import Source
from .transfer import (CHUNK, Attempts, PermanentError, TransferError, UntrustedCertificate, http_chunks,
                       stream_into, with_retries)


def listed_as(entry: debian.Entry, source: Source) -> Optional[str]:
    """The name under which a Debian source index entry lists exactly these bytes (the recipe's
    Debian package, size and sha256), or None."""
    return entry.file(source.size, source.sha256) if entry.package == source.debian else None


def from_debian(session, wanted: Dict[str, Source], private: Path, attempts: Attempts,
                archives: List[debian.Archive], sleep) -> Dict[str, Path]:
    """The wanted files that Debian's source indexes list by their size and sha256, downloaded
    from the pool path the index gives and verified against the recipe."""
    got: Dict[str, Path] = {}
    looking = {n: s for n, s in wanted.items() if s.debian}
    attempts.note([n for n in wanted if n not in looking], "Debian's archive: the recipe names no Debian source package")
    if not looking:
        return got
    if not archives:
        attempts.note(looking, "Debian's archive: this machine's apt configuration names none")
        return got
    packages = {s.debian for s in looking.values()}
    read: List[str] = []
    failures: list = []
    for archive, suite, entries in debian_suites(session, archives, packages, sleep, failures):
        read.append(suite)
        for name, source in list(looking.items()):
            for entry in entries:
                filename = listed_as(entry, source)
                if not filename:
                    continue
                url = archive.file_url(entry.directory, filename)
                where = f"{redact(url)} (Debian {suite}: {entry.package} {entry.version})"
                chunks = lambda: http_chunks(session, url, source.filename, source.size, 2 * source.size + CHUNK)  # noqa: E731
                try:
                    got[name] = with_retries(lambda: stream_into(private, chunks(), source, where), name, sleep)
                except (TransferError, PermanentError, VerificationError) as e:
                    attempts.failed([name], where, e)
                    continue
                del looking[name]
                break
        if not looking:  # no further index is read
            return got
    attempts.untrusted |= any(isinstance(e, UntrustedCertificate) for _, e in failures)
    unread = [f"{suite} ({e})" for suite, e in failures]
    shown = ", ".join(redact(a.uri) for a in archives)
    for name, source in looking.items():
        attempts.note([name], f"Debian's archive ({shown}): no source index read ({', '.join(read) or 'none'}) "
                              f"lists a file of {source.debian} with this size and sha256"
                              + (f"; not readable: {'; '.join(unread)}" if unread else ""))
    return got


def debian_suites(session, archives: List[debian.Archive], packages, sleep, failures: list):
    """(archive, suite, stanzas of `packages`) for every suite the archives serve, in order; a suite
    that cannot be read is appended to `failures` as (suite, error) — one a mirror lacks (404) is
    not: not every mirror has every suite."""
    for archive in archives:
        for suite in archive.suites():
            try:
                found = debian_index(session, archive, suite, packages, sleep)
            except (TransferError, PermanentError) as e:
                if not (isinstance(e, PermanentError) and e.status == 404):
                    failures.append((suite, e))
                continue
            yield archive, suite, found


def debian_entries(session, archives: List[debian.Archive], packages, sleep=time.sleep):
    """Every stanza of `packages` in every suite the archives serve, with its archive; the suites
    read; and those that could not be read: suite → why."""
    failures: list = []
    entries: List[Tuple[debian.Archive, debian.Entry]] = []
    read: List[str] = []
    for archive, suite, found in debian_suites(session, archives, packages, sleep, failures):
        read.append(suite)
        entries += [(archive, entry) for entry in found]
    return entries, read, {suite: str(e) for suite, e in failures}


def debian_index(session, archive: debian.Archive, suite: str, packages, sleep) -> List[debian.Entry]:
    """The stanzas of `packages` in one suite's Sources index, in the first compression served."""
    last: Optional[PermanentError] = None
    for compression, _ in debian.COMPRESSIONS:
        url = archive.index_url(suite, compression)
        try:
            body = with_retries(lambda: b"".join(http_chunks(session, url, f"Debian {suite} sources index", None,
                                                               debian.INDEX_LIMIT)), f"Debian {suite}", sleep)
        except PermanentError as e:
            if e.status != 404:
                raise
            last = e
            continue
        try:
            text = debian.decompress(compression, body)
        except (OSError, EOFError, ValueError) as e:  # lzma.LZMAError and zlib errors derive from these
            raise TransferError(f"the {compression} index did not decompress ({type(e).__name__})") from e
        return debian.parse_sources(text, suite, packages)
    raise last or PermanentError("no index", 404)
