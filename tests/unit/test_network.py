"""The build trusts what pip trusts and goes where pip goes, against real HTTPS servers on
127.0.0.1 with certificates made here by openssl; URLs with credentials never reach a message."""

import hashlib
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from build_httpd import network, sources, transfer
from build_httpd.errors import FetchError
from build_httpd.recipes import Source

from .httpserver import MisbehavingServer

PAYLOAD = os.urandom(50_000)
NAME = "thing-1.0.tar.gz"
SOURCE_FOR = lambda *urls: Source(NAME, tuple(urls), len(PAYLOAD), hashlib.sha256(PAYLOAD).hexdigest())  # noqa: E731
ROOT = Path(__file__).parents[2]
CLEAN_ENV = {}  # no PIP_*, REQUESTS_CA_BUNDLE or SSL_CERT_FILE: the system trust store


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A private CA (as a company's), a server certificate for 127.0.0.1 and a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=mod_wsgi-httpd test CA", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=d)
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    (d / "client-both.pem").write_text((d / "client.pem").read_text() + (d / "client.key").read_text())
    return d


def obtain(url, tmp_path, environ, files=(), index_urls=()):
    """obtain_sources with pip's settings as given (nothing read from this machine's pip)."""
    settings = network.pip_settings(environ, files=files, default_index=None)
    original = network.session
    network.session = lambda: original(settings, environ)
    try:
        return sources.obtain_sources([SOURCE_FOR(url)], tmp_path, sources.Places(index_urls=list(index_urls)),
                                      sleep=lambda s: None)
    finally:
        network.session = original


# -- redaction -----------------------------------------------------------------------------------

@pytest.mark.parametrize("url,shown", [
    ("https://alice:s3cret@index.example/simple/", "https://alice:****@index.example/simple/"),
    ("https://TOKEN123@index.example/simple/", "https://****@index.example/simple/"),
    ("https://index.example/simple/", "https://index.example/simple/"),
])
def test_redact(url, shown):
    assert network.redact(url) == shown


def test_credentials_in_an_index_url_never_reach_a_message(tmp_path, capsys):
    with MisbehavingServer() as server:
        server.routes.add("/simple/mod-wsgi-httpd/", ("status", 503))
        index = server.url.replace("http://", "http://alice:s3cret@") + "/simple"
        with pytest.raises(FetchError) as e:
            sources.obtain_sources([SOURCE_FOR(server.url.replace("http://", "http://bob:hunter2@") + "/f")], tmp_path,
                                   sources.Places(index_urls=[index]), sleep=lambda s: None)
    text = str(e.value) + capsys.readouterr().err
    assert "s3cret" not in text and "hunter2" not in text
    assert "alice:****@" in text and "bob:****@" in text
    assert server.routes.hits["/simple/mod-wsgi-httpd/"] == transfer.ATTEMPTS  # the index was really asked


# -- pip's settings ------------------------------------------------------------------------------

def test_pip_settings_environment_over_files():
    files = (("index-url", "https://files.example/simple"), ("cert", "/from/pip.conf"), ("proxy", "http://p:1"))
    s = network.pip_settings({"PIP_CERT": "/from/env.pem", "PIP_EXTRA_INDEX_URL": "file:///x https://extra/simple"},
                             files=files, default_index="https://default/simple")
    assert s.index_urls == ("https://files.example/simple", "https://extra/simple")
    assert s.cert == "/from/env.pem" and s.proxy == "http://p:1" and s.client_cert is None


def test_the_default_index_when_nothing_is_configured_and_pip_cannot_be_imported(tmp_path):
    """An isolated build environment (python -m build, uv build) has no pip: the index still comes
    from the configuration files, else it is the public default."""
    code = ("import sys; sys.modules['pip'] = None\n"
            "from build_httpd import network\n"
            "print(' '.join(network.index_urls(dict(HOME=sys.argv[1], XDG_CONFIG_DIRS=sys.argv[1], "
            "PIP_CONFIG_FILE=sys.argv[2]))))")
    nothing = subprocess.run([sys.executable, "-c", code, str(tmp_path), os.devnull], capture_output=True, text=True,
                             cwd=ROOT, check=True).stdout.split()
    assert nothing == [network.DEFAULT_INDEX]
    (tmp_path / "pip.conf").write_text("[global]\nindex-url = https://files.example/simple\n")
    configured = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(tmp_path / "pip.conf")],
                                capture_output=True, text=True, cwd=ROOT, check=True).stdout.split()
    assert configured == ["https://files.example/simple"]


def test_pip_configuration_files_are_read_in_pips_order(tmp_path):
    """Site-wide, then the user's, then the virtualenv's, then PIP_CONFIG_FILE (which, when it
    exists, hides the user's); a command's section over [global] wherever it is; /dev/null: none."""
    def conf(path, text):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    conf(tmp_path / "xdg" / "pip" / "pip.conf", "[global]\nindex-url = https://site/simple\n")
    conf(tmp_path / "home" / ".config" / "pip" / "pip.conf", "[install]\nindex-url = https://user/simple\n")
    conf(tmp_path / "venv" / "pip.conf", "[global]\nproxy = http://proxy:3128\nindex-url = https://venv/simple\ncert = /venv.pem\n")
    environ = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_DIRS": str(tmp_path / "xdg"),
               "VIRTUAL_ENV": str(tmp_path / "venv")}
    s = network.pip_settings(environ)
    assert s.index_urls[0] == "https://user/simple" and s.cert == "/venv.pem" and s.proxy == "http://proxy:3128"
    conf(tmp_path / "named.conf", "[global]\nindex-url = https://named/simple\n")
    s = network.pip_settings(dict(environ, PIP_CONFIG_FILE=str(tmp_path / "named.conf")))
    assert s.index_urls[0] == "https://named/simple"  # the user's [install] is not read then
    s = network.pip_settings(dict(environ, PIP_CONFIG_FILE=os.devnull), default_index="https://default/simple")
    assert s.index_urls == ("https://default/simple",) and s.cert is None and s.proxy is None


def test_the_list_of_pip_configuration_files_is_pips(tmp_path):
    """The exact files and order (pip's configuration.py): each XDG_CONFIG_DIRS entry, /etc; the
    legacy ~/.pip and XDG_CONFIG_HOME; the virtualenv's and this interpreter's prefix; PIP_CONFIG_FILE."""
    home, xdg, venv = tmp_path / "home", tmp_path / "config-home", tmp_path / "venv"
    environ = {"HOME": str(home), "XDG_CONFIG_DIRS": f"{tmp_path}/a::{tmp_path}/b", "XDG_CONFIG_HOME": str(xdg),
               "VIRTUAL_ENV": str(venv)}
    site = [tmp_path / "a" / "pip" / "pip.conf", tmp_path / "b" / "pip" / "pip.conf", Path("/etc/pip.conf")]
    user = [home / ".pip" / "pip.conf", xdg / "pip" / "pip.conf"]
    prefixes = [venv / "pip.conf", Path(sys.prefix) / "pip.conf"]
    assert network._pip_config_files(environ) == site + user + prefixes
    defaults = {"HOME": str(home)}
    assert network._pip_config_files(defaults) == [Path("/etc/xdg/pip/pip.conf"), Path("/etc/pip.conf"),
                                                   home / ".pip" / "pip.conf", home / ".config" / "pip" / "pip.conf",
                                                   Path(sys.prefix) / "pip.conf"]
    named = tmp_path / "named.conf"
    assert network._pip_config_files(dict(environ, PIP_CONFIG_FILE=str(named))) == site + user + prefixes + [named]
    named.write_text("")  # when it exists, the user's files are not read
    assert network._pip_config_files(dict(environ, PIP_CONFIG_FILE=str(named))) == site + prefixes + [named]
    assert network._pip_config_files(dict(environ, PIP_CONFIG_FILE=os.devnull)) == []


def test_uv_s_indexes_come_beside_pip_s(tmp_path):
    """uv's environment over its uv.toml; its default index beside pip's, and its other indexes
    (named ones too) among the extras."""
    (tmp_path / "uv").mkdir()
    (tmp_path / "uv" / "uv.toml").write_text(
        '[[index]]\nurl = "https://uv-default/simple"\ndefault = true\n\n'
        '[[index]]\nname = "private"\nurl = "https://uv-extra/simple"\n')
    environ = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path), "PIP_CONFIG_FILE": os.devnull}
    assert network.index_urls(environ) == ["https://uv-default/simple", "https://uv-extra/simple"]
    environ.update(UV_DEFAULT_INDEX="https://uv-env/simple", UV_INDEX="internal=https://named/simple",
                   PIP_INDEX_URL="https://pip/simple")
    assert network.index_urls(environ) == ["https://pip/simple", "https://uv-env/simple", "https://named/simple",
                                           "https://uv-extra/simple"]
    assert network.index_urls(dict(environ, UV_NO_CONFIG="1", UV_DEFAULT_INDEX="")) == [
        "https://pip/simple", "https://named/simple"]


def test_uv_s_config_file_its_older_spellings_and_its_system_file(tmp_path):
    """UV_CONFIG_FILE alone when set, with uv.toml's index-url and extra-index-url; else the user's
    file over the system's (XDG_CONFIG_DIRS); UV_INDEX_URL and UV_EXTRA_INDEX_URL, the older
    spellings; an [[index]] without a URL is passed over; a name ends at the first '=' and a URL
    without one keeps the '=' of its query."""
    named = tmp_path / "named.toml"
    named.write_text('index-url = "https://file/simple"\nextra-index-url = ["https://file-extra/simple"]\n\n'
                     '[[index]]\nname = "no-url"\n')
    (tmp_path / "user" / "uv").mkdir(parents=True)
    (tmp_path / "user" / "uv" / "uv.toml").write_text('index-url = "https://user/simple"\n')
    (tmp_path / "site" / "uv").mkdir(parents=True)
    (tmp_path / "site" / "uv" / "uv.toml").write_text(
        'index-url = "https://system/simple"\nextra-index-url = ["https://system-extra/simple"]\n')
    base = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "user"),
            "XDG_CONFIG_DIRS": str(tmp_path / "site")}
    assert network.uv_index_urls(dict(base, UV_CONFIG_FILE=str(named))) == (
        "https://file/simple", ["https://file-extra/simple"])
    assert network.uv_index_urls(base) == ("https://user/simple", ["https://system-extra/simple"])
    environ = dict(base, UV_NO_CONFIG="1", UV_INDEX_URL="https://old/simple",
                   UV_EXTRA_INDEX_URL="https://old-extra/simple",
                   UV_INDEX="mirror=https://m/simple?a=b https://plain/simple?c=d")
    assert network.uv_index_urls(environ) == (
        "https://old/simple", ["https://m/simple?a=b", "https://plain/simple?c=d", "https://old-extra/simple"])
    listed = tmp_path / "listed.toml"
    listed.write_text('index = ["https://not-a-table/simple"]\n')
    assert network.uv_index_urls({"UV_CONFIG_FILE": str(listed)}) == (None, [])


@pytest.mark.parametrize("environ,files,bundle,why", [
    ({"REQUESTS_CA_BUNDLE": "/r.pem", "SSL_CERT_FILE": "/s.pem"}, (("cert", "/pip.pem"),), "/pip.pem", "pip's"),
    ({"REQUESTS_CA_BUNDLE": "/r.pem", "SSL_CERT_FILE": "/s.pem"}, (), "/r.pem", "REQUESTS_CA_BUNDLE"),
    ({"SSL_CERT_FILE": "/s.pem"}, (), "/s.pem", "SSL_CERT_FILE"),
    ({}, (), None, "system trust store"),
])
def test_which_certificates_are_trusted(environ, files, bundle, why):
    chosen = network.trust(network.pip_settings(environ, files=files, default_index=None), environ)
    assert chosen.bundle == bundle and why in chosen.label


@pytest.mark.parametrize("environ,label", [
    ({"PIP_CERT": "/p.pem", "REQUESTS_CA_BUNDLE": "/r.pem"}, "the CA bundle /p.pem (pip's `cert` setting)"),
    ({"REQUESTS_CA_BUNDLE": "/r.pem", "SSL_CERT_FILE": "/s.pem"}, "the CA bundle /r.pem (REQUESTS_CA_BUNDLE)"),
    ({"SSL_CERT_FILE": "/s.pem"}, "the CA bundle /s.pem (SSL_CERT_FILE)"),
])
def test_the_trusted_bundle_is_named_whole_with_where_it_was_set(environ, label):
    assert network.trust(network.pip_settings(environ, files=(), default_index=None), environ).label == label


def test_the_system_trust_store_is_named_with_how_it_is_read(monkeypatch):
    """Through truststore when it imports; else OpenSSL's default file or directory, or 'none'."""
    settings = network.pip_settings({}, files=(), default_index=None)
    monkeypatch.setitem(sys.modules, "truststore", types.ModuleType("truststore"))
    assert network.trust(settings, {}).label == "the system trust store (through truststore)"
    monkeypatch.setitem(sys.modules, "truststore", None)  # import truststore raises ImportError
    for cafile, capath, shown in (("/f.pem", "/d", "/f.pem"), (None, "/d", "/d"), (None, None, "none")):
        paths = types.SimpleNamespace(cafile=cafile, capath=capath)
        monkeypatch.setattr(network.ssl, "get_default_verify_paths", lambda: paths)
        assert network.trust(settings, {}).label == f"the system trust store (OpenSSL's default paths: {shown})"
    assert network.Trust("the CA bundle /x.pem (SSL_CERT_FILE)", "/x.pem").advice() == (
        "HTTPS was verified against the CA bundle /x.pem (SSL_CERT_FILE). To trust another CA (a company proxy, "
        "a private index), point pip at its bundle: `pip config set global.cert /path/to/ca-bundle.pem` or "
        "PIP_CERT=/path/to/ca-bundle.pem (REQUESTS_CA_BUNDLE and SSL_CERT_FILE work too), or add the CA to the "
        "system trust store; verification is never turned off")


def test_the_session_merges_requests_settings_then_imposes_pip_s(monkeypatch):
    """requests' own merge of the call's settings stays (stream, cert, the call's proxies); the
    SSL context decides trust (verify is True, never requests' bundle lookup); pip's proxy serves
    both schemes; both schemes go through the adapter that carries the context."""
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    plain = network.session(network.pip_settings({}, files=(), default_index=None), {})
    merged = plain.merge_environment_settings("https://x.invalid/f", {"https": "http://call:1"}, False, "/ca.pem",
                                              "/client.pem")
    assert merged == {"proxies": {"https": "http://call:1"}, "stream": False, "verify": True, "cert": "/client.pem"}
    assert plain.headers["User-Agent"] == "mod_wsgi-httpd-build (+requests)"
    assert type(plain.get_adapter("http://x.invalid/")) is type(plain.get_adapter("https://x.invalid/"))
    assert type(plain.get_adapter("http://x.invalid/")).__module__ == network.__name__
    proxied = network.session(network.pip_settings({"PIP_PROXY": "http://pip:3"}, files=(), default_index=None), {})
    assert proxied.merge_environment_settings("https://x.invalid/f", {}, False, None, None)["proxies"] == {
        "http": "http://pip:3", "https": "http://pip:3"}


# -- real HTTPS ----------------------------------------------------------------------------------

def test_a_private_ca_is_not_trusted_by_default_and_the_message_says_what_to_do(pki, tmp_path):
    with MisbehavingServer(tls=(pki / "server.pem", pki / "server.key")) as server:
        server.routes.add("/f", ("body", PAYLOAD))
        with pytest.raises(FetchError) as e:
            obtain(server.url + "/f", tmp_path, CLEAN_ENV)
    text = str(e.value)
    assert "CERTIFICATE_VERIFY_FAILED" in text and "system trust store" in text
    assert "pip config set global.cert" in text and "never turned off" in text
    assert "/f" not in server.routes.hits  # no request was sent over an unverified connection
    assert not list((tmp_path / "sources").iterdir())


def test_an_untrusted_package_index_gets_the_same_advice(pki, tmp_path):
    with MisbehavingServer(tls=(pki / "server.pem", pki / "server.key")) as server:
        with pytest.raises(FetchError) as e:
            obtain("http://127.0.0.1:9/nothing-listens-here", tmp_path, CLEAN_ENV, index_urls=[server.url + "/simple"])
    text = str(e.value)
    assert "package index" in text and "CERTIFICATE_VERIFY_FAILED" in text
    assert "pip config set global.cert" in text  # the advice is about trust, whichever place failed
    assert not server.routes.hits


@pytest.mark.parametrize("how", ["PIP_CERT", "pip.conf cert", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"])
def test_the_ca_pip_is_told_about_is_trusted(pki, tmp_path, how):
    ca = str(pki / "ca.pem")
    environ, files = {}, ()
    if how == "pip.conf cert":
        files = (("cert", ca),)
    else:
        environ = {how: ca}
    with MisbehavingServer(tls=(pki / "server.pem", pki / "server.key")) as server:
        server.routes.add("/f", ("body", PAYLOAD))
        got = obtain(server.url + "/f", tmp_path, environ, files)
    assert got[NAME].read_bytes() == PAYLOAD
    assert server.routes.headers[-1].get("Accept-Encoding") == "identity"


def test_pips_client_certificate_is_presented(pki, tmp_path):
    tls = (pki / "server.pem", pki / "server.key")
    with MisbehavingServer(tls=tls, client_ca=pki / "ca.pem") as server:
        server.routes.add("/f", ("body", PAYLOAD))
        with pytest.raises(FetchError):  # without one, the server refuses the handshake
            obtain(server.url + "/f", tmp_path / "a", {"PIP_CERT": str(pki / "ca.pem")})
        got = obtain(server.url + "/f", tmp_path / "b",
                     {"PIP_CERT": str(pki / "ca.pem"), "PIP_CLIENT_CERT": str(pki / "client-both.pem")})
    assert got[NAME].read_bytes() == PAYLOAD


def test_pips_proxy_is_used(tmp_path):
    """A proxy on 127.0.0.1 that answers for a host no one can resolve."""
    with MisbehavingServer() as proxy:
        proxy.routes.add("http://sources.invalid/f", ("body", PAYLOAD))
        got = obtain("http://sources.invalid/f", tmp_path, {"PIP_PROXY": proxy.url})
    assert got[NAME].read_bytes() == PAYLOAD
    assert proxy.routes.hits == {"http://sources.invalid/f": 1}


def test_redact_text_hides_credentials_in_any_message():
    url = "https://alice:s3cret@index.example/simple/"
    text = network.redact_text(f"GET {url} failed; proxy said alice:s3cret@index.example refused", [url])
    assert "s3cret" not in text and text.count("alice:****@") == 2


def test_why_a_connection_failed_comes_from_the_errors_types_not_their_text():
    """requests wraps urllib3's errors, which wrap the socket's: the reason is found in the chain
    (ConnectionRefusedError, socket.gaierror), whatever the messages say."""
    import requests
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        with pytest.raises(requests.ConnectionError) as e:
            requests.get(f"http://127.0.0.1:{port}/", timeout=5)
    assert network.unreachable_reason(e.value) == "connection refused"
    with pytest.raises(requests.ConnectionError) as e:
        requests.get("http://no-such-host.invalid/", timeout=5)
    assert network.unreachable_reason(e.value) == "cannot resolve the host name"
    assert not network.is_certificate_error(e.value)
    # a message that merely mentions a reason is not that reason
    assert network.unreachable_reason(requests.ConnectionError("Connection refused")) is None
    assert not network.is_certificate_error(requests.ConnectionError("CERTIFICATE_VERIFY_FAILED"))


def test_the_standard_library_session_trusts_refuses_and_reads_as_requests_does(pki, tmp_path, monkeypatch):
    """Without requests (ci/check_updates.py on a bare Python): an untrusted certificate is the same
    error with the same advice, a trusted CA and pip's client certificate work, bytes arrive."""
    import builtins
    real_import = builtins.__import__

    def no_requests(name, *args, **kwargs):
        if name == "requests" or name.startswith("requests."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "ci"))
    import stdlib_http
    monkeypatch.setattr(builtins, "__import__", no_requests)
    with pytest.raises(ImportError):  # the engine's own session is requests'
        network.session(network.pip_settings({}, files=()), {})
    assert isinstance(stdlib_http.session(network.pip_settings({}, files=()), {}), stdlib_http.StdlibSession)
    monkeypatch.setattr(network, "session", stdlib_http.session)  # the fetches below go through it
    with MisbehavingServer(tls=(pki / "server.pem", pki / "server.key"), client_ca=pki / "ca.pem") as server:
        server.routes.add("/f", ("body", PAYLOAD))
        with pytest.raises(FetchError) as e:
            obtain(server.url + "/f", tmp_path / "a", CLEAN_ENV)
        assert "CERTIFICATE_VERIFY_FAILED" in str(e.value) and "pip config set global.cert" in str(e.value)
        got = obtain(server.url + "/f", tmp_path / "b",
                     {"PIP_CERT": str(pki / "ca.pem"), "PIP_CLIENT_CERT": str(pki / "client-both.pem")})
    assert got[NAME].read_bytes() == PAYLOAD
    assert server.routes.headers[-1].get("Accept-Encoding") == "identity"
