"""The package index as a place of sources: the `upstream/` folder of a mod_wsgi-httpd sdist on the
index pip (or uv) is configured with carries the system profile's tarballs; each is verified
against its recipe as it is taken out."""

from __future__ import annotations

import html.parser
import re
import tarfile
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import urljoin, urlsplit

from . import network
from .errors import VerificationError
from .network import redact
from .recipes import Source
from .transfer import (CHUNK, Attempts, PermanentError, TransferError, http_chunks, sha256_of, stream_into,
                       with_retries)

INDEX_PROJECT = "mod-wsgi-httpd"
INDEX_PAGE_LIMIT = 16 << 20  # bytes: a project page on an index is far smaller
SDIST_LIMIT = 256 << 20  # bytes: an sdist of this package carries about 20 MB of tarballs
_SDIST = re.compile(r"^mod[_-]wsgi[_-]httpd-(?P<version>[0-9][0-9.]*)\.tar\.gz$", re.I)


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: List[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)


def _version_key(version: str) -> Tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def index_sdists(session, index_url: str) -> List[Tuple[str, str, Optional[str]]]:
    """(filename, url, sha256 or None) of every mod_wsgi-httpd sdist on an index, newest first."""
    page = index_url.rstrip("/") + f"/{INDEX_PROJECT}/"
    try:
        body = b"".join(http_chunks(session, page, "index page", None, INDEX_PAGE_LIMIT))
    except PermanentError as e:
        if e.status == 404:
            return []
        raise
    parser = _Links()
    parser.feed(body.decode("utf-8", "replace"))
    found = []
    for href in parser.links:
        url = urljoin(page, href)
        path, _, fragment = url.partition("#")
        filename = urlsplit(path).path.rsplit("/", 1)[-1]
        match = _SDIST.match(filename)
        if match:
            digest = fragment[len("sha256="):] if fragment.startswith("sha256=") else None
            found.append((match.group("version"), filename, path, digest))
    found.sort(key=lambda item: _version_key(item[0]), reverse=True)
    return [(filename, url, digest) for _, filename, url, digest in found]


def from_sdists(session, wanted: Dict[str, Source], target_dir: Path, attempts: Attempts,
                index_urls: List[str], sleep) -> Dict[str, Path]:
    """Take the wanted files out of the upstream/ folder of sdists on the index: the newest first;
    one whose hash or members do not match is recorded and the next one tried."""
    got: Dict[str, Path] = {}
    for index_url in index_urls:
        shown_index = redact(index_url)
        try:
            sdists = with_retries(lambda: index_sdists(session, index_url), f"index {shown_index}", sleep)
        except (TransferError, PermanentError) as e:
            attempts.failed(wanted, f"package index {shown_index}", e)
            continue
        if not sdists:
            attempts.note(wanted, f"package index {shown_index}: no mod_wsgi-httpd sdist there")
        for filename, url, digest in sdists[:4]:
            missing = {n: s for n, s in wanted.items() if n not in got}
            if not missing:
                return got
            shown = redact(url)
            with tempfile.TemporaryDirectory(dir=target_dir, prefix=".sdist-") as tmp:
                sdist = Path(tmp) / filename
                try:
                    with_retries(lambda: download_to(session, url, sdist), filename, sleep)
                except (TransferError, PermanentError) as e:
                    attempts.failed(missing, shown, e)
                    continue
                if digest and sha256_of(sdist) != digest:
                    attempts.note(missing, f"{shown}: sha256 differs from the index's, not opened")
                    continue
                got.update(extract_upstream(sdist, missing, target_dir, shown, attempts))
    return got


def download_to(session, url: str, path: Path) -> Path:
    """A carrier sdist: checked against the index's hash by the caller; what it carries is checked
    against the recipes as it is extracted."""
    try:
        with open(path, "wb") as out:
            for chunk in http_chunks(session, url, path.name, None, SDIST_LIMIT):
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def extract_upstream(sdist: Path, wanted: Dict[str, Source], target_dir: Path, origin: str,
                     attempts: Attempts) -> Dict[str, Path]:
    got: Dict[str, Path] = {}
    failed = set()  # the members found but not usable (already recorded in `attempts`)
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            for member in tar:
                parts = member.name.split("/")
                if len(parts) >= 2 and parts[-2] == "upstream" and parts[-1] in wanted and member.isfile():
                    source = wanted[parts[-1]]
                    stream = tar.extractfile(member)
                    where = f"{origin} (upstream/{source.filename})"
                    try:
                        got[source.filename] = stream_into(target_dir, iter(lambda: stream.read(CHUNK), b""),
                                                           source, where)
                    except (TransferError, VerificationError) as e:
                        # one bad carrier must not stop the install: the next sdist may be good
                        attempts.failed([source.filename], where, e)
                        failed.add(source.filename)
    except (tarfile.TarError, OSError, EOFError) as e:
        unread = [name for name in wanted if name not in got and name not in failed]
        attempts.note(unread, f"{origin}: not a readable sdist ({e})")
        failed.update(unread)
    for name in wanted:
        if name not in got and name not in failed:
            attempts.note([name], f"{origin}: does not carry upstream/{name}")
    return got


def from_index(session, still: Dict[str, Source], private: Path, attempts: Attempts,
               index_urls: Optional[List[str]], sleep) -> Dict[str, Path]:
    """The files this package's sdists carry (the system profile's), from the package index the
    installer is configured with."""
    carried = {n: s for n, s in still.items() if s.in_sdists}
    attempts.note([n for n in still if n not in carried], "mod_wsgi-httpd sdists on the package index: they carry "
                  "only the system profile's tarballs, not this one")
    if not carried:
        return {}
    urls = network.index_urls() if index_urls is None else index_urls
    if not urls:
        attempts.note(carried, "package index: no http(s) index URL in pip's or uv's settings")
    return from_sdists(session, carried, private, attempts, urls, sleep)
