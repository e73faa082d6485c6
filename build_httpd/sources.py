"""Fetch and verify: a source file comes from the first place that has it, and is used only after
its size and sha256 match the recipe.

Places, in order: MOD_WSGI_HTTPD_SOURCES (a directory), the sdist's own upstream/ folder, the user
cache, the recipe's URLs, and the `upstream/` folder of a mod_wsgi-httpd sdist on the package index
pip is configured to use.

Verify, then use the same bytes: whatever the place, the file is copied into the build's private
directory while it is hashed, and only that copy is ever extracted; the place may change afterwards
without effect. Unverified bytes never reach the cache: a download is verified in the private
directory first and then copied into the cache beside its final name and renamed into place.
"""

from __future__ import annotations

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

from . import network
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


# -- verification ---------------------------------------------------------------------------------

def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, source: Source, origin: str) -> None:
    """Raise VerificationError unless `path` has exactly the recipe's size and sha256."""
    size = path.stat().st_size
    if size != source.size:
        raise VerificationError(
            f"{source.filename} from {origin} is {size} bytes, not the {source.size} the recipe says",
            "the file is truncated, or is not the release the recipe pins",
            f"delete {path} if it is a local copy, then install again")
    actual = sha256_of(path)
    if actual != source.sha256:
        raise VerificationError(
            f"{source.filename} from {origin} has sha256 {actual}, but the recipe expects {source.sha256}",
            "these are not the bytes of the pinned release (tampered with, or corrupted)",
            f"delete {path} if it is a local copy, and check where it came from; it was not used")


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
        return PermanentError("the server's TLS certificate is not trusted (CERTIFICATE_VERIFY_FAILED)")
    text = str(e)
    for marker, what in (("NameResolutionError", "cannot resolve the host name"),
                         ("Name or service not known", "cannot resolve the host name"),
                         ("Temporary failure in name resolution", "cannot resolve the host name"),
                         ("Connection refused", "connection refused"),
                         ("Network is unreachable", "network unreachable")):
        if marker in text:
            return PermanentError(what)
    return TransferError(f"{type(e).__name__}: {network.redact_text(text, [url])[:200]}")


def _http_chunks(session, url: str, label: str, total: Optional[int], limit: int) -> Iterable[bytes]:
    """The body of `url`, chunk by chunk; more than `limit` bytes is an error, not a download."""
    import requests
    try:
        response = session.get(url, stream=True, timeout=TIMEOUT, allow_redirects=True)
    except requests.ConnectionError as e:
        raise _connect_error(e, url) from e
    except requests.RequestException as e:
        raise TransferError(f"{type(e).__name__}: {network.redact_text(str(e), [url])[:200]}") from e
    with response:
        if 400 <= response.status_code < 500:
            raise PermanentError(f"HTTP {response.status_code}")
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
        except requests.RequestException as e:
            raise TransferError(f"interrupted after {bar.n} bytes ({type(e).__name__})") from e
        finally:
            bar.close()


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
        if str(e) == "HTTP 404":
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
                 index_urls: List[str], sleep) -> Dict[str, Path]:
    """Take the wanted files out of the upstream/ folder of sdists on the index: the newest first;
    one whose hash or members do not match is recorded and the next one tried."""
    got: Dict[str, Path] = {}
    for index_url in index_urls:
        shown_index = redact(index_url)
        try:
            sdists = _with_retries(lambda: index_sdists(session, index_url), f"index {shown_index}", sleep)
        except (TransferError, PermanentError) as e:
            for name in wanted:
                tried[name].append(f"package index {shown_index}: {e}")
            continue
        if not sdists:
            for name in wanted:
                tried[name].append(f"package index {shown_index}: no mod_wsgi-httpd sdist there")
        for filename, url, digest in sdists[:4]:
            missing = {n: s for n, s in wanted.items() if n not in got}
            if not missing:
                return got
            shown = redact(url)
            with tempfile.TemporaryDirectory(dir=target_dir, prefix=".sdist-") as tmp:
                sdist = Path(tmp) / filename
                try:
                    _with_retries(lambda: _download_to(session, url, sdist), filename, sleep)
                except (TransferError, PermanentError) as e:
                    for name in missing:
                        tried[name].append(f"{shown}: {e}")
                    continue
                if digest and sha256_of(sdist) != digest:
                    for name in missing:
                        tried[name].append(f"{shown}: sha256 differs from the index's, not opened")
                    continue
                got.update(_extract_upstream(sdist, missing, target_dir, shown, tried))
    return got


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
    except (tarfile.TarError, OSError, EOFError) as e:
        for name in wanted:
            if name not in got:
                tried[name].append(f"{origin}: not a readable sdist ({e})")
    for name in wanted:
        if name not in got and not any(origin in t for t in tried[name]):
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
                   bundled_dir: Optional[Path] = None) -> Dict[str, Path]:
    """A verified private copy of every source file, in scratch_dir/sources, keyed by filename.
    bundled_dir is the upstream/ folder of an sdist of this package. cache_dir is the source cache
    (None: no cache; the caller decides whether a cache can be trusted)."""
    sources = list(sources)
    private = scratch_dir / "sources"
    private.mkdir(parents=True, exist_ok=True)
    found: Dict[str, Path] = {}
    tried: Dict[str, List[str]] = {s.filename: [] for s in sources}

    for source in sources:
        name = source.filename
        if sources_dir is not None:
            candidate = sources_dir / name
            if candidate.is_file():
                found[name] = _copy_verified(candidate, source, f"MOD_WSGI_HTTPD_SOURCES ({candidate})", private)
                say(f"{name}: verified from {sources_dir}")
                continue
            tried[name].append(f"{candidate}: not there")
        if bundled_dir is not None and (bundled_dir / name).is_file():
            found[name] = _copy_verified(bundled_dir / name, source, f"this sdist ({bundled_dir / name})", private)
            say(f"{name}: verified from this sdist's upstream/")
            continue
        if cache_dir is None:
            continue
        cached = cache_dir / name
        if cached.is_file():
            try:
                found[name] = _copy_verified(cached, source, f"the cache ({cached})", private)
                say(f"{name}: verified from the cache")
                continue
            except (VerificationError, TransferError, OSError) as e:
                # a damaged cached copy is a miss: it is fetched again and replaced
                say(f"{name}: the cached copy is not usable ({e}); fetching it again")
                tried[name].append(f"{cached}: damaged, not used")
        else:
            tried[name].append(f"{cached}: not cached yet")

    missing = [s for s in sources if s.filename not in found]
    certificate_failed = False
    if missing:
        session = network.session()
        for source in missing:
            for url in source.urls:
                try:
                    chunks = lambda: _http_chunks(session, url, source.filename, source.size, 2 * source.size + CHUNK)  # noqa: E731
                    tmp = _with_retries(lambda: _stream_into(private, chunks(), source, url), source.filename, sleep)
                except VerificationError as e:
                    raise e
                except (TransferError, PermanentError) as e:
                    tried[source.filename].append(f"{redact(url)}: {e}")
                    continue
                except OSError as e:  # pragma: no cover - the private directory is ours
                    raise FetchError(f"could not write {source.filename} into {private}", str(e),
                                     "check the free space and permissions of the build directory") from e
                found[source.filename] = _settle(tmp, private / source.filename)
                say(f"{source.filename}: downloaded and verified from {redact(url)}")
                break
        still = {s.filename: s for s in missing if s.filename not in found}
        if still:
            urls = network.index_urls() if index_urls is None else index_urls
            if not urls:
                for name in still:
                    tried[name].append("package index: pip reports no http(s) index URL")
            for name, tmp in _from_sdists(session, still, private, tried, urls, sleep).items():
                found[name] = _settle(tmp, private / name)
                say(f"{name}: verified from a mod_wsgi-httpd sdist on the package index")
        certificate_failed = any("CERTIFICATE_VERIFY_FAILED" in t for n in tried for t in tried[n])
        if cache_dir is not None:
            for source in missing:
                if source.filename in found:
                    _remember(found[source.filename], cache_dir)

    unresolved = [s.filename for s in sources if s.filename not in found]
    if unresolved:
        lines = "\n".join(f"  {name}:\n" + "\n".join(f"    - {t}" for t in tried[name]) for name in unresolved)
        fix = ("download the file(s) from the URL in recipes/ on a machine that can reach it and point "
               "MOD_WSGI_HTTPD_SOURCES at the directory holding them; they are verified before use")
        if certificate_failed:
            fix = session.trust.advice() + "; or " + fix
        raise FetchError(f"could not obtain a verified copy of {', '.join(unresolved)}",
                         f"every place was tried:\n{lines}\n", fix)
    return found


def _remember(verified: Path, cache_dir: Path) -> None:
    """Copy a verified private file into the source cache: beside its final name, then renamed, so
    that the cache holds either nothing or the whole verified file."""
    try:
        cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{verified.name}.", suffix=".part", dir=cache_dir)
        os.close(fd)
        shutil.copyfile(verified, tmp)
        _settle(Path(tmp), cache_dir / verified.name)
    except OSError as e:
        if "tmp" in locals():
            Path(tmp).unlink(missing_ok=True)
        say(f"could not keep {verified.name} in the source cache {cache_dir} ({e.strerror}); the build goes on")


def _settle(tmp: Path, final: Path) -> Path:
    os.chmod(tmp, 0o644)
    os.replace(tmp, final)  # atomic: concurrent builds see either no file or a verified one
    return final
