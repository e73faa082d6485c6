"""Fetch and verify: a source file comes from the first place that has it, and is used only after
its size and sha256 match the recipe.

Places, in order: MOD_WSGI_HTTPD_SOURCES (a directory), the user cache, the recipe's URLs, and the
`upstream/` folder of a mod_wsgi-httpd sdist on the package index pip is configured to use.
Unverified bytes never reach the cache: they are written to a temporary file beside it, hashed as
they stream, and renamed into place only when they match.
"""

from __future__ import annotations

import hashlib
import html.parser
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Tuple, TypeVar
from urllib.parse import urljoin, urlsplit

from .console import progress, say
from .errors import FetchError, VerificationError
from .recipes import Source

CHUNK = 1 << 16
TIMEOUT = (10, 30)  # connect, read (seconds without a byte)
ATTEMPTS = 3  # per URL; 4xx answers are not retried
BACKOFF = 1.0  # seconds, doubled after each failed attempt
INDEX_PROJECT = "mod-wsgi-httpd"
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

def _session():
    import requests
    session = requests.Session()
    session.headers["User-Agent"] = "mod_wsgi-httpd-build (+requests)"
    return session


def _connect_error(e) -> Exception:
    """A host that cannot be resolved or refuses connections will not answer on a retry either;
    a timeout or a reset might."""
    text = str(e)
    for marker, what in (("NameResolutionError", "cannot resolve the host name"),
                         ("Name or service not known", "cannot resolve the host name"),
                         ("Temporary failure in name resolution", "cannot resolve the host name"),
                         ("Connection refused", "connection refused"),
                         ("Network is unreachable", "network unreachable")):
        if marker in text:
            return PermanentError(what)
    return TransferError(f"{type(e).__name__}: {text[:200]}")


def _http_chunks(session, url: str, label: str, total: Optional[int]) -> Iterable[bytes]:
    import requests
    try:
        response = session.get(url, stream=True, timeout=TIMEOUT, allow_redirects=True)
    except requests.ConnectionError as e:
        raise _connect_error(e) from e
    except requests.RequestException as e:
        raise TransferError(f"{type(e).__name__}: {str(e)[:200]}") from e
    with response:
        if 400 <= response.status_code < 500:
            raise PermanentError(f"HTTP {response.status_code}")
        if response.status_code >= 300:
            raise TransferError(f"HTTP {response.status_code}")
        bar = progress(total, label)
        try:
            for chunk in response.iter_content(CHUNK):
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


def _pip(*args: str) -> str:
    # pip's build isolation hides site-packages through PYTHONPATH; pip itself lives there.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONNOUSERSITE", "PYTHONHOME")}
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=60)
    return result.stdout if result.returncode == 0 else ""


def pip_index_urls(environ=os.environ) -> List[str]:
    """The index URLs pip is configured with: PIP_INDEX_URL / pip.conf / pip's own default."""
    primary: Optional[str] = environ.get("PIP_INDEX_URL") or None
    extras = environ.get("PIP_EXTRA_INDEX_URL", "").split()
    if primary is None or not extras:
        for line in _pip("-m", "pip", "config", "list").splitlines():
            key, _, value = line.partition("=")
            value = value.strip().strip("'\"")
            if key.endswith(".index-url") and primary is None:
                primary = value
            elif key.endswith(".extra-index-url") and not environ.get("PIP_EXTRA_INDEX_URL"):
                extras += value.split()
    if primary is None:
        primary = _pip("-c", "from pip._internal.models.index import PyPI; print(PyPI.simple_url)").strip() or None
    urls = [primary] if primary else []
    return [u for u in dict.fromkeys(urls + extras) if u.startswith(("https://", "http://"))]


def _version_key(version: str) -> Tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def index_sdists(session, index_url: str) -> List[Tuple[str, str, Optional[str]]]:
    """(filename, url, sha256 or None) of every mod_wsgi-httpd sdist on an index, newest first."""
    import requests
    page = index_url.rstrip("/") + f"/{INDEX_PROJECT}/"
    try:
        response = session.get(page, timeout=TIMEOUT, headers={"Accept": "text/html"})
    except requests.ConnectionError as e:
        raise _connect_error(e) from e
    except requests.RequestException as e:
        raise TransferError(f"{type(e).__name__}: {str(e)[:200]}") from e
    if response.status_code == 404:
        return []
    if response.status_code != 200:
        raise TransferError(f"HTTP {response.status_code} for {page}")
    parser = _Links()
    parser.feed(response.text)
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
    """Take the wanted files out of the upstream/ folder of sdists on the index."""
    got: Dict[str, Path] = {}
    for index_url in index_urls:
        try:
            sdists = _with_retries(lambda: index_sdists(session, index_url), f"index {index_url}", sleep)
        except (TransferError, PermanentError) as e:
            for name in wanted:
                tried[name].append(f"package index {index_url}: {e}")
            continue
        if not sdists:
            for name in wanted:
                tried[name].append(f"package index {index_url}: no mod_wsgi-httpd sdist there")
        for filename, url, digest in sdists[:4]:
            missing = {n: s for n, s in wanted.items() if n not in got}
            if not missing:
                return got
            with tempfile.TemporaryDirectory(dir=target_dir, prefix=".sdist-") as tmp:
                sdist = Path(tmp) / filename
                try:
                    _with_retries(lambda: _download_to(session, url, sdist), filename, sleep)
                except (TransferError, PermanentError) as e:
                    for name in missing:
                        tried[name].append(f"{url}: {e}")
                    continue
                if digest and sha256_of(sdist) != digest:
                    for name in missing:
                        tried[name].append(f"{url}: sha256 differs from the index's, not opened")
                    continue
                got.update(_extract_upstream(sdist, missing, target_dir, url, tried))
    return got


def _download_to(session, url: str, path: Path) -> Path:
    """A carrier sdist: checked against the index's hash by the caller; what it carries is checked
    against the recipes as it is extracted."""
    try:
        with open(path, "wb") as out:
            for chunk in _http_chunks(session, url, path.name, None):
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
                    except TransferError as e:
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

def _writable_dir(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-")
        probe.close()
        return True
    except OSError:
        return False


def obtain_sources(sources: Iterable[Source], sources_dir: Optional[Path], cache_dir: Path,
                   scratch_dir: Path, index_urls: Optional[List[str]] = None,
                   sleep: Callable[[float], None] = time.sleep,
                   bundled_dir: Optional[Path] = None) -> Dict[str, Path]:
    """A verified local path for every source file, keyed by filename. bundled_dir is the
    upstream/ folder of an sdist of this package, looked at right after MOD_WSGI_HTTPD_SOURCES."""
    sources = list(sources)
    found: Dict[str, Path] = {}
    tried: Dict[str, List[str]] = {s.filename: [] for s in sources}
    store = cache_dir / "sources"
    if not _writable_dir(store):
        say(f"the source cache {store} is not writable; downloading into the build directory instead")
        store = scratch_dir / "sources"
        store.mkdir(parents=True, exist_ok=True)

    for source in sources:
        name = source.filename
        if sources_dir is not None:
            candidate = sources_dir / name
            if candidate.is_file():
                verify(candidate, source, f"MOD_WSGI_HTTPD_SOURCES ({candidate})")
                found[name] = candidate
                say(f"{name}: verified in {sources_dir}")
                continue
            tried[name].append(f"{candidate}: not there")
        if bundled_dir is not None and (bundled_dir / name).is_file():
            verify(bundled_dir / name, source, f"this sdist ({bundled_dir / name})")
            found[name] = bundled_dir / name
            say(f"{name}: verified in this sdist's upstream/")
            continue
        cached = store / name
        if cached.is_file():
            verify(cached, source, f"the cache ({cached})")
            found[name] = cached
            say(f"{name}: verified in the cache")
            continue
        tried[name].append(f"{cached}: not cached yet")

    missing = [s for s in sources if s.filename not in found]
    if missing:
        session = _session()
        for source in missing:
            for url in source.urls:
                try:
                    chunks = lambda: _http_chunks(session, url, source.filename, source.size)  # noqa: E731
                    tmp = _with_retries(lambda: _stream_into(store, chunks(), source, url), source.filename, sleep)
                except (TransferError, PermanentError) as e:
                    tried[source.filename].append(f"{url}: {e}")
                    continue
                found[source.filename] = _settle(tmp, store / source.filename)
                say(f"{source.filename}: downloaded and verified from {url}")
                break
        still = {s.filename: s for s in missing if s.filename not in found}
        if still:
            urls = pip_index_urls() if index_urls is None else index_urls
            if not urls:
                for name in still:
                    tried[name].append("package index: pip reports no http(s) index URL")
            for name, tmp in _from_sdists(session, still, store, tried, urls, sleep).items():
                found[name] = _settle(tmp, store / name)
                say(f"{name}: verified from a mod_wsgi-httpd sdist on the package index")

    unresolved = [s.filename for s in sources if s.filename not in found]
    if unresolved:
        lines = "\n".join(f"  {name}:\n" + "\n".join(f"    - {t}" for t in tried[name]) for name in unresolved)
        raise FetchError(
            f"could not obtain a verified copy of {', '.join(unresolved)}",
            f"every place was tried:\n{lines}\n",
            "download the file(s) from the URL in recipes/ on a machine that can reach it and point "
            "MOD_WSGI_HTTPD_SOURCES at the directory holding them; they are verified before use")
    return found


def _settle(tmp: Path, final: Path) -> Path:
    os.chmod(tmp, 0o644)
    os.replace(tmp, final)  # atomic: concurrent builds see either no file or a verified one
    return final
