"""`mod_wsgi-httpd cache dir|list|remove KEY|purge`: the build cache, in the spirit of `pip cache`.

The cache lives where the build put it: MOD_WSGI_HTTPD_CACHE, else the user cache directory
($XDG_CACHE_HOME/mod_wsgi-httpd or ~/.cache/mod_wsgi-httpd, as the build's platformdirs says on
Linux). builds/ holds finished prefixes by key, sources/ verified tarballs.
"""

import json
import os
import shutil
import time


def default_dir():
    if os.environ.get("MOD_WSGI_HTTPD_CACHE"):
        return os.path.expanduser(os.environ["MOD_WSGI_HTTPD_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "mod_wsgi-httpd")


def _size(path):
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                total += os.lstat(full).st_size
    return total


def _entries(cache):
    builds = os.path.join(cache, "builds")
    out = []
    for name in sorted(os.listdir(builds)) if os.path.isdir(builds) else ():
        path = os.path.join(builds, name)
        if name.startswith(".") or not os.path.isdir(path) or os.path.islink(path):
            continue
        try:
            with open(os.path.join(path, "key.json"), encoding="utf-8") as f:
                key = json.load(f)
            features = json.loads(key.get("features", "{}"))
            built = ",".join(n for n, v in features.items() if (v[0] if isinstance(v, list) else v)) or "-"
        except (OSError, ValueError):
            built = "(unreadable key.json)"
        out.append((name, os.stat(path).st_mtime, _size(path), built))
    return sorted(out, key=lambda e: e[1], reverse=True)


def _mb(n):
    return f"{n / 1e6:.1f} MB"


def run(action, cache, key=None, out=print):
    if action == "dir":
        out(cache)
        return 0
    if action == "list":
        entries = _entries(cache)
        if not entries:
            out(f"no builds in {cache}")
        for name, used, size, built in entries:
            out(f"{name[:16]}  last used {time.strftime('%Y-%m-%d %H:%M', time.localtime(used))}  "
                f"{_mb(size):>9}  features: {built}")
        sources = os.path.join(cache, "sources")
        if os.path.isdir(sources):
            out(f"sources: {len(os.listdir(sources))} files, {_mb(_size(sources))}")
        return 0
    if action == "remove":
        matches = [e[0] for e in _entries(cache) if e[0].startswith(key or "\0")]
        if not matches:
            out(f"no build in {cache} has a key starting with {key!r} (see: mod_wsgi-httpd cache list)")
            return 1
        for name in matches:
            shutil.rmtree(os.path.join(cache, "builds", name))
            lock = os.path.join(cache, "builds", name + ".lock")
            if os.path.lexists(lock):
                os.unlink(lock)
            out(f"removed {name[:16]}")
        return 0
    if action == "purge":
        freed = 0
        for part in ("builds", "sources", "tmp"):
            path = os.path.join(cache, part)
            if os.path.isdir(path) and not os.path.islink(path):
                freed += _size(path)
                shutil.rmtree(path)
        out(f"removed everything in {cache} ({_mb(freed)})")
        return 0
    raise ValueError(action)
