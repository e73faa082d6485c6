"""Moving bytes, and knowing they are the right ones: HTTP transfers with retries and limits, and
files written while they are hashed, used only when their size and sha256 match the recipe (a
verified file is renamed into place, so a reader sees either nothing or the whole of it). Where the
bytes are looked for is sources.py's; the package index's pages index.py's; Debian's archive
archive.py's."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, TypeVar

from . import network
from .console import progress, say
from .errors import VerificationError
from .recipes import Source

CHUNK = 1 << 16
TIMEOUT = (10, 30)  # connect, read (seconds without a byte)
ATTEMPTS = 3  # per URL; 4xx answers are not retried
BACKOFF = 1.0  # seconds, doubled after each failed attempt
T = TypeVar("T")


class TransferError(Exception):
    """A transfer that may succeed if tried again (reset, timeout, short body, 5xx)."""


class PermanentError(Exception):
    """A transfer that will not succeed if tried again from the same place (404, 403...)."""

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.status = status  # the HTTP status code, when the server answered


class UntrustedCertificate(PermanentError):
    """The server's TLS certificate is not trusted: the advice is about trust, not the place."""


class Attempts:
    """The one record of a search for source files: what every place answered for each file, and
    whether a server's certificate was refused (then the advice is about trust, not the place)."""

    def __init__(self, filenames: Iterable[str]):
        self.tried: Dict[str, List[str]] = {name: [] for name in filenames}
        self.untrusted = False

    def note(self, filenames: Iterable[str], answer: str) -> None:
        for name in filenames:
            self.tried[name].append(answer)

    def failed(self, filenames: Iterable[str], where: str, error: Exception) -> None:
        """A place that could not give the files: where it is, and the error it gave."""
        self.untrusted |= isinstance(error, UntrustedCertificate)
        self.note(filenames, f"{where}: {error}")


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


def stream_into(target_dir: Path, chunks: Iterable[bytes], source: Source, origin: str) -> Path:
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


def settle(tmp: Path, final: Path) -> Path:
    os.chmod(tmp, 0o644)
    os.replace(tmp, final)  # atomic: concurrent builds see either no file or a verified one
    return final


def connect_error(e, url: str) -> Exception:
    """A host that cannot be resolved, refuses connections or presents a certificate we do not
    trust will not answer differently on a retry; a timeout or a reset might."""
    if network.is_certificate_error(e):
        return UntrustedCertificate("the server's TLS certificate is not trusted (CERTIFICATE_VERIFY_FAILED)")
    why = network.unreachable_reason(e)
    if why:
        return PermanentError(why)
    return TransferError(f"{type(e).__name__}: {network.redact_text(str(e), [url])[:200]}")


def http_chunks(session, url: str, label: str, total: Optional[int], limit: int) -> Iterable[bytes]:
    """The body of `url`, chunk by chunk; more than `limit` bytes is an error, not a download."""
    connection_errors, transfer_errors = session.errors
    try:
        response = session.get(url, stream=True, timeout=TIMEOUT, allow_redirects=True)
    except connection_errors as e:
        raise connect_error(e, url) from e
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
    return b"".join(http_chunks(session, url, label, None, limit))


def with_retries(attempt: Callable[[], T], what: str, sleep: Callable[[float], None]) -> T:
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


def file_chunks(path: Path) -> Iterable[bytes]:
    with open(path, "rb") as f:
        yield from iter(lambda: f.read(CHUNK), b"")


def copy_verified(path: Path, source: Source, origin: str, private: Path) -> Path:
    """Copy `path` into the private directory while hashing it: the copy is what was verified."""
    try:
        tmp = stream_into(private, file_chunks(path), source, origin)
    except TransferError:  # a local file that ends early is not the release, not a network fault
        raise VerificationError(
            f"{source.filename} from {origin} is {path.stat().st_size} bytes, not the {source.size} the recipe says",
            "the file is truncated, or is not the release the recipe pins",
            f"delete {path} if it is a local copy, then install again") from None
    return settle(tmp, private / source.filename)
