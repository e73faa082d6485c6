"""The portable wheels (issue: install in seconds anywhere): built by ci/build-portable-wheel in a
fresh Debian root of the target's build suite, repaired by auditwheel to the target's tag, then
installed from a local index on a fresh root that has a Python, a compiler and Python's headers
but nothing of OpenSSL, nghttp2, brotli, zlib or expat beyond what Python itself brings
(ci/portable/check), where mod_wsgi builds against it and serves an app that uses ssl, hashlib and
zlib over HTTP, HTTPS and HTTP/2 with 30 threads, under load, through a graceful restart.

Which targets: PORTABLE_TARGETS (wheel tags, as `python -m build_httpd.profile` lists them, or
machines for their glibc 2.31 targets; default: this machine's own). Every other target is built
and checked on request (BENCHMARKS.md has the times): "manylinux_2_31_aarch64" (cross-compiled,
checked in arm64 roots under qemu-user), "manylinux_2_28_x86_64" (the glibc 2.28 sysroot),
"musllinux_1_2_x86_64" (checked on a musl machine made by ci/musl-python), … Which roots:
PORTABLE_SUITES (default "bookworm" for this machine's wheel, "bullseye trixie" for another
glibc target's; a musl target's is the Debian base of its musl machine). PORTABLE_WHEEL=PATH tests
that wheel instead of building one, PORTABLE_LIBC_SYSTEM=PATH that musl machine (ci/musl-python's
musl-system.tar for the same target) instead of making one. Like the fresh-machine test, this archives the committed HEAD.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from .conftest import (ROOT, VERSION, assert_sbom_names_every_linked_library, free_port, fresh_root_unavailable,
                       make_venv, run)

sys.path.insert(0, str(ROOT / "ci"))
from local_index import local_index  # noqa: E402

from build_httpd.profile import TARGETS, host_target, target_named  # noqa: E402

HOST = host_target().name
# PORTABLE_TARGETS names targets (wheel tags) or machines (their glibc targets)
WANTED = [target_named("PORTABLE_TARGETS", n).name for n in os.environ.get("PORTABLE_TARGETS", HOST).split()]
# every target: this machine's own is built and checked in every run, the others on request
MACHINES = [HOST] + [name for name in TARGETS if name != HOST]
BUILD_TIMEOUT = 3000  # seconds: a Debian 11 root, apt-get, OpenSSL and httpd from scratch on 2 CPUs


def suites_for(machine):
    """The Debian roots a wheel is checked in (a musl target's: the Debian base of its musl system)."""
    if TARGETS[machine].libc.name != host_target().libc.name:
        return ["bookworm"]
    return os.environ.get("PORTABLE_SUITES", "bookworm" if machine == HOST else "bullseye trixie").split()


@pytest.fixture(scope="session")
def foreign_libc_system(tmp_path_factory):
    """foreign_libc_system(target): for a target whose C library is not this machine's (musl), a
    machine of it to unpack in a fresh root (ci/musl-python: the target's toolchain and a CPython
    built with it), made once per session; None for this machine's own C library."""
    made = {}

    def get(target):
        if target.libc.name == host_target().libc.name:
            return None
        given = os.environ.get("PORTABLE_LIBC_SYSTEM", "")
        if given:  # one made earlier by ci/musl-python for this target
            return given
        if target.name not in made:
            out = tmp_path_factory.mktemp(f"libc-system-{target.name}")
            result = subprocess.run(["bash", ROOT / "ci" / "fresh-root", "bookworm", "bash", "ci/musl-python",
                                     target.name], env=dict(os.environ, FRESH_ROOT_OUT=str(out)),
                                    capture_output=True, text=True, timeout=BUILD_TIMEOUT)
            assert result.returncode == 0, f"ci/musl-python failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            assert "musl-python: " in result.stdout and "musllinux_1_2" in result.stdout, result.stdout[-3000:]
            made[target.name] = out / "musl-system.tar"
        return made[target.name]
    return get


@pytest.fixture(scope="session")
def wheels(tmp_path_factory):
    """wheels(machine): the portable wheel for that machine, built once per session."""
    built = {}

    def get(machine):
        if machine not in WANTED and machine == HOST:
            pytest.skip(f"PORTABLE_TARGETS={' '.join(WANTED)} leaves out this machine's own wheel ({machine})")
        if machine not in WANTED:
            how = ("cross-compiled, then checked under emulation" if TARGETS[machine].cross
                   else "its own toolchain made, then checked in its own roots")
            pytest.skip(f"the {machine} wheel is built and checked on request only: PORTABLE_TARGETS="
                        f"\"{' '.join(WANTED + [machine])}\" ({how}: BENCHMARKS.md has the time)")
        why = fresh_root_unavailable()
        if why:
            pytest.skip(why)
        given = os.environ.get("PORTABLE_WHEEL", "")
        if given:
            if not given.endswith((f"-{machine}.whl", f".{machine}.whl")):
                pytest.skip(f"PORTABLE_WHEEL names a wheel for another machine than {machine}")
            return given
        if machine not in built:
            out = tmp_path_factory.mktemp(f"portable-wheel-{machine}")
            result = subprocess.run(["bash", ROOT / "ci" / "build-portable-wheel", "--target", machine, out],
                                    capture_output=True, text=True, timeout=BUILD_TIMEOUT)
            assert result.returncode == 0, \
                f"build-portable-wheel failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
            path = result.stdout.strip().splitlines()[-1]  # the wheel's path is printed last
            assert path.endswith(".whl") and os.path.isfile(path), result.stdout[-3000:]
            (out / "build.log").write_text(result.stdout + result.stderr)
            built[machine] = path
        return built[machine]
    return get


@pytest.fixture(scope="session")
def portable_wheel(wheels):
    """This machine's portable wheel."""
    return wheels(HOST)


@pytest.mark.parametrize("machine", MACHINES)
def test_the_wheel_is_built_offline_from_the_release_artifacts_alone(machine, wheels):
    """The release build needs nothing that can disappear: the sdist and the sources archive it
    writes beside the wheel are all it was built from, in a network namespace with no network."""
    portable_wheel = wheels(machine)
    out = os.path.dirname(portable_wheel)
    log_path = os.path.join(out, "build.log")
    if not os.path.exists(log_path):
        pytest.skip("PORTABLE_WHEEL names a wheel built elsewhere: how it was built is not known here")
    log = open(log_path).read()
    assert "building offline (network interfaces: lo) from the sdist and the sources archive" in log, log[-3000:]
    sdist = f"mod_wsgi_httpd-{VERSION}.tar.gz"
    archive = f"mod_wsgi_httpd-{VERSION}-sources.tar"
    assert {sdist, archive} <= set(os.listdir(out))
    import tarfile
    with tarfile.open(os.path.join(out, archive)) as tar:
        carried = set(tar.getnames())
    from build_httpd.recipes import load_recipes
    from build_httpd.toolchain import toolchain_recipes
    portable_only = {r.source.filename for r in load_recipes(profile="portable").values() if not r.source.in_sdists}
    toolchains = {r.source.filename for r in toolchain_recipes().values()}
    assert carried == portable_only | toolchains | {"SHA256SUMS"}
    openssl = load_recipes(profile="portable")["openssl"].source.filename
    assert f"{openssl}: verified; upstream signature verified" in log


@pytest.mark.parametrize("machine", MACHINES)
def test_the_portable_wheel_has_its_target_s_tag_and_is_self_contained(machine, wheels):
    portable_wheel = wheels(machine)
    name = os.path.basename(portable_wheel)
    # (a wheel that needs an even older C library than its floor carries that tag too)
    assert re.fullmatch(rf"mod_wsgi_httpd-{re.escape(VERSION)}-py3-none-([\w]+\.)?{machine}\.whl", name), name
    show = open(portable_wheel[:-len(".whl")] + ".auditwheel.txt").read()
    assert machine in show
    with zipfile.ZipFile(portable_wheel) as wheel:
        names = wheel.namelist()
        info = json.loads(wheel.read("mod_wsgi_packages/httpd/build-info.json"))
        sbom = json.loads(wheel.read("mod_wsgi_packages/httpd/sbom.cdx.json"))
        # PEP 770: the same SBOM where tools look for it, listed in RECORD like every file
        # what the prefix records of its toolchain is the target's own: mod_wsgi builds there with cc
        config_vars = wheel.read("mod_wsgi_packages/httpd/build/config_vars.mk").decode()
        # (text files only: OpenSSL keeps its compiler command line in libcrypto; build-info.json
        # records how the build ran)
        recorded = [n for n in names if n.startswith("mod_wsgi_packages/httpd/") and not n.endswith("build-info.json")
                    and not wheel.read(n).startswith(b"\x7fELF")
                    and re.search(rb"-linux-(gnu|musl)[\d.]*-gcc|gcc-cross|musl-gcc|/sysroot/", wheel.read(n))]
        pep770 = f"mod_wsgi_httpd-{VERSION}.dist-info/sboms/sbom.cdx.json"
        assert json.loads(wheel.read(pep770)) == sbom
        assert pep770 in wheel.read(f"mod_wsgi_httpd-{VERSION}.dist-info/RECORD").decode()
    # nothing of the five libraries is a shared object in the wheel (they are linked in), and
    # every vendored component is reported with its version, hash and licence
    shared = [n for n in names if re.search(r"/lib(ssl|crypto|nghttp2|brotli\w*|z|expat|lua[\d.]*|xml2|curl|jansson)[-.].*so", n)]
    assert not shared, shared
    # OpenLDAP is one shared copy for APR-util and mod_ldap, under names of its own (never libldap.so.2),
    # each with its one-line linker script as every library in lib/
    ldap = sorted(n for n in names if re.search(r"/lib(ldap|lber)[-.].*so", n))
    assert ldap == [f"mod_wsgi_packages/httpd/lib/lib{n}-mod_wsgi_httpd.so{v}" for n in ("lber", "ldap")
                    for v in ("", ".2")], ldap
    assert info["profile"] == "portable" and info["platform"] == f"Linux {TARGETS[machine].machine}"
    assert re.search(r"^CC = cc$", config_vars, re.M) and not recorded, recorded
    vendored = {n: c for n, c in info["components"].items() if c["linkage"].startswith("static")}
    assert set(vendored) == {"openssl", "nghttp2", "brotli", "zlib", "expat", "lua", "libxml2", "curl", "jansson"}
    assert info["components"]["openldap"]["linkage"].startswith("shared library in lib/, its own name")
    # every feature is built in: the whole Apache (mod_md, mod_ldap and mod_session_crypto included)
    assert all(d["built"] for d in info["features"].values()), info["features"]
    for name in [*vendored, "openldap"]:
        assert f"mod_wsgi_packages/httpd/licenses/{name}/" in "\n".join(names)
    # what auditwheel grafted (glibc's libcrypt) comes with its licence too; musl has crypt() in libc
    grafted = [n for n in names if n.startswith("mod_wsgi_httpd.libs/") and ".so" in n]
    assert all(re.match(r"mod_wsgi_httpd\.libs/lib[\w+]+-[0-9a-f]{8}\.so", n) for n in grafted), grafted
    if TARGETS[machine].libc.name == "glibc":
        assert grafted and "mod_wsgi_packages/httpd/licenses/libcrypt1/copyright" in names
    else:
        assert not grafted
    refs = {c["name"]: c for c in sbom["components"]}
    assert refs["openssl"]["version"].startswith("3.5.") and refs["openssl"]["hashes"][0]["content"] == \
        info["components"]["openssl"]["sha256"]
    assert {"name": "mod_wsgi-httpd:profile", "value": "portable"} in sbom["metadata"]["properties"]
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(json.dumps(sbom)) is None
    assert all(c["cpe"].startswith("cpe:2.3:a:") and c["purl"] for c in sbom["components"] if c.get("scope") != "excluded")
    assert refs["openssl"]["cpe"] == f"cpe:2.3:a:openssl:openssl:{refs['openssl']['version']}:*:*:*:*:*:*:*"


@pytest.mark.parametrize("machine", [m for m in MACHINES if TARGETS[m].libc.name == "glibc"])
def test_no_binary_of_a_glibc_wheel_needs_a_symbol_newer_than_its_floor(machine, wheels, tmp_path):
    """`readelf -V` of every ELF file in the wheel: the newest GLIBC_x.y any of them needs is its
    floor or older (auditwheel's analysis says the same, in its own words, in the .auditwheel.txt)."""
    portable_wheel = wheels(machine)
    floor = tuple(int(p) for p in TARGETS[machine].floor.split("."))
    newest = {}
    with zipfile.ZipFile(portable_wheel) as wheel:
        for name in wheel.namelist():
            data = wheel.read(name)
            if not data.startswith(b"\x7fELF"):
                continue
            path = tmp_path / "elf"
            path.write_bytes(data)
            needed = run(["readelf", "-V", "-W", path]).stdout
            versions = [tuple(int(p) for p in v.split(".")) for v in re.findall(r"Name: GLIBC_([\d.]+)", needed)]
            if versions:
                newest[name] = max(versions)
    assert newest, "no ELF file of the wheel needs a versioned glibc symbol"
    too_new = {n: v for n, v in newest.items() if v > floor}
    assert not too_new, too_new


@pytest.mark.parametrize("machine,suite", [(m, s) for m in MACHINES for s in suites_for(m)])
def test_the_portable_wheel_serves_https_and_http2_on_a_fresh_debian(machine, suite, wheels, foreign_libc_system,
                                                                     tmp_path):
    """In one fresh root per suite, of the wheel's architecture (arm64 runs under qemu-user), a musl
    machine for a musl wheel: the wheel from a local index, mod_wsgi compiled against it there,
    HTTP, HTTPS and HTTP/2, 30 threads under concurrent load, recursion through C in them, a
    graceful restart under load, a clean stop; ci/portable/check.py names each check."""
    portable_wheel = wheels(machine)
    target = TARGETS[machine]
    index = tmp_path / "index"
    index.mkdir()
    shutil.copy(portable_wheel, index)
    # a plain `pip install mod_wsgi`: the newest release for the root's Python (Debian 11's 3.9
    # gets mod_wsgi 5, which is what its users get)
    # the root shares this machine's network: it reaches the index on 127.0.0.1
    with local_index(index, tmp_path / "pypiserver") as url:
        output = checked_in_a_fresh_root(target, suite, foreign_libc_system(target), tmp_path, f"INDEX_URL={url}",
                                         timeout=1800 if machine == HOST else 3600)
    assert "mod_wsgi-httpd installed in" in output, output[-8000:]


@pytest.mark.parametrize("machine", [HOST] + [m for m in MACHINES if TARGETS[m].libc.name != "glibc"
                                              and not TARGETS[m].cross])
def test_the_sdist_on_a_bare_machine_is_the_whole_apache(machine, wheel, foreign_libc_system, tmp_path,
                                                         requires_fresh_root):
    """Issue 35: `pip install` of the sdist, the default settings, as an ordinary user, on a fresh
    machine with a compiler, Perl and Python's headers and no library's -dev package: every library
    whose headers are missing is built in, so the build has every module of the system build
    (the session's wheel), serves HTTP/2 over TLS, loads mod_md and mod_ldap, and
    mod_wsgi-express serves through it (ci/portable/check, BARE=1). On Debian 12, python3-dev
    brings zlib's and expat's headers: those two are the system's. On a musl machine nothing is:
    every library is built in (on request only, it takes a while: PORTABLE_TARGETS names the musl
    target and PORTABLE_FROM_SDIST=1). The times go in BENCHMARKS.md."""
    target = TARGETS[machine]
    musl = target.libc.name != host_target().libc.name
    if musl and (machine not in WANTED or not os.environ.get("PORTABLE_FROM_SDIST")):
        pytest.skip(f"the sdist route on {machine} is built and checked on request only: "
                    f"PORTABLE_TARGETS={machine} PORTABLE_FROM_SDIST=1")
    sdist = tmp_path / "in" / "sdist"
    run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", sdist, ROOT])
    output = checked_in_a_fresh_root(target, "bookworm", foreign_libc_system(target), tmp_path, "BARE=1",
                                     timeout=3600)
    compiled = re.search(r"mod_wsgi-httpd installed in (\d+) s", output)
    again = re.search(r"reinstalled from the build cache in (\d+) s", output)
    assert compiled and again and "Building wheel for mod_wsgi-httpd" in output, output[-8000:]
    assert output.count("build cache hit") == 1, output[-8000:]  # the reinstall's (pip -v), from the first one's
    built = json.loads(next(line for line in output.splitlines() if line.startswith("bare build: "))[len("bare build: "):])
    with zipfile.ZipFile(wheel) as whl:
        system = json.loads(whl.read("mod_wsgi_packages/httpd/build-info.json"))
    assert (built["mpms"], built["modules"]) == (system["mpms"], system["modules"]), \
        set(built["modules"]) ^ set(system["modules"])
    assert built["profile"] == "system"
    from_system = {"deflate", "expat"} if not musl else set()
    assert built["sources"] == {n: "system" if n in from_system else "built in" for n in system["features"]}
    assert "ok: mod_md, mod_ldap, mod_authnz_ldap and mod_session_crypto load" in output
    print(f"the sdist compiled on a bare {machine} machine in {compiled.group(1)} s; "
          f"reinstalled from the build cache in {again.group(1)} s")


def checked_in_a_fresh_root(target, suite, system, tmp_path, env_words, timeout):
    """ci/portable/check in a fresh root of the target's architecture (a musl machine when `system`
    is one: ci/musl-python's tar), with what tmp_path/in holds and `env_words` for its environment;
    every check it makes asserted, its output returned (and kept as tmp_path/check.log)."""
    inbox = tmp_path / "in"
    tls = inbox / "tls"
    tls.mkdir(parents=True)
    if system is not None:
        shutil.copy(system, inbox / "musl-system.tar")
    # extensions strict enough for Python 3.13's default verification (VERIFY_X509_STRICT)
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-keyout", tls / "ca.key", "-out", tls / "ca.crt"])
    (tls / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
                                    "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
                                    "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n")
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", tls / "server.key",
         "-out", tls / "server.csr"])
    run(["openssl", "x509", "-req", "-in", tls / "server.csr", "-CA", tls / "ca.crt", "-CAkey", tls / "ca.key",
         "-CAcreateserial", "-days", "2", "-out", tls / "server.crt", "-extfile", tls / "server.ext"])
    for p in tls.iterdir():
        os.chmod(p, 0o644)
    env = dict(os.environ, FRESH_ROOT_IN=str(inbox), FRESH_ROOT_ARCH=target.debian_arch,
               FRESH_ROOT_ENV=f"HTTP_PORT={free_port()} HTTPS_PORT={free_port()} {env_words} "
                              f"MUSL_PACKAGES={','.join(target.packages_for(cross=False))}")
    result = subprocess.run(["bash", ROOT / "ci" / "fresh-root", suite, "bash", "ci/portable/check"], env=env,
                            capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    (tmp_path / "check.log").write_text(output)  # kept with pytest's temporary directories
    assert result.returncode == 0, output[-8000:]
    assert f"ok: uname -m says {target.machine}" in output, output[-8000:]
    for expected in ("HTTP/2 negotiated over TLS", "Python in httpd has the system's OpenSSL",
                     "no libssl/libcrypto/libz/nghttp2/brotli/expat file from the package is mapped",
                     "mod_ssl.so exports no OpenSSL symbol", "a clean stop: no pid file, no listener",
                     "after the graceful restart, 60 requests at a time answered 200",
                     "30 concurrent requests recursing 400 levels through C answered 200",
                     "no process died from start to stop, by the error log",
                     "APR-util's LDAP driver loaded with its TLS"):
        assert f"ok: {expected}" in output, output[-8000:]
    # nothing crashed on the way: no process of httpd, mod_wsgi, Python or the tools apachectl runs
    # (qemu-user says it in its own words)
    assert not re.search(r"Segmentation fault|uncaught target signal|exit signal", output), output[-8000:]
    findings = json.loads(result.stdout.strip().splitlines()[-1])
    assert findings["http2"] == "HTTP/2" and findings["mapped"]
    return output


def test_pip_picks_the_portable_wheel_from_a_real_index(portable_wheel, tmp_path):
    """Item 5: the sdist and the portable wheel on a real index server (pypiserver) on 127.0.0.1;
    a plain `pip install --index-url … mod_wsgi-httpd` in a new virtualenv takes the wheel and
    compiles nothing. (The time it takes is measured by bench/run.py, not asserted here.)"""
    index = tmp_path / "index"
    index.mkdir()
    run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", index, ROOT])
    assert not (ROOT / "upstream").exists()
    shutil.copy(portable_wheel, index)
    venv = make_venv(tmp_path / "venv", pip="upgrade")
    with local_index(index, tmp_path / "pypiserver") as url:
        # --isolated: this machine's pip configuration (its own index) plays no part
        result = venv.pip("--isolated", "install", "--no-cache-dir", "--index-url", url, "mod_wsgi-httpd",
                          env=dict(os.environ, MOD_WSGI_HTTPD_NO_CACHE="1"))
    out = result.stdout + result.stderr
    assert os.path.basename(portable_wheel) in out and "Building wheel" not in out, out[-3000:]
    info = run([venv.bin / "mod_wsgi-httpd", "info", "--json"]).stdout
    assert json.loads(info)["profile"] == "portable"
    text = run([venv.bin / "mod_wsgi-httpd", "info"]).stdout
    assert "profile:   portable: " in text and "openssl 3.5." in text
    sbom = assert_sbom_names_every_linked_library(venv.prefix())
    # and every library built in, by its recipe (what is linked statically has no NEEDED entry)
    assert {"openssl", "nghttp2", "brotli", "zlib", "expat", "lua", "libxml2", "curl", "jansson", "openldap"} <= \
        {c["name"] for c in sbom["components"] if c.get("scope") != "excluded"}


def test_httpd_suite_passes_on_the_portable_wheel(portable_wheel, tmp_path_factory):
    """httpd's own test suite (test_httpd_suite.py) on the installed portable wheel, event MPM:
    mod_ssl's built-in OpenSSL, mod_lua's Lua, mod_proxy_html's libxml2, mod_md's libcurl and
    Jansson included, and ldap.t against real slapd servers through the wheel's own OpenLDAP."""
    from .test_httpd_suite import assert_suite_passes
    base = tmp_path_factory.mktemp("portable-suite")
    venv = make_venv(base / "venv", pip="as-is")
    venv.pip("install", "--no-deps", portable_wheel)
    result = assert_suite_passes(venv.prefix(), "event", base / "logs")
    assert not result.left_out, result.left_out


def test_the_portable_wheel_has_every_module_of_the_system_build(portable_wheel, wheel):
    """The whole Apache in the wheel: the same MPMs and modules as a system build that found every
    library (the session's wheel, every feature the system's)."""
    def modules(path):
        with zipfile.ZipFile(path) as whl:
            info = json.loads(whl.read("mod_wsgi_packages/httpd/build-info.json"))
        return info["mpms"], info["modules"]
    portable, system = modules(portable_wheel), modules(wheel)
    assert portable == system and len(system[1]) >= 116, (set(system[1]) ^ set(portable[1]))
