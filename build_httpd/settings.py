"""Turns PEP 517 config settings (`pip install . -C ssl=required`) and MOD_WSGI_HTTPD_* environment
variables into one validated Settings value. A -C setting wins over the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

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
    features: Dict[str, str]  # feature name -> auto / system / builtin / required / off
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
    keys += [f"{f}=" + "|".join(allowed) for f, allowed in features.items()] + [f"{f}-dir=DIR" for f in with_dirs]
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
    lookup = _Lookup(_config(config_settings), environ)
    known = {"profile", "target", "jobs", "sources", "cache-dir", "cache", "strip", "keep-build"}
    known |= set(features) | {f"{f}-dir" for f in with_dirs}
    unknown = sorted(set(lookup.config) - known)
    if unknown:
        raise SettingError(f"unknown config setting {', '.join('-C ' + k for k in unknown)}",
                           "mod_wsgi-httpd does not know it", "use one of: " + _describe_options(features, with_dirs))
    profile = _profile(lookup)
    modes, dirs = _features(lookup, features, with_dirs, profile)
    return Settings(jobs=_jobs(lookup), sources_dir=_sources_dir(lookup),
                    cache_dir=Path(lookup.get("cache-dir")[1]).expanduser() if lookup.get("cache-dir")
                    else default_cache_dir(),
                    use_build_cache=_use_build_cache(lookup), strip=lookup.flag("strip", True), features=modes,
                    feature_dirs=dirs, keep_build=lookup.flag("keep-build", False), profile=profile,
                    target=target_named(*lookup.get("target")) if lookup.get("target") else host_target())


def _config(config_settings: Optional[Mapping[str, object]]) -> Dict[str, str]:
    """Our -C settings, keys normalised (ssl_dir = ssl-dir); setuptools' own are left to it."""
    config = {}
    for key, value in (config_settings or {}).items():
        if key in SETUPTOOLS_KEYS:
            continue
        if isinstance(value, list):  # `-C k=a -C k=b`: the last one wins, as pip documents
            value = value[-1]
        config[key.lower().replace("_", "-")] = str(value)
    return config


@dataclass(frozen=True)
class _Lookup:
    config: Dict[str, str]
    environ: Mapping[str, str]

    def get(self, key: str) -> Optional[tuple]:
        """(where it came from, value) for a setting, -C first, then the environment."""
        if key in self.config:
            return f"-C {key}", self.config[key]
        name = _ENV_NAMES.get(key, key.upper().replace("-", "_"))
        env = ENV_PREFIX + (name or "")
        if name and self.environ.get(env, "") != "":
            return env, self.environ[env]
        return None

    def flag(self, key: str, default: bool) -> bool:
        return _bool(*self.get(key)) if self.get(key) else default


def _jobs(lookup: _Lookup) -> int:
    if not lookup.get("jobs"):
        return os.cpu_count() or 1
    where, value = lookup.get("jobs")
    if not value.strip().isdigit() or int(value) < 1:
        raise SettingError(f"{where} is {value!r}", "it is the number of parallel compile jobs",
                           f"use a whole number of 1 or more (this machine has {os.cpu_count()} CPUs)")
    return int(value)


def _sources_dir(lookup: _Lookup) -> Optional[Path]:
    if not lookup.get("sources"):
        return None
    where, value = lookup.get("sources")
    sources_dir = Path(value).expanduser()
    if not sources_dir.is_dir():
        raise SettingError(f"{where} is {value!r}, which is not a directory",
                           "it names a directory holding source tarballs",
                           "create it, correct the path, or unset it")
    return sources_dir


def _use_build_cache(lookup: _Lookup) -> bool:
    """cache=on/off, or MOD_WSGI_HTTPD_NO_CACHE when -C cache is not given."""
    no_cache = ENV_PREFIX + "NO_CACHE"
    if lookup.environ.get(no_cache, "") != "" and "cache" not in lookup.config:
        return not _bool(no_cache, lookup.environ[no_cache])
    return lookup.flag("cache", True)


def _profile(lookup: _Lookup) -> Profile:
    if not lookup.get("profile"):
        return PROFILES["system"]
    where, value = lookup.get("profile")
    if value.strip().lower() not in PROFILES:
        raise SettingError(f"{where} is {value!r}", "the build profiles are " + "; ".join(
            f"{p.name} ({p.summary})" for p in PROFILES.values()), "use " + " or ".join(
            f"profile={p}" for p in PROFILES))
    return PROFILES[value.strip().lower()]


def _features(lookup: _Lookup, features, with_dirs, profile: Profile) -> Tuple[Dict[str, str], Dict[str, Path]]:
    """Each feature's mode (auto/system/builtin/required/off), and the library directories given."""
    modes: Dict[str, str] = {}
    dirs: Dict[str, Path] = {}
    for name, allowed in features.items():
        got = lookup.get(name)
        mode = got[1].strip().lower() if got else ("required" if allowed == ("required",) else "auto")
        if mode not in allowed:
            raise SettingError(f"{got[0]} is {got[1]!r}", f"the {name} feature accepts {', '.join(allowed)}",
                               f"use {name}=" + "|".join(allowed))
        if mode == "system" and profile.vendors:
            raise SettingError(f"{got[0]} is {got[1]!r}, and the profile is {profile.name}",
                               f"the {profile.name} profile builds every library in and links none of the system's",
                               f"drop {got[0]}, or build with profile=system")
        modes[name] = mode
        if name in with_dirs and lookup.get(f"{name}-dir"):
            where, value = lookup.get(f"{name}-dir")
            if profile.vendors:
                raise SettingError(f"{where} is set, and so is profile={profile.name}",
                                   f"the {profile.name} profile builds its own {name} library and never links "
                                   "one from a directory", f"drop {where}, or build with profile=system")
            if mode == "builtin":
                raise SettingError(f"{where} is set, and {name} is builtin",
                                   f"{name}=builtin builds its library in from its recipe and never links one "
                                   "from a directory", f"drop {where}, or set {name}=auto (or system)")
            dirs[name] = Path(value).expanduser().resolve()
    return modes, dirs
