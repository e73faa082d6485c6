"""Issue 3: the workflows of mod_wsgi-express, with the real mod_wsgi, against real servers."""

import concurrent.futures
import gzip
import http.server
import os
import ssl
import subprocess
import textwrap
import threading
import time

import httpx
import pytest
import requests

from .conftest import Express, free_port, run, wait_until, worker_identity

APP = textwrap.dedent('''\
    import os, sys, time, traceback

    def application(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/pid":
            time.sleep(0.3)
            body = str(os.getpid()).encode()
        elif path == "/big":
            body = b"mod_wsgi-httpd compresses this line. " * 4000
        elif path == "/debug":
            body = repr(os.environ.get("MOD_WSGI_DEBUG_MODE")).encode()
        elif path == "/boom":
            try:
                raise RuntimeError("deliberate failure 4711")
            except RuntimeError:
                traceback.print_exc()  # the app's own traceback, to stderr
                raise
        else:
            body = ("app:" + path).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
''')


@pytest.fixture
def app(shared_tmp):
    path = shared_tmp / "app.wsgi"
    path.write_text(APP)
    return path


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 signed by it, and a client certificate."""
    d = tmp_path_factory.mktemp("certs")
    os.chmod(d, 0o755)

    def openssl(*args):
        run(["openssl", *args], cwd=d)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
            "-keyout", "ca.key", "-out", "ca.crt")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, ext in (("server", ["-extfile", "san.ext"]), ("client", [])):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-out", f"{name}.crt", *ext)
    for p in d.iterdir():
        os.chmod(p, 0o644)
    return d


def https_args(certs, port):
    return ["--https-port", str(port), "--server-name", "localhost",
            "--ssl-certificate-file", certs / "server.crt", "--ssl-certificate-key-file", certs / "server.key"]


def wait_https(url, proc, **kwargs):
    """mod_wsgi-express serves https only for --server-name (localhost here, as in the certificate)."""
    return wait_until(lambda: requests.get(url, timeout=10, **kwargs), url, alive=lambda: proc.poll() is None)


def test_module_application_type(venv, shared_tmp):
    (shared_tmp / "hellomod.py").write_text(APP)
    with Express(venv, shared_tmp, "--application-type", "module", "hellomod",
                 "--working-directory", shared_tmp) as s:
        assert s.get("/x").text == "app:/x"


def test_paste_application_type(venv, shared_tmp):
    (shared_tmp / "pasteapp.py").write_text(APP + "\ndef factory(global_config, **local):\n    return application\n")
    (shared_tmp / "app.ini").write_text("[app:main]\npaste.app_factory = pasteapp:factory\n")
    with Express(venv, shared_tmp, "--application-type", "paste", shared_tmp / "app.ini",
                 "--working-directory", shared_tmp, env={"PYTHONPATH": str(shared_tmp)}) as s:
        assert s.get("/p").text == "app:/p"


def test_static_application_type(venv, shared_tmp):
    site = shared_tmp / "site"
    site.mkdir()
    (site / "index.html").write_text("<p>static</p>")
    with Express(venv, shared_tmp, "--application-type", "static", site) as s:
        r = s.get("/index.html")
        assert r.status_code == 200 and r.text == "<p>static</p>" and r.headers["Content-Type"].startswith("text/html")


def test_url_alias_with_types_from_our_mime_types(venv, shared_tmp, app):
    assets = shared_tmp / "assets"
    assets.mkdir()
    (assets / "style.css").write_text("body{}")
    (assets / "pic.webp").write_bytes(b"RIFF0000WEBP")
    mime = venv.prefix() / "conf" / "mime.types"
    with Express(venv, shared_tmp, app, "--url-alias", "/static", assets, "--mime-types", mime) as s:
        assert s.get("/static/style.css").headers["Content-Type"].startswith("text/css")
        assert s.get("/static/pic.webp").headers["Content-Type"] == "image/webp"
        assert s.get("/other").text == "app:/other"


def test_document_root_overlays_the_app(venv, shared_tmp, app):
    docs = shared_tmp / "docs"
    docs.mkdir()
    (docs / "robots.txt").write_text("User-agent: *\n")
    with Express(venv, shared_tmp, app, "--document-root", docs) as s:
        assert s.get("/robots.txt").text == "User-agent: *\n"
        assert s.get("/elsewhere").text == "app:/elsewhere"


def test_https_with_a_self_signed_certificate(venv, shared_tmp, app, certs):
    port = free_port()
    with Express(venv, shared_tmp, app, *https_args(certs, port)) as s:
        s.get("/")
        r = wait_https(f"https://localhost:{port}/secure", s.proc, verify=str(certs / "ca.crt"))
        assert r.status_code == 200 and r.text == "app:/secure"


def test_client_certificates_are_required_where_asked(venv, shared_tmp, app, certs):
    port = free_port()
    with Express(venv, shared_tmp, app, *https_args(certs, port), "--ssl-ca-certificate-file", certs / "ca.crt",
                 "--ssl-verify-client", "/") as s:
        s.get("/")
        url = f"https://localhost:{port}/who"
        ok = wait_https(url, s.proc, verify=str(certs / "ca.crt"),
                        cert=(str(certs / "client.crt"), str(certs / "client.key")))
        assert ok.status_code == 200 and ok.text == "app:/who"
        try:
            refused = requests.get(url, verify=str(certs / "ca.crt"), timeout=10)
        except requests.exceptions.SSLError:
            pass  # refused during the handshake
        else:
            assert refused.status_code == 403


def test_http2_is_negotiated_over_tls(venv, shared_tmp, app, certs):
    port = free_port()
    with Express(venv, shared_tmp, app, *https_args(certs, port), "--http2") as s:
        s.get("/")
        wait_https(f"https://localhost:{port}/", s.proc, verify=str(certs / "ca.crt"))
        with httpx.Client(http2=True, verify=ssl.create_default_context(cafile=str(certs / "ca.crt"))) as client:
            r = client.get(f"https://localhost:{port}/h2")
        assert r.http_version == "HTTP/2" and r.text == "app:/h2"


def test_compressed_responses(venv, shared_tmp, app):
    with Express(venv, shared_tmp, app, "--compress-responses") as s:
        r = s.get("/big", headers={"Accept-Encoding": "gzip"}, stream=True)
        assert r.headers.get("Content-Encoding") == "gzip"
        raw = r.raw.read(decode_content=False)
        assert len(raw) < 20000 and gzip.decompress(raw).startswith(b"mod_wsgi-httpd compresses")


def test_cgi_scripts_run(venv, shared_tmp, app):
    docs = shared_tmp / "cgi"
    docs.mkdir()
    script = docs / "hello.cgi"
    script.write_text("#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\ncgi says %s' \"$REQUEST_METHOD\"\n")
    script.chmod(0o755)
    with Express(venv, shared_tmp, app, "--document-root", docs, "--with-cgi") as s:
        assert s.get("/hello.cgi").text == "cgi says GET"


def test_proxy_mount_point(venv, shared_tmp, app):
    class Backend(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"backend saw {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{backend.server_address[1]}/inner"
        with Express(venv, shared_tmp, app, "--proxy-mount-point", "/outer", url) as s:
            assert s.get("/outer/x").text == "backend saw /inner/x"
    finally:
        backend.shutdown()


@pytest.mark.parametrize("mpm", ["prefork", "worker", "event"])
def test_each_mpm_serves_and_reports_itself(venv, shared_tmp, app, mpm):
    with Express(venv, shared_tmp, app, "--server-mpm", mpm, "--server-status") as s:
        assert s.get("/m").text == "app:/m"
        status = s.get("/server-status?auto").text
        assert f"ServerMPM: {mpm}" in status


def test_several_processes_share_the_load(venv, shared_tmp, app):
    with Express(venv, shared_tmp, app, "--processes", "3", "--threads", "1") as s:
        s.get("/")
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            pids = set(pool.map(lambda _: s.get("/pid").text, range(18)))
        assert len(pids) >= 2, pids


def test_reload_on_changes(venv, shared_tmp):
    module = shared_tmp / "reloaded.py"
    module.write_text("VALUE = 'first'\n")
    app = shared_tmp / "reload.wsgi"
    app.write_text("import sys\nsys.path.insert(0, %r)\nimport reloaded\n"
                   "def application(e, sr):\n    sr('200 OK', [('Content-Type', 'text/plain')])\n"
                   "    return [reloaded.VALUE.encode()]\n" % str(shared_tmp))
    with Express(venv, shared_tmp, app, "--reload-on-changes") as s:
        assert s.get("/").text == "first"
        time.sleep(1.1)
        module.write_text("VALUE = 'second'\n")
        deadline = time.monotonic() + 30
        while s.get("/").text != "second":
            assert time.monotonic() < deadline, "the edit was not picked up"
            time.sleep(0.5)


def test_debug_mode_sets_its_variable(venv, shared_tmp, app):
    with Express(venv, shared_tmp, app, "--debug-mode") as s:
        assert s.get("/debug").text == "'true'"


def test_log_to_terminal_shows_the_traceback(venv, shared_tmp, app):
    with Express(venv, shared_tmp, app, "--log-to-terminal") as s:
        assert s.get("/boom").status_code == 500
        deadline = time.monotonic() + 10
        while "deliberate failure 4711" not in s.output() or "Traceback (most recent call last)" not in s.output():
            assert time.monotonic() < deadline, s.output()
            time.sleep(0.2)
        assert 'app.wsgi", line' in s.output()  # the frame that raised


def test_setup_server_writes_a_working_apachectl(venv, shared_tmp, app):
    port = free_port()
    root = shared_tmp / "setup-root"
    run([venv.bin / "mod_wsgi-express", "setup-server", app, "--host", "127.0.0.1", "--port", port,
         "--server-root", root, *worker_identity()])
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    run([root / "apachectl", "start"], env=env)
    try:
        answer = wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/a", timeout=5), "apachectl start", 30)
        assert answer.text == "app:/a"
    finally:
        run([root / "apachectl", "stop"], env=env)
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=2)
        except requests.ConnectionError:
            break
        assert time.monotonic() < deadline, "apachectl stop did not stop the server"
        time.sleep(0.3)


def test_django_runmodwsgi_serves_admin_and_its_css(venv, shared_tmp):
    project = shared_tmp / "project"
    project.mkdir()
    run([venv.bin / "django-admin", "startproject", "mysite", project])
    settings = project / "mysite" / "settings.py"
    text = settings.read_text().replace("INSTALLED_APPS = [", "INSTALLED_APPS = [\n    'mod_wsgi.server',")
    text += "\nSTATIC_ROOT = BASE_DIR / 'static'\nALLOWED_HOSTS = ['127.0.0.1', 'localhost']\n"
    settings.write_text(text)
    run([venv.python, "manage.py", "collectstatic", "--noinput"], cwd=project)
    run([venv.python, "manage.py", "migrate", "--noinput"], cwd=project)
    port = free_port()
    proc = subprocess.Popen([str(venv.python), "manage.py", "runmodwsgi", "--host", "127.0.0.1", "--port", str(port),
                             "--server-root", str(shared_tmp / "django-root"), *worker_identity()],
                            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        from .conftest import wait_for
        page = wait_for(f"http://127.0.0.1:{port}/admin/login/", proc)
        assert page.status_code == 200 and "Django administration" in page.text
        css = requests.get(f"http://127.0.0.1:{port}/static/admin/css/base.css", timeout=10)
        assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(20)
