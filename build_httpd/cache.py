"""The build cache: a finished, relocatable prefix stored under the user cache dir, keyed by
everything that changes the result. Entries are written beside their final name and renamed into
place under a file lock, so a half-written entry is never seen; each carries a manifest of sha256s
that is checked before the entry is used."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Mapping, Tuple

from .console import say
from .recipes import PATCHES_DIR, RECIPES_DIR, Recipe
from .relocate import files

ENGINE_DIR = Path(__file__).resolve().parent
MANIFEST = "manifest.json"
KEY_FILE = "key.json"
LOCK_TIMEOUT = 3600  # seconds one install waits for another that builds the same key


def _digest_files(paths) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def key(recipes: Mapping[str, Recipe], settings, decisions, compiler: str) -> Tuple[str, Dict[str, str]]:
    env_flags = {v: os.environ.get(v, "") for v in ("CC", "CFLAGS", "CPPFLAGS", "LDFLAGS", "SOURCE_DATE_EPOCH")}
    parts = {
        "recipes": _digest_files(RECIPES_DIR.glob("*.toml")),
        "patches": _digest_files(PATCHES_DIR.glob("*.patch")),
        "engine": _digest_files(ENGINE_DIR.glob("*.py")),
        "settings": json.dumps(settings.describe(), sort_keys=True),
        "features": json.dumps({n: d.built for n, d in sorted(decisions.items())}),
        "compiler": compiler,
        "flags": json.dumps(env_flags, sort_keys=True),
        "platform": f"{platform.system()} {platform.machine()} {' '.join(platform.libc_ver())}",
    }
    blob = json.dumps(parts, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest(), parts


def _manifest(root: Path) -> Dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files(root)}


def fetch(cache_dir: Path, build_key: str, target: Path) -> bool:
    entry = cache_dir / "builds" / build_key
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    shutil.copytree(entry / "httpd", target, symlinks=True)
    if _manifest(target) != manifest:
        shutil.rmtree(target)
        say(f"build cache entry {entry} does not match its manifest; ignoring it and building afresh")
        return False
    return True


def why_miss(cache_dir: Path, parts: Mapping[str, str]) -> str:
    builds = cache_dir / "builds"
    previous = sorted(builds.glob("*/" + KEY_FILE), key=lambda p: p.stat().st_mtime) if builds.is_dir() else []
    if not previous:
        return "no earlier build in the cache"
    try:
        last = json.loads(previous[-1].read_text())
    except (OSError, ValueError):
        return "the newest cache entry is unreadable"
    changed = [name for name in parts if last.get(name) != parts[name]]
    return ("changed since the newest cached build: " + ", ".join(changed)) if changed else "entry unusable"


@contextmanager
def exclusive(cache_dir: Path, build_key: str):
    """Held while one install builds a key, so that concurrent installs of the same key wait for
    it and then take its result instead of all building at once. Yields False when the cache
    cannot be locked (read-only, say): the build then goes on alone."""
    from filelock import FileLock, Timeout
    builds = cache_dir / "builds"
    try:
        builds.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(builds / f"{build_key}.lock"), timeout=LOCK_TIMEOUT)
        lock.acquire(poll_interval=1.0)
    except (OSError, Timeout) as e:
        say(f"the build cache {builds} cannot be locked ({e}); building without it")
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def store(cache_dir: Path, build_key: str, parts: Mapping[str, str], prefix: Path) -> None:
    """Copy a finished prefix into the cache; call it inside exclusive()."""
    builds = cache_dir / "builds"
    entry = builds / build_key
    if (entry / MANIFEST).is_file():
        return
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{build_key[:16]}-", dir=builds))
        try:
            shutil.copytree(prefix, tmp / "httpd", symlinks=True)
            (tmp / KEY_FILE).write_text(json.dumps(parts, indent=1, sort_keys=True))
            # the manifest is written last: its presence marks a complete entry
            (tmp / MANIFEST).write_text(json.dumps(_manifest(tmp / "httpd"), sort_keys=True))
            if entry.exists():
                shutil.rmtree(entry)
            os.rename(tmp, entry)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    except OSError as e:
        say(f"could not store the build in the cache ({e}); the install goes on without it")
        return
    say(f"stored in the build cache: {entry}")
