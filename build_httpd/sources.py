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
"""

from __future__ import annotations

import contextlib
import hashlib
import html.parser
import os
import re
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Tuple, TypeVar
from urllib.parse import urljoin, urlsplit

from . import debian, network
from .console import progress, say
from .errors import FetchError, VerificationError
from .network import redact
from .recipes import Source

CHUNK = 1 << 16
TIMEOUT = (10, 30)  # connect, read (seconds without a byte)
ATTEMPTS = 3  # per URL; 4xx answers are not retried
BACKOFF = 1.0  # seconds, doubled after each failed attempt
INDEX_PROJECT = "mod-wsgi-httpd"
INDEX_PAGE_LIMIT = 16 << 20  # bytes: a project page on an index is far smaller
SDIST_LIMIT = 256 << 20  # bytes: an sdist of this package carries about 20 MB of tarballs
T = TypeVar("T")
_SDIST = re.compile(r"^mod[_-]wsgi[_-]httpd-(?P<version>[0-9][0-9.]*)\.tar\.gz$", re.I)


class TransferError(Exception):
    """A transfer that may succeed if tried again (reset, timeout, short body, 5xx)."""


class PermanentError(Exception):
    """A transfer that will not succeed if tried again from the same place (404, 403...)."""

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.status = status  # the HTTP status code, when the server answered


class UntrustedCertificate(PermanentError):
    """The server's TLS certificate is not trusted: the advice is about trust, not the place."""


# -- verification ---------------------------------------------------------------------------------

def sha256_of(path: Path, copy_to: Optional[Path] = None, follow_symlinks: bool = True) -> str:
    """The sha256 of a file, read once in chunks; with copy_to, the same bytes are written there
    as they are hashed. follow_symlinks=False refuses a link (ELOOP) instead of reading its target."""
    flags = 0 if follow_symlinks else os.O_NOFOLLOW
    digest = hashlib.sha256()
    with open(path, "rb", opener=lambda p, f: os.open(p, f | flags)) as src, \
            (open(copy_to, "wb") if copy_to is not None else contextlib.nullcontext()) as dst:
        for chunk in iter(lambda: src.read(CHUNK), b""):
            digest.update(chunk)
            if dst is not None:
                dst.write(chunk)
    return digest.hexdigest()


def _stream_into(target_dir: Path, chunks: Iterable[bytes], source: Source, origin: str) -> Path:
    """Write chunks to a temporary file in target_dir, checking size and hash as they arrive;
    return the temporary path (verified) or raise, leaving nothing behind."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{source.filename}.", suffix=".part", dir=target_dir)
    tmp = Path(tmp_name)
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > source.size:
                    raise VerificationError(
                        f"{source.filename} from {origin} is longer than the {source.size} bytes the recipe says",
                        "these are not the bytes of the pinned release", "check where it came from; it was not used")
                digest.update(chunk)
                out.write(chunk)
        if size < source.size:
            raise TransferError(f"got {size} of {source.size} bytes")
        if digest.hexdigest() != source.sha256:
            raise VerificationError(
                f"{source.filename} from {origin} has sha256 {digest.hexdigest()}, "
                f"but the recipe expects {source.sha256}",
                "these are not the bytes of the pinned release (tampered with, or corrupted)",
                "check where it came from; it was not used and nothing was cached")
        return tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# -- HTTP ---------------------------------------------------------------------------------------

def _connect_error(e, url: str) -> Exception:
    """A host that cannot be resolved, refuses connections or presents a certificate we do not
    trust will not answer differently on a retry; a timeout or a reset might."""
    if network.is_certificate_error(e):
        return UntrustedCertificate("the server's TLS certificate is not trusted (CERTIFICATE_VERIFY_FAILED)")
    why = network.unreachable_reason(e)
    if why:
        return PermanentError(why)
    return TransferError(f"{type(e).__name__}: {network.redact_text(str(e), [url])[:200]}")


def _http_chunks(session, url: str, label: str, total: Optional[int], limit: int) -> Iterable[bytes]:
    """The body of `url`, chunk by chunk; more than `limit` bytes is an error, not a download."""
    connection_errors, transfer_errors = session.errors
    try:
        response = session.get(url, stream=True, timeout=TIMEOUT, allow_redirects=True)
    except connection_errors as e:
        raise _connect_error(e, url) from e
    except transfer_errors as e:
        raise TransferError(f"{type(e).__name__}: {network.redact_text(str(e), [url])[:200]}") from e
    with response:
        if 400 <= response.status_code < 500:
            raise PermanentError(f"HTTP {response.status_code}", response.status_code)
        if response.status_code >= 300:
            raise TransferError(f"HTTP {response.status_code}")
        bar = progress(total, label)
        got = 0
        try:
            for chunk in response.iter_content(CHUNK):
                got += len(chunk)
                if got > limit:
                    raise PermanentError(f"more than {limit} bytes, more than such a file can be; not read further")
                bar.update(len(chunk))
                yield chunk
        except transfer_errors as e:
            raise TransferError(f"interrupted after {got} bytes ({type(e).__name__})") from e
        finally:
            bar.close()


def download(session, url: str, label: str, limit: int) -> bytes:
    """A small file's whole body (a signature, a Debian part): more than `limit` bytes is an error."""
    return b"".join(_http_chunks(session, url, label, None, limit))


def listed_as(entry: debian.Entry, source: Source) -> Optional[str]:
    """The name under which a Debian source index entry lists exactly these bytes (the recipe's
    Debian package, size and sha256), or None."""
    return entry.file(source.size, source.sha256) if entry.package == source.debian else None


def _with_retries(attempt: Callable[[], T], what: str, sleep: Callable[[float], None]) -> T:
    delay = BACKOFF
    for number in range(1, ATTEMPTS + 1):
        try:
            return attempt()
        except TransferError as e:
            if number == ATTEMPTS:
                raise
            say(f"{what}: {e}; trying again in {delay:.0f} s ({number}/{ATTEMPTS})")
            sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


# -- the package index --------------------------------------------------------------------------

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
        body = b"".join(_http_chunks(session, page, "index page", None, INDEX_PAGE_LIMIT))
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


def _from_sdists(session, wanted: Dict[str, Source], target_dir: Path, tried: Dict[str, List[str]],
                 index_urls: List[str], sleep) -> Tuple[Dict[str, Path], bool]:
    """Take the wanted files out of the upstream/ folder of sdists on the index: the newest first;
    one whose hash or members do not match is recorded and the next one tried. Returns them and
    whether a server's certificate was not trusted."""
    got: Dict[str, Path] = {}
    untrusted = False
    for index_url in index_urls:
        shown_index = redact(index_url)
        try:
            sdists = _with_retries(lambda: index_sdists(session, index_url), f"index {shown_index}", sleep)
        except (TransferError, PermanentError) as e:
            untrusted |= isinstance(e, UntrustedCertificate)
            for name in wanted:
                tried[name].append(f"package index {shown_index}: {e}")
            continue
        if not sdists:
            for name in wanted:
                tried[name].append(f"package index {shown_index}: no mod_wsgi-httpd sdist there")
        for filename, url, digest in sdists[:4]:
            missing = {n: s for n, s in wanted.items() if n not in got}
            if not missing:
                return got, untrusted
            shown = redact(url)
            with tempfile.TemporaryDirectory(dir=target_dir, prefix=".sdist-") as tmp:
                sdist = Path(tmp) / filename
                try:
                    _with_retries(lambda: _download_to(session, url, sdist), filename, sleep)
                except (TransferError, PermanentError) as e:
                    untrusted |= isinstance(e, UntrustedCertificate)
                    for name in missing:
                        tried[name].append(f"{shown}: {e}")
                    continue
                if digest and sha256_of(sdist) != digest:
                    for name in missing:
                        tried[name].append(f"{shown}: sha256 differs from the index's, not opened")
                    continue
                got.update(_extract_upstream(sdist, missing, target_dir, shown, tried))
    return got, untrusted


def _download_to(session, url: str, path: Path) -> Path:
    """A carrier sdist: checked against the index's hash by the caller; what it carries is checked
    against the recipes as it is extracted."""
    try:
        with open(path, "wb") as out:
            for chunk in _http_chunks(session, url, path.name, None, SDIST_LIMIT):
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _extract_upstream(sdist: Path, wanted: Dict[str, Source], target_dir: Path, origin: str,
                      tried: Dict[str, List[str]]) -> Dict[str, Path]:
    got: Dict[str, Path] = {}
    failed = set()  # the members found but not usable (already recorded in `tried`)
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            for member in tar:
                parts = member.name.split("/")
                if len(parts) >= 2 and parts[-2] == "upstream" and parts[-1] in wanted and member.isfile():
                    source = wanted[parts[-1]]
                    stream = tar.extractfile(member)
                    where = f"{origin} (upstream/{source.filename})"
                    try:
                        got[source.filename] = _stream_into(target_dir, iter(lambda: stream.read(CHUNK), b""),
                                                            source, where)
                    except (TransferError, VerificationError) as e:
                        # one bad carrier must not stop the install: the next sdist may be good
                        tried[source.filename].append(f"{where}: {e}")
                        failed.add(source.filename)
    except (tarfile.TarError, OSError, EOFError) as e:
        for name in wanted:
            if name not in got and name not in failed:
                tried[name].append(f"{origin}: not a readable sdist ({e})")
                failed.add(name)
    for name in wanted:
        if name not in got and name not in failed:
            tried[name].append(f"{origin}: does not carry upstream/{name}")
    return got


# -- resolution -------------------------------------------------------------------------------

def _file_chunks(path: Path) -> Iterable[bytes]:
    with open(path, "rb") as f:
        yield from iter(lambda: f.read(CHUNK), b"")


def _copy_verified(path: Path, source: Source, origin: str, private: Path) -> Path:
    """Copy `path` into the private directory while hashing it: the copy is what was verified."""
    try:
        tmp = _stream_into(private, _file_chunks(path), source, origin)
    except TransferError:  # a local file that ends early is not the release, not a network fault
        raise VerificationError(
            f"{source.filename} from {origin} is {path.stat().st_size} bytes, not the {source.size} the recipe says",
            "the file is truncated, or is not the release the recipe pins",
            f"delete {path} if it is a local copy, then install again") from None
    return _settle(tmp, private / source.filename)


def obtain_sources(sources: Iterable[Source], sources_dir: Optional[Path], cache_dir: Optional[Path],
                   scratch_dir: Path, index_urls: Optional[List[str]] = None,
                   sleep: Callable[[float], None] = time.sleep,
                   bundled_dir: Optional[Path] = None,
                   debian_archives: Optional[List[debian.Archive]] = None) -> Dict[str, Path]:
    """A verified private copy of every source file, in scratch_dir/sources, keyed by filename.
    bundled_dir is the upstream/ folder of an sdist of this package. cache_dir is the source cache
    (None: no cache; the caller decides whether a cache can be trusted). debian_archives: None reads
    them from apt's configuration; [] asks none. The places are asked in the README's order: the
    local ones, then the recipe's URLs, Debian's archive, the package index."""
    sources = list(sources)
    private = scratch_dir / "sources"
    private.mkdir(parents=True, exist_ok=True)
    tried: Dict[str, List[str]] = {s.filename: [] for s in sources}
    found: Dict[str, Path] = {}
    for source in sources:
        local = _from_local(source, sources_dir, bundled_dir, cache_dir, private, tried[source.filename])
        if local is not None:
            found[source.filename] = local
    missing = [s for s in sources if s.filename not in found]
    if not missing:
        return found
    session = network.session()
    untrusted = False

    def settle_all(got: Dict[str, Path], where: str) -> None:
        for name, tmp in got.items():
            found[name] = _settle(tmp, private / name)
            say(f"{name}: verified from {where}")

    for source in missing:
        tmp, url, distrust = _from_urls(session, source, private, tried[source.filename], sleep)
        untrusted |= distrust
        if tmp is not None:
            settle_all({source.filename: tmp}, f"a download from {redact(url)}")
    still = {s.filename: s for s in missing if s.filename not in found}
    if still:
        archives = debian.archives() if debian_archives is None else debian_archives
        got, distrust = _from_debian(session, still, private, tried, archives, sleep)
        untrusted |= distrust
        settle_all(got, "Debian's archive")
    still = {n: s for n, s in still.items() if n not in found}
    if still:
        got, distrust = _from_index(session, still, private, tried, index_urls, sleep)
        untrusted |= distrust
        settle_all(got, "a mod_wsgi-httpd sdist on the package index")
    if cache_dir is not None:
        for source in missing:
            if source.filename in found:
                _remember(found[source.filename], cache_dir)
    unresolved = [s for s in sources if s.filename not in found]
    if unresolved:
        raise _not_found(unresolved, tried, session.trust.advice() if untrusted else "")
    return found


def _from_local(source: Source, sources_dir: Optional[Path], bundled_dir: Optional[Path],
                cache_dir: Optional[Path], private: Path, tried: List[str]) -> Optional[Path]:
    """A verified copy from MOD_WSGI_HTTPD_SOURCES, this sdist's upstream/ or the cache, if one
    of them has it. A damaged cached copy is a miss: it is fetched again and replaced."""
    name = source.filename
    if sources_dir is not None:
        candidate = sources_dir / name
        if candidate.is_file():
            copy = _copy_verified(candidate, source, f"MOD_WSGI_HTTPD_SOURCES ({candidate})", private)
            say(f"{name}: verified from {sources_dir}")
            return copy
        tried.append(f"{candidate}: not there")
    if bundled_dir is not None and (bundled_dir / name).is_file():
        copy = _copy_verified(bundled_dir / name, source, f"this sdist ({bundled_dir / name})", private)
        say(f"{name}: verified from this sdist's upstream/")
        return copy
    if cache_dir is None:
        return None
    cached = cache_dir / name
    if not cached.is_file():
        tried.append(f"{cached}: not cached yet")
        return None
    try:
        copy = _copy_verified(cached, source, f"the cache ({cached})", private)
    except (VerificationError, TransferError, OSError) as e:
        say(f"{name}: the cached copy is not usable ({e}); fetching it again")
        tried.append(f"{cached}: damaged, not used")
        return None
    say(f"{name}: verified from the cache")
    return copy


def _from_urls(session, source: Source, private: Path, tried: List[str],
               sleep) -> Tuple[Optional[Path], str, bool]:
    """The recipe's URLs in order, until one gives the verified bytes: (the file or None, its URL,
    whether a server's certificate was not trusted)."""
    untrusted = False
    for url in source.urls:
        chunks = lambda: _http_chunks(session, url, source.filename, source.size, 2 * source.size + CHUNK)  # noqa: E731
        try:
            tmp = _with_retries(lambda: _stream_into(private, chunks(), source, url), source.filename, sleep)
        except (TransferError, PermanentError) as e:
            untrusted |= isinstance(e, UntrustedCertificate)
            tried.append(f"{redact(url)}: {e}")
            continue
        return tmp, url, untrusted
    return None, "", untrusted


def _from_index(session, still: Dict[str, Source], private: Path, tried: Dict[str, List[str]],
                index_urls: Optional[List[str]], sleep) -> Tuple[Dict[str, Path], bool]:
    """The files this package's sdists carry (the system profile's), from the package index the
    installer is configured with."""
    carried = {n: s for n, s in still.items() if s.in_sdists}
    for name in still:
        if name not in carried:
            tried[name].append("mod_wsgi-httpd sdists on the package index: they carry only the "
                               "system profile's tarballs, not this one")
    if not carried:
        return {}, False
    urls = network.index_urls() if index_urls is None else index_urls
    if not urls:
        for name in carried:
            tried[name].append("package index: no http(s) index URL in pip's or uv's settings")
    return _from_sdists(session, carried, private, tried, urls, sleep)


def _not_found(unresolved: List[Source], tried: Dict[str, List[str]], trust_advice: str) -> FetchError:
    """One message: each file, its size and sha256, and what every place answered."""
    lines = "\n".join(f"  {s.filename} ({s.size} bytes, sha256 {s.sha256}):\n"
                      + "\n".join(f"    - {t}" for t in tried[s.filename]) for s in unresolved)
    fix = ("download the file(s) on a machine that can reach one of these places (or take them from "
           "this release's sources archive, docs/releasing.md) and point MOD_WSGI_HTTPD_SOURCES "
           "(-C sources=DIR) at the directory holding them; they are verified before use")
    if trust_advice:
        fix = trust_advice + "; or " + fix
    return FetchError(f"could not obtain a verified copy of {', '.join(s.filename for s in unresolved)}",
                      f"every place was tried:\n{lines}\n", fix)


def _from_debian(session, wanted: Dict[str, Source], private: Path, tried: Dict[str, List[str]],
                 archives: List[debian.Archive], sleep) -> Tuple[Dict[str, Path], bool]:
    """The wanted files that Debian's source indexes list by their size and sha256, downloaded
    from the pool path the index gives and verified against the recipe. Returns them and whether
    a server's certificate was not trusted."""
    got: Dict[str, Path] = {}
    untrusted = False
    looking = {n: s for n, s in wanted.items() if s.debian}
    for name in wanted:
        if name not in looking:
            tried[name].append("Debian's archive: the recipe names no Debian source package")
    if not looking:
        return got, untrusted
    if not archives:
        for name in looking:
            tried[name].append("Debian's archive: this machine's apt configuration names none")
        return got, untrusted
    packages = {s.debian for s in looking.values()}
    read: List[str] = []
    failures: list = []
    for archive, suite, entries in _debian_suites(session, archives, packages, sleep, failures):
        read.append(suite)
        for name, source in list(looking.items()):
            for entry in entries:
                filename = listed_as(entry, source)
                if not filename:
                    continue
                url = archive.file_url(entry.directory, filename)
                where = f"{redact(url)} (Debian {suite}: {entry.package} {entry.version})"
                chunks = lambda: _http_chunks(session, url, source.filename, source.size, 2 * source.size + CHUNK)  # noqa: E731
                try:
                    got[name] = _with_retries(lambda: _stream_into(private, chunks(), source, where), name, sleep)
                except (TransferError, PermanentError, VerificationError) as e:
                    untrusted |= isinstance(e, UntrustedCertificate)
                    tried[name].append(f"{where}: {e}")
                    continue
                del looking[name]
                break
        if not looking:  # no further index is read
            return got, untrusted
    untrusted |= any(isinstance(e, UntrustedCertificate) for e in failures)
    unread = [f"{suite} ({e})" for suite, e in failures]
    shown = ", ".join(redact(a.uri) for a in archives)
    for name, source in looking.items():
        tried[name].append(f"Debian's archive ({shown}): no source index read ({', '.join(read) or 'none'}) "
                           f"lists a file of {source.debian} with this size and sha256"
                           + (f"; not readable: {'; '.join(unread)}" if unread else ""))
    return got, untrusted


def _debian_suites(session, archives: List[debian.Archive], packages, sleep, failures: list):
    """(archive, suite, stanzas of `packages`) for every suite the archives serve, in order; a suite
    that cannot be read is appended to `failures` as (suite, error) — one a mirror lacks (404) is
    not: not every mirror has every suite."""
    for archive in archives:
        for suite in archive.suites():
            try:
                found = _debian_index(session, archive, suite, packages, sleep)
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
    for archive, suite, found in _debian_suites(session, archives, packages, sleep, failures):
        read.append(suite)
        entries += [(archive, entry) for entry in found]
    return entries, read, {suite: str(e) for suite, e in failures}


def _debian_index(session, archive: debian.Archive, suite: str, packages, sleep) -> List[debian.Entry]:
    """The stanzas of `packages` in one suite's Sources index, in the first compression served."""
    last: Optional[PermanentError] = None
    for compression, _ in debian.COMPRESSIONS:
        url = archive.index_url(suite, compression)
        try:
            body = _with_retries(lambda: b"".join(_http_chunks(session, url, f"Debian {suite} sources index", None,
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


def _remember(verified: Path, cache_dir: Path) -> None:
    """Copy a verified private file into the source cache: beside its final name, then renamed, so
    that the cache holds either nothing or the whole verified file."""
    tmp: Optional[Path] = None
    try:
        cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{verified.name}.", suffix=".part", dir=cache_dir)
        os.close(fd)
        tmp = Path(name)
        shutil.copyfile(verified, tmp)
        _settle(tmp, cache_dir / verified.name)
    except OSError as e:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        say(f"could not keep {verified.name} in the source cache {cache_dir} ({e.strerror}); the build goes on")


def _settle(tmp: Path, final: Path) -> Path:
    os.chmod(tmp, 0o644)
    os.replace(tmp, final)  # atomic: concurrent builds see either no file or a verified one
    return final
