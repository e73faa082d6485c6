"""Issue 25: a complete Apache — the standard configuration tree, working as installed and wherever
it is moved: `apachectl start` serves httpd's own page on 8080 without root, the module-config
route serves WSGI apps and Django, every module loads, local configuration survives a reinstall."""

import os
import pwd
import re
import shutil
import socket
import subprocess
import time

import pytest
import requests

from .conftest import HELLO, make_venv, run, shared_dir, wait_until

PORT = 8080  # the shipped httpd.conf's, as Homebrew's
TREE_USER = "httpd-tree-test"
OTHER_MPMS = re.compile(r"^\s*#\s*LoadModule\s+mpm_")


def port_taken(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def port_8080():
    if port_taken(PORT):
        owner = run(["ss", "-Hltnp", f"sport = :{PORT}"], check=False).stdout.strip()
        pytest.skip(f"the shipped httpd.conf listens on {PORT}, which another process holds here: {owner}")
    yield PORT
    assert not port_taken(PORT), f"a test left a server on {PORT}"


@pytest.fixture(scope="module")
def user():
    """An ordinary user (the one running the tests when that is not root)."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    if subprocess.run(["id", "-u", TREE_USER], capture_output=True).returncode != 0:
        run(["useradd", "--user-group", "--system", "--no-create-home", "-s", "/bin/sh", TREE_USER])
    return TREE_USER


def as_user(user, argv, **kwargs):
    if os.geteuid() == 0:
        argv = ["runuser", "-u", user, "--", *argv]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
    return run(argv, env=env, **kwargs)


@pytest.fixture
def moved(venv, user, tmp_path):
    """The installed tree copied elsewhere (as a moved virtualenv or a Docker layer would carry it),
    owned by the ordinary user: returns its root."""
    base = shared_dir("mod_wsgi-httpd-tree-")
    tree = base / "moved" / "httpd"
    shutil.copytree(venv.prefix(), tree, symlinks=True)
    if os.geteuid() == 0:
        run(["chown", "-R", f"{user}:", base / "moved"])
    yield tree
    pidfile = tree / "logs" / "httpd.pid"
    if pidfile.exists():  # a failed test's server
        subprocess.run([tree / "bin" / "apachectl", "-k", "stop"], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


def start_with_local(moved, user, name, conf):
    """apachectl start as the ordinary user, with `conf` as conf/local/NAME.conf."""
    local = moved / "conf" / "local"
    local.mkdir(exist_ok=True)
    (local / f"{name}.conf").write_text(conf)
    if os.geteuid() == 0:
        run(["chown", "-R", f"{user}:", local])
    started = as_user(user, [moved / "bin" / "apachectl", "start"], check=False)
    assert started.returncode == 0, started.stdout + started.stderr


def get(path="/", timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return requests.get(f"http://127.0.0.1:{PORT}{path}", timeout=10)
        except requests.ConnectionError:
            assert time.monotonic() < deadline, f"nothing answers on {PORT}"
            time.sleep(0.2)


def logged(log, line, timeout=10):
    """Wait for `line` in `log`: httpd writes the access log after the response has gone out, so a
    client that reads the file at once can find it without the request's line."""
    def probe():
        assert line in log.read_text(), log.read_text()
    wait_until(probe, f"{line!r} in {log}", timeout, interval=0.1)
    return True


def stopped(pidfile, timeout=30):
    deadline = time.monotonic() + timeout
    while pidfile.exists() or port_taken(PORT):
        assert time.monotonic() < deadline, "apachectl stop did not stop the server"
        time.sleep(0.2)
    return True


def test_the_standard_tree_is_installed_and_names_no_build_path(venv):
    prefix = venv.prefix()
    for rel in ["conf/httpd.conf", "conf/magic", "conf/mime.types", "conf/extra/httpd-ssl.conf",
                "conf/extra/httpd-vhosts.conf", "conf/extra/httpd-info.conf", "conf/extra/proxy-html.conf",
                "conf/original/httpd.conf", "conf/original/extra/httpd-ssl.conf", "htdocs/index.html",
                "icons/apache_pb.png", "error/HTTP_NOT_FOUND.html.var", "cgi-bin/printenv"]:
        assert (prefix / rel).is_file(), rel
    assert (prefix / "logs").is_dir()
    assert not (prefix / "manual").exists() and not (prefix / "man").exists()
    conf = (prefix / "conf" / "httpd.conf").read_text()
    assert "\nListen 8080\n" in conf and 'DocumentRoot "${SRVROOT}/htdocs"' in conf
    for path in (prefix / "conf").rglob("*.conf"):
        assert "/mod_wsgi.httpd" not in path.read_text(), path


def test_the_loadmodule_lines_are_the_modules_built_the_default_set_active(venv):
    prefix = venv.prefix()
    lines = re.findall(r"^\s*(#?)LoadModule (\w+)_module modules/mod_(\w+)\.so$",
                       (prefix / "conf" / "httpd.conf").read_text(), re.M)
    assert sorted(name for _, _, name in lines) == sorted(p.name[4:-3] for p in (prefix / "modules").glob("mod_*.so"))
    active = [name for hash_, _, name in lines if not hash_]
    assert [n for n in active if n.startswith("mpm_")] == ["mpm_event"]
    # httpd's default set ("yes" in its config.m4s) on, the rest off, as httpd's own file has them
    assert {"authz_core", "unixd", "dir", "mime", "log_config", "alias", "headers"} <= set(active)
    assert not {"ssl", "proxy", "rewrite", "http2", "lua"} & set(active)
    names = [name for _, _, name in lines]
    assert names.index("proxy") < names.index("proxy_http") and names.index("watchdog") < names.index("heartbeat")


def test_httpd_accepts_its_configuration_with_every_module_but_the_other_mpms(venv, tmp_path):
    prefix = venv.prefix()
    text = "\n".join(line if OTHER_MPMS.match(line) else line.replace("#LoadModule", "LoadModule", 1)
                     for line in (prefix / "conf" / "httpd.conf").read_text().split("\n"))
    conf = tmp_path / "all.conf"
    conf.write_text(text)
    checked = run([prefix / "bin" / "httpd", "-t", "-f", conf], check=False)
    assert checked.returncode == 0 and "Syntax OK" in checked.stderr, checked.stderr
    loaded = set(re.findall(r"^ (\w+) \(shared\)$", run([prefix / "bin" / "httpd", "-M", "-f", conf]).stdout, re.M))
    listed = set(re.findall(r"^\s*LoadModule (\w+) ", text, re.M))  # not the prose's "# LoadModule foo_module"
    # under event: not the other MPMs, and not mod_cgi, which httpd.conf loads under prefork only
    assert loaded == listed - {"mpm_worker_module", "mpm_prefork_module", "cgi_module"}


def test_apachectl_serves_it_works_on_8080_as_an_ordinary_user_wherever_the_tree_is(port_8080, moved, user):
    ctl = moved / "bin" / "apachectl"
    started = as_user(user, [ctl, "start"], check=False)
    assert started.returncode == 0, started.stdout + started.stderr
    page = get("/")
    assert page.status_code == 200 and "<p>It works!</p>" in page.text  # httpd's own htdocs/index.html
    pidfile = moved / "logs" / "httpd.pid"
    pid = pidfile.read_text().strip()
    assert logged(moved / "logs" / "access_log", "GET / HTTP/1.1\" 200")
    assert as_user(user, [ctl, "-k", "graceful"], check=False).returncode == 0
    deadline = time.monotonic() + 20
    while "resuming normal operations" not in (moved / "logs" / "error_log").read_text().split("Graceful restart")[-1]:
        assert time.monotonic() < deadline, (moved / "logs" / "error_log").read_text()
        time.sleep(0.2)
    assert get("/").status_code == 200 and pidfile.read_text().strip() == pid  # the same parent, new children
    assert as_user(user, [ctl, "stop"], check=False).returncode == 0
    assert stopped(pidfile)


def test_as_root_the_workers_run_as_the_user_the_configuration_names(port_8080, moved):
    if os.geteuid() != 0:
        pytest.skip("runs as root only: this session is not root")
    run(["chown", "-R", "root:", moved])
    conf_user = re.search(r"^User (\S+)$", (moved / "conf" / "httpd.conf").read_text(), re.M).group(1)
    assert pwd.getpwnam(conf_user)  # a user the system has
    run([moved / "bin" / "apachectl", "start"])
    try:
        assert get("/").status_code == 200
        parent = (moved / "logs" / "httpd.pid").read_text().strip()
        users = set(run(["ps", "-o", "user=", "--ppid", parent]).stdout.split())
        assert users == {conf_user}, users
    finally:
        run([moved / "bin" / "apachectl", "stop"])
    assert stopped(moved / "logs" / "httpd.pid")


def test_an_unwritable_log_directory_is_said_and_logdir_sends_the_logs_elsewhere(port_8080, moved, user):
    if os.geteuid() != 0:
        pytest.skip("needs a tree owned by another user (root): this session is not root")
    run(["chown", "-R", "root:", moved])  # a root-owned environment in a Docker image run as another user
    ctl = moved / "bin" / "apachectl"
    failed = as_user(user, [ctl, "start"], check=False)
    assert failed.returncode != 0
    assert (f"apachectl: httpd keeps its logs, pid file and run-time files in {moved}/logs (LOGDIR in "
            f"conf/httpd.conf), which user {user} cannot write.") in failed.stderr
    assert 'apachectl -k start -C "Define LOGDIR /a/directory/you/own"' in failed.stderr
    logs = shared_dir("mod_wsgi-httpd-logs-")
    run(["chown", f"{user}:", logs])
    define = ["-C", f"Define LOGDIR {logs}"]
    started = as_user(user, [ctl, "-k", "start", *define], check=False)
    assert started.returncode == 0, started.stderr
    try:
        assert "It works!" in get("/").text
        assert (logs / "httpd.pid").is_file() and logged(logs / "access_log", "GET / HTTP/1.1\" 200")
    finally:
        as_user(user, [ctl, "-k", "stop", *define], check=False)
    assert stopped(logs / "httpd.pid")
    shutil.rmtree(logs)


DJANGO_SETTINGS = "\nALLOWED_HOSTS = ['127.0.0.1', 'localhost']\n"


def test_module_config_and_a_wsgiscriptalias_in_conf_local_serve_wsgi_and_django(port_8080, venv, moved, user):
    apps = shared_dir("mod_wsgi-httpd-apps-")
    (apps / "hello.wsgi").write_text(HELLO)
    run([venv.bin / "django-admin", "startproject", "mysite", apps])
    (apps / "mysite" / "settings.py").write_text((apps / "mysite" / "settings.py").read_text() + DJANGO_SETTINGS)
    run([venv.python, "manage.py", "migrate", "--noinput"], cwd=apps)
    run(["chmod", "-R", "a+rX", apps])
    module_config = run([venv.bin / "mod_wsgi-express", "module-config"]).stdout
    assert module_config.startswith("LoadModule wsgi_module ")
    start_with_local(moved, user, "wsgi", f"""{module_config}
WSGIDaemonProcess django python-path={apps} home={apps}
WSGIScriptAlias /hello {apps}/hello.wsgi
WSGIScriptAlias /django {apps}/mysite/wsgi.py process-group=django application-group=%{{GLOBAL}}
<Directory {apps}>
    Require all granted
</Directory>
""")
    ctl = moved / "bin" / "apachectl"
    try:
        hello = get("/hello")
        assert hello.status_code == 200 and hello.text == "Hello from mod_wsgi-httpd"
        admin = get("/django/admin/login/")
        assert admin.status_code == 200 and "Django administration" in admin.text, admin.text[-2000:]
        assert "It works!" in get("/").text
    finally:
        as_user(user, [ctl, "stop"], check=False)
    assert stopped(moved / "logs" / "httpd.pid")
    shutil.rmtree(apps)


SESSION_APP = """\
def application(environ, start_response):
    headers = [("Content-Type", "text/plain")]
    if environ["PATH_INFO"] == "/set":
        headers.append(("X-Replace-Session", "secret=forty-two"))
    start_response("200 OK", headers)
    return [environ.get("HTTP_SESSION", "").encode()]
"""


def test_encrypted_sessions_load_apr_utils_crypto_driver_from_the_moved_tree(port_8080, venv, moved, user):
    """mod_session_crypto encrypts through APR-util's OpenSSL driver (lib/apr-util-1/), which
    APR-util finds beside its own library wherever the tree is; a driver it cannot find stops
    httpd at start."""
    apps = shared_dir("mod_wsgi-httpd-apps-")
    (apps / "session.wsgi").write_text(SESSION_APP)
    run(["chmod", "-R", "a+rX", apps])
    start_with_local(moved, user, "session", f"""{run([venv.bin / "mod_wsgi-express", "module-config"]).stdout}
LoadModule session_module modules/mod_session.so
LoadModule session_cookie_module modules/mod_session_cookie.so
LoadModule session_crypto_module modules/mod_session_crypto.so
WSGIScriptAlias /session {apps}/session.wsgi
<Location /session>
    Session On
    SessionCookieName session path=/
    SessionCryptoPassphrase a-passphrase-for-the-test
    SessionHeader X-Replace-Session
    SessionEnv On
</Location>
<Directory {apps}>
    Require all granted
</Directory>
""")
    ctl = moved / "bin" / "apachectl"
    try:
        cookie = get("/session/set").cookies["session"]
        assert cookie and "forty-two" not in cookie  # encrypted
        back = requests.get(f"http://127.0.0.1:{PORT}/session/read", cookies={"session": cookie}, timeout=10)
        assert back.status_code == 200 and back.text == "secret=forty-two", back.text
        tampered = requests.get(f"http://127.0.0.1:{PORT}/session/read",
                                cookies={"session": cookie[:-4] + "AAAA"}, timeout=10)
        assert "forty-two" not in tampered.text
    finally:
        as_user(user, [ctl, "stop"], check=False)
    assert stopped(moved / "logs" / "httpd.pid")
    shutil.rmtree(apps)


def test_a_reinstall_replaces_the_package_files_and_keeps_conf_local(wheel, tmp_path):
    env = make_venv(tmp_path / "venv", pip="as-is")
    env.pip("install", "-q", wheel)
    prefix = env.prefix()
    (prefix / "conf" / "local").mkdir()
    (prefix / "conf" / "local" / "site.conf").write_text("# mine\n")
    (prefix / "conf" / "httpd.conf").write_text("# edited in place\n")
    env.pip("install", "-q", "--force-reinstall", "--no-deps", wheel)
    assert (prefix / "conf" / "local" / "site.conf").read_text() == "# mine\n"
    assert (prefix / "conf" / "httpd.conf").read_text() != "# edited in place\n"  # as the README says
    assert "IncludeOptional conf/local/*.conf" in (prefix / "conf" / "httpd.conf").read_text()
