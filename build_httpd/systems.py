"""Which package provides a missing library or tool, in the words of the system the build runs
on: apt-get on Debian and Ubuntu, dnf on the RHEL family, apk on Alpine (recipes/systems/
packages.toml, /etc/os-release); every system's words when it is none of those."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Dict, Mapping, Optional

from .recipes import RECIPES_DIR, tomllib

PACKAGES_FILE = RECIPES_DIR / "systems" / "packages.toml"
OS_RELEASE = Path("/etc/os-release")


@functools.lru_cache(maxsize=None)
def _data(path: Path = PACKAGES_FILE) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def os_release_ids(path: Path = OS_RELEASE) -> tuple:
    """ID then ID_LIKE's words from os-release ("rocky", "rhel", "centos", "fedora")."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ()
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return tuple((fields.get("ID", "").strip('"\'') + " " + fields.get("ID_LIKE", "").strip('"\'')).split())


def this_system(os_release: Path = OS_RELEASE) -> Optional[str]:
    """The package manager key (debian, fedora, alpine) of the running system, if it is known."""
    ids = os_release_ids(os_release)
    managers = _data()["managers"]
    return next((key for i in ids for key, m in managers.items() if i in m["ids"]), None)


def how_to_install(packages: Mapping[str, str], system: Optional[str] = "") -> str:
    """The install command for `packages` (manager key → package names) on this system, or on
    every system the data knows when this one is not among them. system="" asks os-release."""
    managers: Dict[str, dict] = _data()["managers"]
    system = this_system() if system == "" else system
    if system in packages:
        return f"{managers[system]['install']} {packages[system]}"
    return "; ".join(f"{m['label']}: {m['install']} {packages[key]}" for key, m in managers.items() if key in packages)


def tool_packages(tool: str) -> Dict[str, str]:
    """manager key → package for a command the build runs (a compiler when unknown)."""
    tools = _data()["tools"]
    entry = next((t for t in tools.values() if Path(tool).name in t["names"]), tools["compiler"])
    return {k: v for k, v in entry.items() if k != "names"}
