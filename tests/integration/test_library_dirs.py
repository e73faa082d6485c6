"""-C ssl-dir=DIR with an OpenSSL the loader cannot find by itself: the modules that link it keep
DIR/lib in their RUNPATH (the user's choice, recorded by `info`), and mod_ssl loads.

The OpenSSL is a real one, this machine's (headers and libraries copied under a non-default
prefix), renamed so that no copy on the default loader path can stand in for it: libssl.so.3
becomes libmwhtestssl.so.3 and libcrypto.so.3 libmwhtestcrypto.so.3."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, make_venv, run

SSL, CRYPTO = "libmwhtestssl.so.3", "libmwhtestcrypto.so.3"


def system_openssl():
    multiarch = subprocess.run(["cc", "-print-multiarch"], capture_output=True, text=True).stdout.strip()
    libdir = Path("/usr/lib") / multiarch if multiarch else Path("/usr/lib")
    if not (Path("/usr/include/openssl/ssl.h").is_file() and (libdir / "libssl.so.3").is_file()):
        return None
    return Path("/usr/include"), Path("/usr/include") / multiarch, libdir


@pytest.fixture(scope="module")
def openssl_elsewhere(tmp_path_factory):
    found = system_openssl()
    if found is None:
        pytest.skip("needs OpenSSL 3 headers and libraries (libssl-dev; ci/test installs it)")
    include, arch_include, libdir = found
    prefix = tmp_path_factory.mktemp("openssl-elsewhere")
    shutil.copytree(include / "openssl", prefix / "include" / "openssl")
    if (arch_include / "openssl").is_dir():
        shutil.copytree(arch_include / "openssl", prefix / "include" / "openssl", dirs_exist_ok=True)
    lib = prefix / "lib"
    lib.mkdir()
    shutil.copy(libdir / "libcrypto.so.3", lib / CRYPTO)
    shutil.copy(libdir / "libssl.so.3", lib / SSL)
    run(["patchelf", "--set-soname", CRYPTO, lib / CRYPTO])
    run(["patchelf", "--set-soname", SSL, "--replace-needed", "libcrypto.so.3", CRYPTO, lib / SSL])
    (lib / "libssl.so").symlink_to(SSL)
    (lib / "libcrypto.so").symlink_to(CRYPTO)
    # what `make install` of OpenSSL writes, and what httpd's configure looks for first
    pkgconfig = lib / "pkgconfig"
    pkgconfig.mkdir()
    head = f"prefix={prefix}\nlibdir=${{prefix}}/lib\nincludedir=${{prefix}}/include\nVersion: 3\n"
    (pkgconfig / "libcrypto.pc").write_text(head + "Name: libcrypto\nDescription: crypto\n"
                                           "Libs: -L${libdir} -lcrypto\nCflags: -I${includedir}\n")
    (pkgconfig / "libssl.pc").write_text(head + "Name: libssl\nDescription: ssl\nRequires.private: libcrypto\n"
                                        "Libs: -L${libdir} -lssl\nCflags: -I${includedir}\n")
    (pkgconfig / "openssl.pc").write_text(head + "Name: OpenSSL\nDescription: toolkit\n"
                                         "Requires: libssl libcrypto\n")
    os.chmod(prefix, 0o755)
    return prefix


def test_a_chosen_openssl_directory_stays_in_the_runpath_of_what_needs_it(openssl_elsewhere, session_cache, tmp_path):
    out = tmp_path / "wheels"
    result = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", out, "-C", "ssl=system",
                  "-C", f"ssl-dir={openssl_elsewhere}", "-C", "http2=off", "-C", "brotli=off", ROOT],
                 check=False, env=dict(os.environ, MOD_WSGI_HTTPD_CACHE=str(session_cache)))
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    (wheel,) = out.glob("*.whl")
    target = make_venv(tmp_path / "venv", pip="as-is")  # installing a local wheel: any pip does
    target.pip("install", "-q", wheel)
    prefix = target.prefix()
    mod_ssl = prefix / "modules" / "mod_ssl.so"
    dynamic = run(["readelf", "-d", mod_ssl]).stdout
    assert f"[{SSL}]" in dynamic, "mod_ssl links the chosen OpenSSL"
    assert f"[$ORIGIN/../lib:{openssl_elsewhere / 'lib'}]" in dynamic
    assert str(openssl_elsewhere) not in run(["readelf", "-d", prefix / "bin" / "httpd"]).stdout  # only where needed
    conf = tmp_path / "ssl.conf"
    conf.write_text((prefix / "conf" / "httpd.conf").read_text() + "LoadModule ssl_module modules/mod_ssl.so\n")
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    checked = run([prefix / "bin" / "httpd", "-t", "-f", conf], env=env, check=False)
    assert checked.returncode == 0 and "Syntax OK" in checked.stderr, checked.stderr
    info = json.loads(run([target.bin / "mod_wsgi-httpd", "info", "--json"]).stdout)
    assert info["library_dirs"] == [str(openssl_elsewhere / "lib")]
    assert str(openssl_elsewhere / "lib") in run([target.bin / "mod_wsgi-httpd", "info"]).stdout
