"""The build cache: finished, relocatable prefixes (builds/KEY/) and verified source tarballs
(sources/) under the user cache dir.

The cache is input, not truth. It is used only while it, builds/, sources/ and each entry belong to
the effective user and nobody else can write them (as pip treats its own cache); otherwise it is
bypassed with one line saying which directory and why. Directories are created 0700. An entry holds
only regular files and directories (checked with lstat: a symlink is never followed), and its
manifest of sha256s and modes is a corruption check, not a proof: whoever can write the entry can
write the manifest too, which is why ownership is checked. A hit is copied out file by file against
the manifest and then goes through the same relocation checks as a fresh build.

Any problem with an entry is a miss with its reason; the rebuilt entry replaces the damaged one. The
cache is bounded: entries are kept by recency, up to MAX_ENTRIES and MAX_BYTES.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import platform
import shutil
import stat
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Tuple

from .console import say
from .recipes import PATCHES_DIR, RECIPES_DIR, Recipe
from .transfer import settle, sha256_of

ENGINE_DIR = Path(__file__).resolve().parent
MANIFEST = "manifest.json"
KEY_FILE = "key.json"
LOCK_TIMEOUT = 3600  # seconds one install waits for another that builds the same key
MAX_ENTRIES = 5
MAX_BYTES = 1 << 30


class Unusable(Exception):
    """A cache directory or entry that must not be used; str() says why."""


def _digest_files(paths) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def key(recipes: Mapping[str, Recipe], settings, decisions, compiler: str) -> Tuple[str, Dict[str, str]]:
    # every variable of the environment that reaches configure and changes what it builds
    env_flags = {v: os.environ.get(v, "") for v in ("CC", "CFLAGS", "CPPFLAGS", "LDFLAGS", "LIBS", "PKG_CONFIG_PATH",
                                                    "PKG_CONFIG_LIBDIR", "SOURCE_DATE_EPOCH")}
    parts = {
        "recipes": _digest_files(RECIPES_DIR.glob("*.toml")),
        "patches": _digest_files(PATCHES_DIR.glob("*.patch")),
        "engine": _digest_files(ENGINE_DIR.glob("*.py")),
        "settings": json.dumps(settings.describe(), sort_keys=True),
        # built or not, and the headers the compiler saw for each library: an OpenSSL upgrade on
        # this machine (or another -C ssl-dir=) is another key
        "features": json.dumps({n: [d.built, d.fingerprint] for n, d in sorted(decisions.items())}),
        "compiler": compiler,
        "flags": json.dumps(env_flags, sort_keys=True),
        "platform": f"{platform.system()} {platform.machine()} {' '.join(platform.libc_ver())}",
    }
    blob = json.dumps(parts, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest(), parts


# -- whose is it ----------------------------------------------------------------------------------

def check_private(path: Path) -> None:
    """Raise Unusable unless `path` is a real directory of the effective user that nobody else
    can write."""
    try:
        st = os.lstat(path)
    except OSError as e:
        raise Unusable(f"{path} cannot be read ({e.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise Unusable(f"{path} is a symbolic link")
    if not stat.S_ISDIR(st.st_mode):
        raise Unusable(f"{path} is not a directory")
    if st.st_uid != os.geteuid():
        raise Unusable(f"{path} belongs to uid {st.st_uid}, not to the user building (uid {os.geteuid()})")
    if st.st_mode & 0o022:
        raise Unusable(f"{path} can be written by {'group and others' if st.st_mode & 0o002 else 'its group'} "
                       f"(mode {stat.S_IMODE(st.st_mode):04o})")


def _private_dir(path: Path) -> Path:
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    except OSError as e:
        raise Unusable(f"{path} cannot be created ({e.strerror})") from None
    check_private(path)
    return path


def open_cache(cache_dir: Path) -> Tuple[Optional[Path], Optional[Path]]:
    """(builds/, sources/) of a cache that may be used, or (None, None) after saying why not."""
    try:
        for directory in (cache_dir, cache_dir / "builds", cache_dir / "sources"):
            _private_dir(directory)
    except Unusable as e:
        say(f"build cache bypassed: {e}; nothing is read from it or written to it. "
            f"Use a cache directory of your own (-C cache-dir=DIR / MOD_WSGI_HTTPD_CACHE)")
        return None, None
    return cache_dir / "builds", cache_dir / "sources"


# -- entries --------------------------------------------------------------------------------------

def scan(root: Path) -> Iterator[Tuple[str, os.stat_result]]:
    """(relative path, lstat) of everything below root, sorted; raises Unusable on anything that
    is not a regular file or a directory."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in dirnames + sorted(filenames):
            path = Path(dirpath) / name
            st = os.lstat(path)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
                raise Unusable(f"{path} is {kind}")
            yield str(path.relative_to(root)), st


def manifest_of(root: Path) -> Dict[str, List]:
    """{relative path: [sha256 or "dir", mode]} of a tree of regular files and directories."""
    out: Dict[str, List] = {}
    for rel, st in scan(root):
        kind = "dir" if stat.S_ISDIR(st.st_mode) else sha256_of(root / rel, follow_symlinks=False)
        out[rel] = [kind, stat.S_IMODE(st.st_mode)]
    return out


def _copy_out(entry: Path, manifest: Mapping[str, List], target: Path) -> None:
    """Copy an entry's httpd/ to target, checking every file against the manifest as it goes."""
    source = entry / "httpd"
    seen = {}
    for rel, st in scan(source):
        want = manifest.get(rel)
        if want is None:
            raise Unusable(f"{source / rel} is not in the manifest")
        if stat.S_ISDIR(st.st_mode):
            (target / rel).mkdir(parents=True, exist_ok=True)
        else:
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            if sha256_of(source / rel, copy_to=target / rel, follow_symlinks=False) != want[0]:
                raise Unusable(f"{source / rel} does not match the manifest")
        if stat.S_IMODE(st.st_mode) != want[1]:
            raise Unusable(f"{source / rel} has mode {stat.S_IMODE(st.st_mode):04o}, the manifest {want[1]:04o}")
        os.chmod(target / rel, want[1])
        seen[rel] = True
    missing = [rel for rel in manifest if rel not in seen]
    if missing:
        raise Unusable(f"{source} lacks {missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    os.chmod(target, 0o755)


def fetch(builds: Path, build_key: str, target: Path) -> Optional[str]:
    """Copy entry KEY to target; None on success, else why the entry was not used (a miss)."""
    entry = builds / build_key
    if not entry.exists():
        return "not in the cache"
    try:
        check_private(entry)
        check_private(entry / "httpd")
        try:
            manifest = json.loads((entry / MANIFEST).read_text())
        except (OSError, ValueError) as e:
            raise Unusable(f"its manifest cannot be read ({e})") from None
        target.mkdir(mode=0o755)
        _copy_out(entry, manifest, target)
    except (Unusable, OSError) as e:
        shutil.rmtree(target, ignore_errors=True)
        return f"the entry {entry} is damaged or not yours ({e})"
    os.utime(entry)  # recency, for eviction
    return None


def why_miss(builds: Path, parts: Mapping[str, str]) -> str:
    previous = sorted(builds.glob("*/" + KEY_FILE), key=lambda p: p.stat().st_mtime)
    if not previous:
        return "no earlier build in the cache"
    try:
        last = json.loads(previous[-1].read_text())
    except (OSError, ValueError):
        return "the newest cache entry is unreadable"
    changed = [name for name in parts if last.get(name) != parts[name]]
    return ("changed since the newest cached build: " + ", ".join(changed)) if changed else "entry unusable"


@contextmanager
def exclusive(builds: Path, build_key: str):
    """Held while one install builds a key, so that concurrent installs of the same key wait for
    it and then take its result instead of all building at once. The lock file lives in builds/,
    which only this user can write, and is opened without following links. Yields False when the
    lock cannot be taken (a read-only cache, say): the build then goes on alone."""
    path = builds / f"{build_key}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as e:
        say(f"the build cache {builds} cannot be locked ({e.strerror}); building without it")
        yield False
        return
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    say(f"another install held {path} for {LOCK_TIMEOUT} s; building without the cache")
                    yield False
                    return
                if not told:
                    say("another install is building the same thing; waiting for it to finish")
                    told = True
                time.sleep(1.0)
        yield True
    finally:
        os.close(fd)  # releases the lock


def store(builds: Path, build_key: str, parts: Mapping[str, str], prefix: Path) -> None:
    """Copy a finished prefix into the cache, replacing whatever entry KEY held; call it inside
    exclusive()."""
    entry = builds / build_key
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{build_key[:16]}-", dir=builds))
        shutil.copytree(prefix, tmp / "httpd", symlinks=True)
        manifest = manifest_of(tmp / "httpd")  # raises on anything but files and directories
        (tmp / KEY_FILE).write_text(json.dumps(parts, indent=1, sort_keys=True))
        (tmp / MANIFEST).write_text(json.dumps(manifest, sort_keys=True))
        if entry.exists() or entry.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".old-{build_key[:16]}-", dir=builds))
            os.rename(entry, old / "entry")
            shutil.rmtree(old, ignore_errors=True)
        os.rename(tmp, entry)
        tmp = None
    except (OSError, Unusable) as e:
        say(f"could not store the build in the cache ({e}); the install goes on without it")
        return
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    say(f"stored in the build cache: {entry}")
    evict(builds, keep=build_key)


def entries(builds: Path) -> List[Tuple[str, float, int]]:
    """(key, last used, bytes) of every entry, most recently used first."""
    out = []
    for entry in builds.iterdir() if builds.is_dir() else ():
        if entry.name.startswith(".") or not entry.is_dir() or entry.is_symlink():
            continue
        size = sum(p.stat().st_size for p in entry.rglob("*") if p.is_file() and not p.is_symlink())
        out.append((entry.name, entry.stat().st_mtime, size))
    return sorted(out, key=lambda e: e[1], reverse=True)


def evict(builds: Path, keep: str = "", max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> List[str]:
    """Remove the least recently used entries beyond the bounds; returns their keys."""
    removed, total = [], 0
    for number, (name, _, size) in enumerate(entries(builds)):
        total += size
        if name != keep and (number >= max_entries or total > max_bytes):
            shutil.rmtree(builds / name, ignore_errors=True)
            (builds / f"{name}.lock").unlink(missing_ok=True)
            removed.append(name)
    if removed:
        say(f"build cache: removed {len(removed)} least recently used entr{'y' if len(removed) == 1 else 'ies'}")
    return removed


def remember_source(verified: Path, cache_dir: Path) -> None:
    """Copy a verified private file into the source cache (cache_dir: its sources/ directory): beside its final name, then renamed, so
    that the cache holds either nothing or the whole verified file."""
    tmp: Optional[Path] = None
    try:
        cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{verified.name}.", suffix=".part", dir=cache_dir)
        os.close(fd)
        tmp = Path(name)
        shutil.copyfile(verified, tmp)
        settle(tmp, cache_dir / verified.name)
    except OSError as e:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        say(f"could not keep {verified.name} in the source cache {cache_dir} ({e.strerror}); the build goes on")
