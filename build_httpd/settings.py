"""Turns PEP 517 config settings (`pip install . -C ssl=required`) and MOD_WSGI_HTTPD_* environment
variables into one validated Settings value. A -C setting wins over the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Mapping, Optional

from .errors import SettingError
from .profile import PROFILES, TARGETS, Profile, Target, host_target, target_named

ENV_PREFIX = "MOD_WSGI_HTTPD_"
_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")
# Settings whose environment variable is not simply MOD_WSGI_HTTPD_<KEY> (None: only -C; the
# environment says MOD_WSGI_HTTPD_NO_CACHE=1 instead of cache=off).
_ENV_NAMES = {"cache-dir": "CACHE", "cache": None}
# Keys setuptools itself understands; passed through untouched.
SETUPTOOLS_KEYS = ("--build-option", "--global-option", "editable_mode", "--editable-mode")


@dataclass(frozen=True)
class Settings:
    jobs: int
    sources_dir: Optional[Path]
    cache_dir: Path
    use_build_cache: bool
    strip: bool
    features: Dict[str, str]  # feature name -> auto / required / off
    feature_dirs: Dict[str, Path] = field(default_factory=dict)
    keep_build: bool = False  # keep the build directory (sources, objects, logs) for debugging
    profile: Profile = PROFILES["system"]  # where the feature libraries come from (profile.py)
    target: Target = field(default_factory=host_target)  # the machine the binaries are for

    def describe(self) -> Dict[str, object]:
        described = {"features": dict(self.features),
                     "feature_dirs": {k: str(v) for k, v in self.feature_dirs.items()},
                     "strip": self.strip, "profile": self.profile.name}
        if self.target.foreign:  # a native build's key stays what it was
            described["target"] = self.target.name
        return described


def default_cache_dir() -> Path:
    import platformdirs
    return Path(platformdirs.user_cache_dir("mod_wsgi-httpd", appauthor=False))


def _describe_options(features, with_dirs) -> str:
    keys = ["profile=" + "|".join(PROFILES), "target=" + "|".join(TARGETS), "jobs=N", "sources=DIR", "cache-dir=DIR", "cache=on|off", "strip=on|off", "keep-build=on|off"]
    keys += [f"{f}=auto|required|off" for f in features] + [f"{f}-dir=DIR" for f in with_dirs]
    return ", ".join(keys)


def _bool(name: str, value: str) -> bool:
    low = value.strip().lower()
    if low in _ON:
        return True
    if low in _OFF:
        return False
    raise SettingError(f"{name} is {value!r}", "it is a yes/no setting",
                       f"use one of {', '.join(_ON)} or {', '.join(_OFF)}")


def load_settings(config_settings: Optional[Mapping[str, object]], features,
                  environ: Mapping[str, str] = os.environ, with_dirs=None) -> Settings:
    """`features` maps feature names to their allowed modes (from the recipes); `with_dirs` names
    the features whose library can be pointed at (-C ssl-dir=DIR): a feature that uses another's
    library (session-crypto uses ssl's) has none of its own. Default: every feature."""
    with_dirs = tuple(features) if with_dirs is None else tuple(with_dirs)
    config = {}
    for key, value in (config_settings or {}).items():
        if key in SETUPTOOLS_KEYS:
            continue
        if isinstance(value, list):  # `-C k=a -C k=b`: the last one wins, as pip documents
            value = value[-1]
        config[key.lower().replace("_", "-")] = str(value)

    known = {"profile", "target", "jobs", "sources", "cache-dir", "cache", "strip", "keep-build"}
    known |= set(features) | {f"{f}-dir" for f in with_dirs}
    unknown = sorted(set(config) - known)
    if unknown:
        raise SettingError(f"unknown config setting {', '.join('-C ' + k for k in unknown)}",
                           "mod_wsgi-httpd does not know it", "use one of: " + _describe_options(features, with_dirs))

    def get(key: str) -> Optional[tuple]:
        """(where it came from, value) for a setting, -C first, then the environment."""
        if key in config:
            return f"-C {key}", config[key]
        name = _ENV_NAMES.get(key, key.upper().replace("-", "_"))
        env = ENV_PREFIX + (name or "")
        if name and environ.get(env, "") != "":
            return env, environ[env]
        return None

    jobs = os.cpu_count() or 1
    if get("jobs"):
        where, value = get("jobs")
        if not value.strip().isdigit() or int(value) < 1:
            raise SettingError(f"{where} is {value!r}", "it is the number of parallel compile jobs",
                               f"use a whole number of 1 or more (this machine has {os.cpu_count()} CPUs)")
        jobs = int(value)

    sources_dir = None
    if get("sources"):
        where, value = get("sources")
        sources_dir = Path(value).expanduser()
        if not sources_dir.is_dir():
            raise SettingError(f"{where} is {value!r}, which is not a directory",
                               "it names a directory holding source tarballs",
                               "create it, correct the path, or unset it")

    cache_dir = Path(get("cache-dir")[1]).expanduser() if get("cache-dir") else default_cache_dir()
    use_build_cache = True
    if get("cache"):
        where, value = get("cache")
        use_build_cache = _bool(where, value)
    if environ.get(ENV_PREFIX + "NO_CACHE", "") != "" and "cache" not in config:
        use_build_cache = not _bool(ENV_PREFIX + "NO_CACHE", environ[ENV_PREFIX + "NO_CACHE"])
    strip = _bool(*get("strip")) if get("strip") else True
    keep_build = _bool(*get("keep-build")) if get("keep-build") else False

    profile = PROFILES["system"]
    if get("profile"):
        where, value = get("profile")
        if value.strip().lower() not in PROFILES:
            raise SettingError(f"{where} is {value!r}", "the build profiles are " + "; ".join(
                f"{p.name} ({p.summary})" for p in PROFILES.values()), "use " + " or ".join(
                f"profile={p}" for p in PROFILES))
        profile = PROFILES[value.strip().lower()]
    target = target_named(*get("target")) if get("target") else host_target()

    modes: Dict[str, str] = {}
    dirs: Dict[str, Path] = {}
    for name, allowed in features.items():
        got = get(name)
        mode = got[1].strip().lower() if got else ("required" if allowed == ("required",) else "auto")
        if mode not in allowed:
            raise SettingError(f"{got[0]} is {got[1]!r}", f"the {name} feature accepts {', '.join(allowed)}",
                               f"use {name}=" + "|".join(allowed))
        modes[name] = mode
        if name in with_dirs and get(f"{name}-dir"):
            where, value = get(f"{name}-dir")
            if profile.vendors:
                raise SettingError(f"{where} is set, and so is profile={profile.name}",
                                   f"the {profile.name} profile builds its own {name} library and never links "
                                   "one from a directory", f"drop {where}, or build with profile=system")
            dirs[name] = Path(value).expanduser().resolve()
    return Settings(jobs=jobs, sources_dir=sources_dir, cache_dir=cache_dir, use_build_cache=use_build_cache,
                    strip=strip, features=modes, feature_dirs=dirs, keep_build=keep_build,
                    profile=profile, target=target)
