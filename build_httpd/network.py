"""How the build reaches the network: the way pip does.

The build runs inside an installer (pip, uv, build), so it trusts what the installer trusts and
goes where it goes: pip's index URLs, `cert`, `client-cert` and `proxy` settings (from PIP_*
environment variables, then pip's configuration files, read here without pip: uv's and build's
isolated environments have none), uv's indexes (UV_DEFAULT_INDEX, UV_INDEX_URL, UV_INDEX,
UV_EXTRA_INDEX_URL, uv.toml), else the public default index; REQUESTS_CA_BUNDLE / SSL_CERT_FILE
when set, and otherwise the system trust store (through `truststore` where the Python supports it,
as pip does; else OpenSSL's default paths, which are the system store on Linux). Verification is
never turned off.

Every URL that reaches a message, a log or a report goes through `redact` first: index URLs may
carry `user:password@`.
"""

from __future__ import annotations

import configparser
import errno
import os
import socket
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit, urlunsplit

try:
    import tomllib
except ImportError:  # Python < 3.11: the build requirement tomli
    import tomli as tomllib

# pip's configuration keys the build honours, and the PIP_* variables that set them.
KEYS = ("index-url", "extra-index-url", "cert", "client-cert", "proxy")
# Sections pip reads for `pip install` / `pip wheel`, the later overriding the earlier.
SECTIONS = ("global", "install", "wheel", "download")


def redact(url: str) -> str:
    """The URL with any password replaced by ****, as pip shows it."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None and "@" not in parts.netloc:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    # a token alone (https://TOKEN@host/) is a secret too
    shown = f"{name}:****" if ":" in user else "****"
    return urlunsplit(parts._replace(netloc=f"{shown}@{host}"))


def redact_text(text: str, urls) -> str:
    """`text` (an exception's message, say) with every URL of `urls` that carries credentials, and
    those credentials wherever else they appear, shown redacted."""
    for url in urls:
        if not url or redact(url) == url:
            continue
        text = text.replace(url, redact(url))
        userinfo = urlsplit(url).netloc.rpartition("@")[0]
        shown = redact(url)[len(urlsplit(url).scheme) + 3:].split("@")[0]
        text = text.replace(userinfo + "@", shown + "@")
    return text


# pip's and uv's default: the public index, when neither is told another one.
DEFAULT_INDEX = "https://pypi.org/simple/"


def _config_dirs(environ: Mapping[str, str], default: str) -> Tuple[List[Path], Path]:
    """(the site-wide XDG configuration directories, the user's configuration directory)."""
    home = Path(environ.get("HOME", "~")).expanduser()
    return ([Path(d) for d in environ.get("XDG_CONFIG_DIRS", default).split(":") if d],
            Path(environ.get("XDG_CONFIG_HOME") or home / ".config"))


def _pip_config_files(environ: Mapping[str, str]) -> List[Path]:
    """pip's configuration files in pip's order, the later overriding the earlier: site-wide
    (XDG_CONFIG_DIRS, /etc), the user's (~/.pip, XDG_CONFIG_HOME), the virtualenv's, then
    PIP_CONFIG_FILE; that one set to /dev/null means none, and when it exists the user's are
    skipped (pip's own rules, read without importing pip: an isolated build may not have it)."""
    named = environ.get("PIP_CONFIG_FILE")
    if named == os.devnull:
        return []
    site_dirs, user_dir = _config_dirs(environ, "/etc/xdg")
    files = [d / "pip" / "pip.conf" for d in site_dirs] + [Path("/etc/pip.conf")]
    if not (named and Path(named).exists()):
        legacy = Path(environ.get("HOME", "~")).expanduser() / ".pip" / "pip.conf"
        files += [legacy, user_dir / "pip" / "pip.conf"]
    files += [Path(p) / "pip.conf" for p in dict.fromkeys([environ.get("VIRTUAL_ENV", ""), sys.prefix]) if p]
    return files + ([Path(named)] if named else [])


def pip_file_values(environ: Mapping[str, str] = os.environ) -> Tuple[Tuple[str, str], ...]:
    """(key, value) from pip's configuration files, lowest precedence first."""
    parsed = []
    for path in _pip_config_files(environ):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            continue  # pip itself stops on a broken file; the build's install would have stopped first
        parsed.append(parser)
    # as pip orders them: a command's section in any file over [global] in any file
    return tuple((k, v.strip()) for section in SECTIONS for parser in parsed if parser.has_section(section)
                 for k, v in parser.items(section) if k in KEYS)


def _uv_config(environ: Mapping[str, str]) -> dict:
    """uv's settings from uv.toml: UV_CONFIG_FILE alone when set, else the system's and the
    user's, the user's winning (UV_NO_CONFIG: none)."""
    if environ.get("UV_NO_CONFIG"):
        return {}
    if environ.get("UV_CONFIG_FILE"):
        paths = [Path(environ["UV_CONFIG_FILE"])]
    else:
        site_dirs, user_dir = _config_dirs(environ, "")
        system = next((p for p in [d / "uv" / "uv.toml" for d in site_dirs] if p.is_file()), Path("/etc/uv/uv.toml"))
        paths = [system, user_dir / "uv" / "uv.toml"]
    merged: dict = {}
    for path in paths:
        try:
            merged.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
    return merged


def uv_index_urls(environ: Mapping[str, str] = os.environ) -> Tuple[Optional[str], List[str]]:
    """(uv's default index when one is set, uv's other indexes): UV_DEFAULT_INDEX, UV_INDEX_URL,
    UV_INDEX, UV_EXTRA_INDEX_URL over uv.toml's index-url, extra-index-url and [[index]]."""
    config = _uv_config(environ)
    tables = [t for t in config.get("index", []) if isinstance(t, dict) and t.get("url")]
    default = (environ.get("UV_DEFAULT_INDEX") or environ.get("UV_INDEX_URL") or
               next((t["url"] for t in tables if t.get("default")), None) or config.get("index-url"))
    named = [entry.split("=", 1)[-1] if "=" in entry.split("://")[0] else entry
             for entry in environ.get("UV_INDEX", "").split()]
    extras = named + environ.get("UV_EXTRA_INDEX_URL", "").split()
    extras += [t["url"] for t in tables if not t.get("default")] + list(config.get("extra-index-url", []))
    return default, extras


@dataclass(frozen=True)
class PipSettings:
    index_urls: Tuple[str, ...]
    cert: Optional[str]
    client_cert: Optional[str]
    proxy: Optional[str]


def pip_settings(environ: Mapping[str, str] = os.environ, files=None, default_index=DEFAULT_INDEX) -> PipSettings:
    """The installer's settings as it would see them: pip's PIP_* variables over its configuration
    files (`files`: those files' values, else read here), and uv's indexes beside pip's. The
    default index only when neither names one."""
    values: Dict[str, str] = dict(pip_file_values(environ) if files is None else files)
    for key in KEYS:
        env = environ.get("PIP_" + key.upper().replace("-", "_"), "")
        if env:
            values[key] = env
    uv_default, uv_extras = uv_index_urls(environ)
    primaries = [u for u in (values.get("index-url"), uv_default) if u] or ([default_index] if default_index else [])
    urls = primaries + values.get("extra-index-url", "").split() + uv_extras
    return PipSettings(
        index_urls=tuple(u for u in dict.fromkeys(urls) if u.startswith(("https://", "http://"))),
        cert=values.get("cert") or None, client_cert=values.get("client-cert") or None,
        proxy=values.get("proxy") or None)


@dataclass(frozen=True)
class Trust:
    """Which certificates HTTPS is verified against, and how a person would change that."""

    label: str  # e.g. "the CA bundle /etc/x.pem (pip's `cert` setting)"
    bundle: Optional[str]  # a CA file; None: the system trust store

    def context(self) -> ssl.SSLContext:
        if self.bundle:
            return ssl.create_default_context(cafile=self.bundle)
        try:
            import truststore
        except ImportError:  # Python 3.9, or an installer that left it out: OpenSSL's system paths
            return ssl.create_default_context()
        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)

    def advice(self) -> str:
        return (f"HTTPS was verified against {self.label}. To trust another CA (a company proxy, a private "
                "index), point pip at its bundle: `pip config set global.cert /path/to/ca-bundle.pem` or "
                "PIP_CERT=/path/to/ca-bundle.pem (REQUESTS_CA_BUNDLE and SSL_CERT_FILE work too), or add "
                "the CA to the system trust store; verification is never turned off")


def trust(settings: PipSettings, environ: Mapping[str, str] = os.environ) -> Trust:
    for bundle, why in ((settings.cert, "pip's `cert` setting"),
                        (environ.get("REQUESTS_CA_BUNDLE"), "REQUESTS_CA_BUNDLE"),
                        (environ.get("SSL_CERT_FILE"), "SSL_CERT_FILE")):
        if bundle:
            return Trust(f"the CA bundle {bundle} ({why})", bundle)
    try:
        import truststore  # noqa: F401
        how = "through truststore"
    except ImportError:
        paths = ssl.get_default_verify_paths()
        how = f"OpenSSL's default paths: {paths.cafile or paths.capath or 'none'}"
    return Trust(f"the system trust store ({how})", None)


HEADERS = {
    "User-Agent": "mod_wsgi-httpd-build",
    # no compressed transfers: sizes are bounded as bytes arrive, and a small gzip body must not
    # unpack into a large one
    "Accept-Encoding": "identity",
}


def session(settings: Optional[PipSettings] = None, environ: Mapping[str, str] = os.environ):
    """A session that verifies with `trust(...)`, presents pip's client certificate and uses pip's
    proxy (else the environment's), made with requests (a build requirement; ci/stdlib_http.py
    makes the same of the standard library for ci/check_updates.py on a bare Python). Its `trust` says
    which certificates it verifies with; `errors` which exceptions mean a failed connection and
    which a failed transfer."""
    settings = settings or pip_settings(environ)
    chosen = trust(settings, environ)
    context = chosen.context()
    import requests  # a build requirement; ci/check_updates.py on a bare Python has ci/stdlib_http.py
    return _requests_session(requests, context, settings, chosen)


def _requests_session(requests, context: ssl.SSLContext, settings: PipSettings, chosen: Trust):
    from requests.adapters import HTTPAdapter

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            kwargs["ssl_context"] = context
            return super().init_poolmanager(*args, **kwargs)

        def proxy_manager_for(self, *args, **kwargs):
            kwargs["ssl_context"] = context
            return super().proxy_manager_for(*args, **kwargs)

    class Session(requests.Session):
        def merge_environment_settings(self, url, proxies, stream, verify, cert):
            merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
            merged["verify"] = True  # the context above decides; not requests' own CA bundle lookup
            if settings.proxy:
                merged["proxies"] = {"http": settings.proxy, "https": settings.proxy}
            return merged

    s = Session()
    s.mount("https://", Adapter())
    s.mount("http://", Adapter())
    s.headers.update(HEADERS, **{"User-Agent": HEADERS["User-Agent"] + " (+requests)"})
    if settings.client_cert:
        s.cert = settings.client_cert
    s.trust = chosen
    s.errors = (requests.ConnectionError, requests.RequestException)
    return s


def causes(error: BaseException):
    """The error and every error behind it: requests wraps urllib3's, which wraps the socket's or
    ssl's (through __cause__, __context__, urllib3's `reason` and exceptions passed as arguments)."""
    seen, pending = set(), [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        behind = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending += [e for e in behind if isinstance(e, BaseException)]


def is_certificate_error(error: BaseException) -> bool:
    return any(isinstance(e, ssl.SSLCertVerificationError) for e in causes(error))


def unreachable_reason(error: BaseException) -> Optional[str]:
    """Why a connection can never succeed on a retry (the name does not resolve, nothing listens,
    no route), from the errors' types and errno; None when a retry might help."""
    for e in causes(error):
        if isinstance(e, socket.gaierror):
            return "cannot resolve the host name"
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, OSError) and e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "network unreachable"
    return None


def index_urls(environ: Mapping[str, str] = os.environ) -> List[str]:
    return list(pip_settings(environ).index_urls)
