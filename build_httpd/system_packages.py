"""Which package of the system's package manager a file belongs to, named the way vulnerability
scanners match it: a package URL of type deb, rpm or apk with the distribution's own version of
the source package (a Debian-patched OpenSSL is not the upstream release of the same number)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import quote

from . import debian

OS_RELEASE = Path("/etc/os-release")


@dataclass(frozen=True)
class SystemPackage:
    type: str  # deb, rpm, apk
    distro: str  # os-release ID: debian, ubuntu, rocky, alpine, …
    distro_version: str  # os-release VERSION_ID
    name: str  # the source package (Debian's "source", RPM's source RPM, Alpine's origin)
    version: str  # the distribution's version, revision included
    arch: str

    @property
    def purl(self) -> str:
        qualifiers = f"arch={self.arch}" + (f"&distro={self.distro}-{self.distro_version}" if self.distro_version else "")
        return f"pkg:{self.type}/{self.distro}/{self.name}@{quote(self.version, safe=':~')}?{qualifiers}"

    @property
    def upstream_version(self) -> str:
        """The upstream release the distribution's version packages: no epoch, no revision."""
        if self.type == "apk":
            return re.sub(r"-r\d+$", "", self.version)
        # Debian's rules (epoch, revision, repack markers, "really"), which RPM's epoch:version-release
        # follows too
        return debian.upstream_version(self.version)


def os_release() -> Dict[str, str]:
    try:
        text = OS_RELEASE.read_text()
    except OSError:
        return {}
    return {k: v.strip().strip('"') for k, _, v in (line.partition("=") for line in text.splitlines()) if v}


def _ask(argv: List[str]) -> Optional[str]:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _deb(path: str, release: Dict[str, str]) -> Optional[SystemPackage]:
    # "libssl-dev:amd64: /usr/include/openssl/ssl.h"; a diversion line starts with "diversion by"
    owners = _ask(["dpkg-query", "-S", path])
    if owners is None:
        return None
    owner = next((line.split(": ", 1)[0].split(", ")[0] for line in owners.splitlines()
                  if ": " in line and not line.startswith("diversion")), None)
    fields = owner and _ask(["dpkg-query", "-W", "-f", "${source:Package}\t${source:Version}\t${Architecture}", owner])
    if not fields or fields.count("\t") != 2:
        return None
    name, version, arch = fields.split("\t")
    return SystemPackage("deb", release.get("ID", "debian"), release.get("VERSION_ID", ""), name, version, arch)


def _rpm(path: str, release: Dict[str, str]) -> Optional[SystemPackage]:
    fields = _ask(["rpm", "-qf", "--qf", "%{SOURCERPM}\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\t%{ARCH}\n", path])
    if not fields or fields.count("\t") != 2:
        return None
    source, version, arch = fields.splitlines()[0].split("\t")
    name = source[:-len(".src.rpm")].rsplit("-", 2)[0] if source.endswith(".src.rpm") else source
    version = version[2:] if version.startswith("0:") else version
    return SystemPackage("rpm", release.get("ID", ""), release.get("VERSION_ID", ""), name, version, arch)


def _apk(path: str, release: Dict[str, str]) -> Optional[SystemPackage]:
    # "/usr/include/openssl/ssl.h is owned by openssl-dev-3.3.2-r1"
    owned = _ask(["apk", "info", "--who-owns", path])
    m = owned and re.search(r" is owned by (\S+)-(\d\S*-r\d+)$", owned.strip())
    if not m:
        return None
    origin = _ask(["apk", "info", "--origin", f"{m.group(1)}"]) or ""
    lines = [line for line in origin.splitlines() if line and not line.endswith(":")]
    arch = (_ask(["apk", "--print-arch"]) or "").strip()
    return SystemPackage("apk", release.get("ID", "alpine"), release.get("VERSION_ID", ""),
                         lines[0].strip() if lines else m.group(1), m.group(2), arch)


MANAGERS = {"dpkg-query": _deb, "rpm": _rpm, "apk": _apk}


def _names_of(path: str) -> List[str]:
    """The names a package database may know a file by: as given, with its symbolic links
    resolved, and each with and without /usr on a merged-/usr system (Debian registers libz.so.1
    as /lib/…, the compiler finds it as /usr/lib/…)."""
    names = []
    for name in (path, os.path.realpath(path)):
        names.append(name)
        if name.startswith("/usr/lib/"):
            names.append(name[len("/usr"):])
        elif name.startswith("/lib/"):
            names.append("/usr" + name)
    return list(dict.fromkeys(names))


def owner(path: str) -> Optional[SystemPackage]:
    """The installed package `path` belongs to, by the first package manager this machine has that
    knows it; None for a file no package owns (a library built by hand, a -C ssl-dir=…)."""
    if not path:
        return None
    release = os_release()
    for tool, ask in MANAGERS.items():
        if any(os.access(os.path.join(d, tool), os.X_OK) for d in os.environ.get("PATH", "/usr/bin:/bin").split(":")):
            for candidate in _names_of(path):
                found = ask(candidate, release)
                if found:
                    return found
    return None
