"""How the build reaches the network: the way pip does.

The build runs inside pip, so it trusts what pip trusts and goes where pip goes: pip's index URLs,
`cert`, `client-cert` and `proxy` settings (from PIP_* environment variables, then pip's
configuration files), REQUESTS_CA_BUNDLE / SSL_CERT_FILE when set, and otherwise the system trust
store (through `truststore` where the Python supports it, as pip does; else OpenSSL's default
paths, which are the system store on Linux). Verification is never turned off.

Every URL that reaches a message, a log or a report goes through `redact` first: index URLs may
carry `user:password@`.
"""

from __future__ import annotations

import functools
import os
import ssl
import subprocess
import sys
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit, urlunsplit

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


def _pip(*args: str) -> str:
    # pip's build isolation hides site-packages through PYTHONPATH; pip itself lives there.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONNOUSERSITE", "PYTHONHOME")}
    try:
        result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout if result.returncode == 0 else ""


@functools.lru_cache(maxsize=1)
def _pip_files() -> Tuple[Tuple[str, str], ...]:
    """(key, value) from pip's configuration files, in pip's order of precedence (lowest first).
    An installer without pip (uv's isolated builds) has no such files to offer: then ()."""
    found: Dict[Tuple[int, str], str] = {}
    for line in _pip("-m", "pip", "config", "list").splitlines():
        name, _, value = line.partition("=")
        section, _, key = name.partition(".")
        if section in SECTIONS and key in KEYS:
            found[(SECTIONS.index(section), key)] = value.strip().strip("'\"")
    return tuple((key, value) for (_, key), value in sorted(found.items()))


@functools.lru_cache(maxsize=1)
def _pip_default_index() -> Optional[str]:
    return _pip("-c", "from pip._internal.models.index import PyPI; print(PyPI.simple_url)").strip() or None


@dataclass(frozen=True)
class PipSettings:
    index_urls: Tuple[str, ...]
    cert: Optional[str]
    client_cert: Optional[str]
    proxy: Optional[str]


def pip_settings(environ: Mapping[str, str] = os.environ, files=None, default_index=None) -> PipSettings:
    """pip's settings as pip would see them: PIP_* variables over its configuration files."""
    values: Dict[str, str] = dict(_pip_files() if files is None else files)
    for key in KEYS:
        env = environ.get("PIP_" + key.upper().replace("-", "_"), "")
        if env:
            values[key] = env
    primary = values.get("index-url") or (default_index if files is not None else _pip_default_index())
    urls = ([primary] if primary else []) + values.get("extra-index-url", "").split()
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


def session(settings: Optional[PipSettings] = None, environ: Mapping[str, str] = os.environ):
    """A requests session that verifies with `trust(...)`, presents pip's client certificate and
    uses pip's proxy (else the environment's, as requests does). Returns (session, trust)."""
    import requests
    from requests.adapters import HTTPAdapter

    settings = settings or pip_settings(environ)
    chosen = trust(settings, environ)
    context = chosen.context()

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
    s.headers["User-Agent"] = "mod_wsgi-httpd-build (+requests)"
    # no compressed transfers: sizes are bounded as bytes arrive, and a small gzip body must not
    # unpack into a large one
    s.headers["Accept-Encoding"] = "identity"
    if settings.client_cert:
        s.cert = settings.client_cert
    s.trust = chosen
    return s


def is_certificate_error(error: BaseException) -> bool:
    text = f"{type(error).__name__} {error}"
    return "CERTIFICATE_VERIFY_FAILED" in text or "SSLCertVerificationError" in text


def index_urls(environ: Mapping[str, str] = os.environ) -> List[str]:
    return list(pip_settings(environ).index_urls)
