"""Issue 2: the built httpd is complete, relocatable, and what a plain `pip install mod_wsgi` uses."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path


from .conftest import (HELLO, LOADED, MACHINE, RECIPES, ROOT, VERSION, V, Express, assert_sbom_names_every_linked_library,
                       free_port, run, serve_and_get, wait_for, worker_identity)
from build_httpd import elf  # noqa: E402  (the path conftest set)

APXS_QUESTIONS = ["INCLUDEDIR", "CPPFLAGS", "CFLAGS", "EXTRA_INCLUDES", "EXTRA_CPPFLAGS", "EXTRA_CFLAGS",
                  "APR_CONFIG", "APU_CONFIG", "BINDIR", "SBINDIR", "PROGNAME", "MPM_NAME", "LIBEXECDIR",
                  "SHLIBPATH_VAR", "LIBDIR"]


def clean_env():
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    return env


def elf_files(prefix):
    for path in prefix.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.read_bytes()[:4] == b"\x7fELF":
            yield path


def test_wheel_is_tagged_for_any_python_3(wheel):
    assert wheel.name == f"mod_wsgi_httpd-{VERSION}-py3-none-linux_{MACHINE}.whl"


def test_httpd_reports_the_pinned_libraries_without_ld_library_path(venv):
    out = run([venv.prefix() / "bin" / "httpd", "-V"], env=clean_env()).stdout
    assert f"Apache/{V['httpd']}" in out
    assert LOADED in out
    assert "Server MPM:     event" in out  # the shipped conf/httpd.conf's MPM, found from bin/..
    assert run([venv.prefix() / "bin" / "apachectl", "configtest"], env=clean_env()).returncode == 0


def test_the_layout_mod_wsgi_expects(venv):
    prefix = venv.prefix()
    for rel in ["bin/httpd", "bin/apachectl", "bin/rotatelogs", "bin/apxs", "bin/apr-1-config", "bin/apu-1-config",
                "modules/mod_mpm_event.so", "modules/mod_mpm_worker.so", "modules/mod_mpm_prefork.so",
                "include/httpd.h", "include/apr-1/apr.h", "build/config_vars.mk", "conf/mime.types"]:
        assert (prefix / rel).is_file(), rel
    assert (venv.bin / "mod_wsgi-apxs").is_file()
    for gone in ["manual", "man"]:  # the rest of Apache's standard tree: test_apache_tree.py
        assert not (prefix / gone).exists(), gone


def serve_minimal(prefix, tmp, extra="", path="/"):
    """Start bin/httpd of `prefix` on a minimal configuration; return the response to GET path."""
    docroot = tmp / "docroot"
    docroot.mkdir(exist_ok=True)
    (docroot / "index.html").write_text("<h1>minimal</h1>\n")
    port = free_port()
    user = "\n".join(f"{k} {v}" for k, v in zip(("User", "Group"), worker_identity()[1::2]))
    conf = tmp / f"httpd-{port}.conf"
    conf.write_text(f"""
ServerRoot "{prefix}"
LoadModule mpm_event_module modules/mod_mpm_event.so
LoadModule unixd_module modules/mod_unixd.so
LoadModule authz_core_module modules/mod_authz_core.so
LoadModule dir_module modules/mod_dir.so
LoadModule mime_module modules/mod_mime.so
LoadModule log_config_module modules/mod_log_config.so
{user}
Listen 127.0.0.1:{port}
ServerName 127.0.0.1
PidFile "{tmp}/httpd-{port}.pid"
ErrorLog "{tmp}/error_log"
DefaultRuntimeDir "{tmp}"
TypesConfig conf/mime.types
DocumentRoot "{docroot}"
<Directory "{docroot}">
    Require all granted
</Directory>
DirectoryIndex index.html
{extra}
""")
    proc = subprocess.Popen([prefix / "bin" / "httpd", "-f", conf, "-DFOREGROUND"], env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        return wait_for(f"http://127.0.0.1:{port}{path}", proc)
    finally:
        proc.terminate()
        proc.wait(20)


def test_httpd_serves_a_file_from_a_minimal_config(venv, shared_tmp):
    response = serve_minimal(venv.prefix(), shared_tmp)
    assert response.status_code == 200 and response.text == "<h1>minimal</h1>\n"
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Server"].startswith(f"Apache/{V['httpd']}")


MODULE = r"""
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"

static int hello_handler(request_rec *r)
{
    if (!r->handler || strcmp(r->handler, "hello")) return DECLINED;
    ap_set_content_type(r, "text/plain");
    ap_rputs("hello from a module built with apxs\n", r);
    return OK;
}

static void hello_register_hooks(apr_pool_t *p)
{
    ap_hook_handler(hello_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

module AP_MODULE_DECLARE_DATA hello_module = {
    STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, hello_register_hooks
};
"""


def test_apxs_builds_installs_and_httpd_loads_a_third_party_module(venv, shared_tmp):
    """In a copy of the installed prefix, so the session's tree stays as built (and apxs is seen to
    work from wherever the tree is)."""
    prefix = shared_tmp / "prefix-copy"
    shutil.copytree(venv.prefix(), prefix)
    src = shared_tmp / "mod_hello.c"
    src.write_text(MODULE)
    run([prefix / "bin" / "apxs", "-c", "-i", src], cwd=shared_tmp)
    assert (prefix / "modules" / "mod_hello.so").is_file()
    response = serve_minimal(prefix, shared_tmp, "LoadModule hello_module modules/mod_hello.so\n"
                             "<Location /hello>\n    SetHandler hello\n</Location>\n", path="/hello")
    assert response.status_code == 200 and response.text == "hello from a module built with apxs\n"


def test_mod_wsgi_was_compiled_against_our_httpd(venv):
    out = run([venv.python, "-c", "from mod_wsgi.express import apxs_config as c; print(c.HTTPD); "
               "print(c.WITH_HTTPD_PACKAGE)"]).stdout.split()
    assert out == [str(venv.prefix() / "bin" / "httpd"), "True"]


def test_mod_wsgi_apxs_answers_every_question_from_inside_the_package(venv):
    prefix = str(venv.prefix())
    answers = run([venv.bin / "mod_wsgi-apxs", "-q", *APXS_QUESTIONS]).stdout.strip().split(";;")
    got = dict(zip(APXS_QUESTIONS, answers))
    assert len(answers) == len(APXS_QUESTIONS)
    assert got["INCLUDEDIR"] == f"{prefix}/include"
    assert got["BINDIR"] == got["SBINDIR"] == f"{prefix}/bin"
    assert got["LIBEXECDIR"] == f"{prefix}/modules"
    assert got["LIBDIR"] == f"{prefix}/lib"
    assert got["APR_CONFIG"] == f"{prefix}/bin/apr-1-config"
    assert got["APU_CONFIG"] == f"{prefix}/bin/apu-1-config"
    assert (got["PROGNAME"], got["MPM_NAME"], got["SHLIBPATH_VAR"]) == ("httpd", "event", "LD_LIBRARY_PATH")
    assert f"-I{prefix}/include/apr-1" in got["EXTRA_INCLUDES"]
    includes = run([got["APR_CONFIG"], "--includes"]).stdout
    assert f"-I{prefix}/include/apr-1" in includes


def test_mod_wsgi_apxs_answers_under_pip_build_isolation(venv, tmp_path):
    """pip's isolated build hides site-packages with a sitecustomize on PYTHONPATH; we still answer."""
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\nsys.path[:] = [p for p in sys.path if 'site-packages' not in p]\n")
    env = dict(clean_env(), PYTHONPATH=str(tmp_path), PYTHONNOUSERSITE="1")
    hidden = run([venv.python, "-c", "import mod_wsgi_packages.httpd"], env=env, check=False)
    assert hidden.returncode != 0  # the package really is hidden
    out = run([venv.bin / "mod_wsgi-apxs", "-q", "INCLUDEDIR"], env=env).stdout.strip()
    assert out == f"{venv.prefix()}/include"


def test_httpds_own_apxs_works_from_the_installed_location(venv):
    prefix = venv.prefix()
    out = run([prefix / "bin" / "apxs", "-q", "INCLUDEDIR", "LIBEXECDIR"]).stdout.strip()
    assert out == f"{prefix}/include;;{prefix}/modules"


def test_no_installed_file_names_the_build_directories(venv, wheel):
    # the checkout by its own folders: its path alone may be as short as /src (ci/fresh-root)
    checkout = [str(ROOT / name).encode() for name in ("build_httpd", "recipes", "patches", "upstream", "src")]
    needles = [b"mod_wsgi-httpd-build-", b"mod_wsgi-httpd-wheel-", b"/tmp/pip-", *checkout]
    offenders = []
    for path in venv.prefix().rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            offenders += [f"{path}: {n.decode()}" for n in needles if n in data]
    assert offenders == []


def test_every_runpath_stays_inside_the_package(venv):
    prefix = venv.prefix()
    checked = 0
    for path in elf_files(prefix):
        out = run(["readelf", "-d", path]).stdout
        assert "(RPATH)" not in out, path
        for runpath in re.findall(r"\(RUNPATH\).*\[(.*)\]", out):
            for entry in runpath.split(":"):
                assert entry.startswith("$ORIGIN"), (path, entry)
                target = Path(entry.replace("$ORIGIN", str(path.parent))).resolve()
                assert target == prefix / "lib" or prefix in target.parents, (path, entry)
        checked += 1
    assert checked > 100  # httpd, the tools, the libraries and every module


def test_mod_wsgi_express_serves_hello_world(venv, hello, shared_tmp):
    with Express(venv, shared_tmp, hello) as server:
        response = server.get("/")
        assert response.status_code == 200
        assert response.text == "Hello from mod_wsgi-httpd"


def test_a_copied_virtualenv_still_serves(venv, shared_tmp):
    """The original is moved away while the copy serves, so nothing can quietly use it."""
    copy = shared_tmp / "moved-venv"
    shutil.copytree(venv.path, copy, symlinks=True)
    parked = venv.path.with_name("parked")
    venv.path.rename(parked)
    try:
        app = shared_tmp / "app.wsgi"
        app.write_text(HELLO)
        out = run([copy / "bin" / "python", "-c", "import mod_wsgi_packages.httpd as h; print(h.PREFIX)"]).stdout
        assert out.strip().startswith(str(copy))
        express = [copy / "bin" / "python", "-m", "mod_wsgi.express.cli"]
        assert serve_and_get(express, app, shared_tmp).text == "Hello from mod_wsgi-httpd"
    finally:
        parked.rename(venv.path)


def test_info_says_what_was_built(venv):
    text = run([venv.bin / "mod_wsgi-httpd", "info"]).stdout
    httpd = RECIPES["httpd"].source
    assert f"httpd {V['httpd']}" in text and f"sha256 {httpd.sha256}" in text and "event, prefork, worker" in text
    data = json.loads(run([venv.python, "-m", "mod_wsgi_packages.httpd", "--json"]).stdout)
    assert data["components"]["pcre2"]["version"] == V["pcre2"]
    assert data["prefix"] == str(venv.prefix())
    assert {"ssl", "http2", "deflate", "brotli", "expat", "lua", "proxy-html", "md", "ldap", "session-crypto"} == \
        {n for n, f in data["features"].items() if f["built"]}
    for module in ("lua", "xml2enc", "proxy_html", "md", "ldap", "authnz_ldap", "session_crypto", "imagemap",
                   "ident", "cern_meta", "authnz_fcgi"):
        assert module in data["modules"], module
    sbom = json.loads(Path(data["sbom"]).read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    shipped = [c for c in sbom["components"] if c.get("scope") != "excluded"]
    assert {c["name"] for c in shipped} == {"httpd", "apr", "apr-util", "pcre2"}
    # the system libraries it links, named as the Debian source packages their headers came from
    # (the distribution's version in a pkg:deb purl), each with the upstream CPE scanners match
    linked = {c["name"]: c for c in sbom["components"] if c.get("scope") == "excluded"}
    assert {"openssl", "nghttp2", "zlib", "expat", "brotli", "lua", "libxml2", "curl", "openldap", "jansson",
            "util-linux", "libxcrypt", "glibc"} == set(linked)
    assert_sbom_names_every_linked_library(venv.prefix())
    from packageurl import PackageURL
    for name, dev in [("openssl", "libssl-dev"), ("lua", "liblua5.4-dev"), ("brotli", "libbrotli-dev"),
                      ("curl", "libcurl4-openssl-dev"), ("zlib", "zlib1g-dev")]:
        source, version = run(["dpkg-query", "-W", "-f=${source:Package} ${source:Version}", dev]).stdout.split()
        purl = PackageURL.from_string(linked[name]["purl"])
        assert (purl.type, purl.namespace, purl.name, purl.version) == ("deb", "debian", source, version), name
        assert linked[name]["version"] == version
        upstream = version.split(":")[-1].rsplit("-", 1)[0]  # zlib's is 1.2.13.dfsg: the CPE says 1.2.13
        assert upstream.startswith(linked[name]["cpe"].split(":")[5]), name  # brotli's too: its headers declare none
    ssl_version = run(["dpkg-query", "-W", "-f=${Version}", "libssl-dev"]).stdout.split("-")[0]
    assert linked["openssl"]["cpe"] == f"cpe:2.3:a:openssl:openssl:{ssl_version}:*:*:*:*:*:*:*"
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(json.dumps(sbom)) is None


POOL_BLOCKS = r"""
#include <stdio.h>
#include <unistd.h>
#include <apr_general.h>
#include <apr_allocator.h>
/* 1 when each of four 64 KB pool blocks starts on a page of its own (mmap), else 0 (malloc) */
int main(void) {
    apr_allocator_t *a;
    int i, own_pages = 1;
    apr_initialize();
    apr_allocator_create(&a);
    for (i = 0; i < 4; i++)
        own_pages &= ((unsigned long)apr_allocator_alloc(a, 65536) % sysconf(_SC_PAGESIZE)) == 0;
    printf("%d\n", own_pages);
    return 0;
}
"""


def test_httpd_processes_carry_only_what_they_use_and_give_pool_memory_back(venv, tmp_path):
    """The memory decisions of issue 36, in the built tree: APR-util's LDAP and crypto are drivers
    loaded on demand (libaprutil maps no OpenSSL or OpenLDAP into every process), and APR's pools
    take their blocks from mmap, so memory httpd frees goes back to the system."""
    lib = venv.prefix() / "lib"
    needs = elf.read(lib / "libaprutil-1.so.0").needed
    assert "libapr-1.so.0" in needs
    assert not [n for n in needs if re.search(r"ldap|lber|crypto|ssl", n)], needs
    assert sorted(p.name for p in (lib / "apr-util-1").iterdir()) == ["apr_crypto_openssl-1.so", "apr_ldap-1.so"]
    source = tmp_path / "blocks.c"
    source.write_text(POOL_BLOCKS)
    config = venv.prefix() / "bin" / "apr-1-config"
    flags = [*run([config, "--cflags", "--cppflags", "--includes"]).stdout.split(),
             *run([config, "--link-ld", "--libs"]).stdout.split()]
    run(["cc", "-o", tmp_path / "blocks", source, *flags, f"-Wl,-rpath,{lib}"])
    assert run([tmp_path / "blocks"]).stdout.strip() == "1"


def test_scripts_find_their_prefix_through_links_and_ignore_cdpath(venv, tmp_path):
    """A link in a bin directory elsewhere (as /usr/local/bin holds) must not make apachectl source
    the envvars beside the link, nor the *-config scripts answer with the link's directory; a
    CDPATH that holds a bin/ must not make a relative call land there."""
    prefix = venv.prefix()
    links = tmp_path / "local" / "bin"
    links.mkdir(parents=True)
    (links / "envvars").write_text("echo DECOY-ENVVARS-SOURCED >&2; exit 3\n")
    for name in ("apachectl", "apr-1-config", "apu-1-config", "pcre2-config"):
        (links / name).symlink_to(prefix / "bin" / name)
    (links / "relative-apachectl").symlink_to(os.path.relpath(prefix / "bin" / "apachectl", links))
    decoy = tmp_path / "cdpath"
    (decoy / "bin").mkdir(parents=True)
    env = dict(clean_env(), CDPATH=str(decoy))
    for script in ("apachectl", "relative-apachectl"):
        checked = run([links / script, "configtest"], env=env, check=False)
        assert checked.returncode == 0 and "DECOY" not in checked.stdout + checked.stderr, checked.stderr
    for name, flag in (("apr-1-config", "--prefix"), ("apu-1-config", "--prefix"), ("pcre2-config", "--prefix")):
        assert run([links / name, flag], env=env).stdout.strip() == str(prefix), name
        # called by a relative path from the prefix, CDPATH holding a bin/ of its own
        assert run([f"bin/{name}", flag], env=env, cwd=prefix).stdout.strip() == str(prefix), name
