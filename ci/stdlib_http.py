"""ci/check_updates.py on a bare Python, where requests is not installed: the standard library's HTTP
client behind the few calls the engine makes of a requests session, with the same trust, client
certificate and proxy (build_httpd/network.py decides those). The build itself always has requests
(a build requirement); this client is the update watch's alone."""

import os
import socket
import ssl
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from build_httpd import network  # noqa: E402
from build_httpd.network import HEADERS, PipSettings, Trust  # noqa: E402

engine_session = network.session


def session(settings=None, environ=os.environ):
    """The engine's session where requests is installed, else the standard library's."""
    try:
        return engine_session(settings, environ)
    except ImportError:
        settings = settings or network.pip_settings(environ)
        chosen = network.trust(settings, environ)
        return StdlibSession(chosen.context(), settings, chosen)


class _StdlibResponse:
    """What the build reads of a response, as requests names it."""

    def __init__(self, raw):
        self.raw, self.status_code = raw, raw.status

    def iter_content(self, size: int):
        while True:
            chunk = self.raw.read(size)
            if not chunk:
                return
            yield chunk

    @property
    def text(self) -> str:
        return self.raw.read().decode(self.raw.headers.get_content_charset() or "utf-8", "replace")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.raw.close()


class StdlibSession:
    """The standard library's HTTP client behind the few calls the build makes of a requests
    session (get, status_code, iter_content, text), with the same trust, client certificate and
    proxy."""

    def __init__(self, context: ssl.SSLContext, settings: PipSettings, chosen: Trust):
        import http.client
        import urllib.error
        import urllib.request
        if settings.client_cert:
            context.load_cert_chain(settings.client_cert)
        proxies = {"http": settings.proxy, "https": settings.proxy} if settings.proxy else None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler(proxies),
                                                   urllib.request.HTTPSHandler(context=context))
        self._request, self._http_error = urllib.request.Request, urllib.error.HTTPError
        self.trust = chosen
        self.errors = ((urllib.error.URLError, ConnectionError, socket.timeout),
                       (OSError, http.client.HTTPException))

    def get(self, url: str, stream: bool = False, timeout=None, allow_redirects: bool = True):
        # requests' (connect, read) timeout: the standard library has one for both
        seconds = max(timeout) if isinstance(timeout, tuple) else timeout
        try:
            raw = self._opener.open(self._request(url, headers=HEADERS), timeout=seconds)
        except self._http_error as e:  # a status is an answer, as with requests
            raw = e
        return _StdlibResponse(raw)
