"""Config settings and environment variables: validated, with one clear message each."""

from pathlib import Path

import pytest

from build_httpd.errors import MissingRequirementError, SettingError
from build_httpd.features import chosen_recipes, decide, header_visible
from build_httpd.recipes import all_features, every_recipe, load_recipes
from build_httpd.relocate import recorded_toolchain
from build_httpd.settings import load_settings

RECIPES = every_recipe()
FEATURES = all_features(RECIPES)
MODES = {n: f.modes for n, f in FEATURES.items()}
PATH = {"PATH": "/usr/bin:/bin"}


def settings(config=None, env=None):
    return load_settings(config, MODES, environ=env or {})


def decided(s, features=FEATURES, have=None):
    """The decisions with this machine's compiler (ci/test installs every -dev package)."""
    return decide(features, s, RECIPES, "cc", PATH, have)


def test_defaults():
    s = settings()
    assert s.features == {"expat": "auto", "ssl": "auto", "http2": "auto", "deflate": "auto", "brotli": "auto",
                          "lua": "auto", "proxy-html": "auto", "md": "auto", "ldap": "auto", "session-crypto": "auto"}
    assert s.jobs >= 1 and s.strip and s.use_build_cache and s.sources_dir is None


def test_config_setting_wins_over_environment(tmp_path):
    s = settings({"ssl": "off", "jobs": "3"}, {"MOD_WSGI_HTTPD_SSL": "required", "MOD_WSGI_HTTPD_JOBS": "7",
                                             "MOD_WSGI_HTTPD_CACHE": str(tmp_path)})
    assert s.features["ssl"] == "off" and s.jobs == 3 and s.cache_dir == tmp_path


@pytest.mark.parametrize("config,env,names", [
    ({"ssl": "maybe"}, {}, ["-C ssl", "auto, system, builtin, required, off"]),
    ({}, {"MOD_WSGI_HTTPD_JOBS": "lots"}, ["MOD_WSGI_HTTPD_JOBS", "whole number"]),
    ({"jobs": "0"}, {}, ["-C jobs"]),
    ({"colour": "blue"}, {}, ["-C colour", "ssl=auto|system|builtin|required|off"]),
    ({"expat": "off"}, {}, ["-C expat", "accepts auto, system, builtin, required"]),
    ({"profile": "portable", "ssl": "system"}, {}, ["-C ssl is 'system'", "links none of the system's"]),
    ({"ssl": "builtin", "ssl-dir": "/opt/ssl"}, {}, ["-C ssl-dir is set, and ssl is builtin", "ssl=auto (or system)"]),
    ({}, {"MOD_WSGI_HTTPD_NO_CACHE": "perhaps"}, ["MOD_WSGI_HTTPD_NO_CACHE", "yes/no"]),
    ({}, {"MOD_WSGI_HTTPD_SOURCES": "/no/such/dir"}, ["MOD_WSGI_HTTPD_SOURCES", "not a directory"]),
])
def test_bad_values_are_one_clear_message(config, env, names):
    with pytest.raises(SettingError) as e:
        settings(config, env)
    for name in names:
        assert name in str(e.value)


def test_cache_switches():
    assert not settings({"cache": "off"}).use_build_cache
    assert not settings(env={"MOD_WSGI_HTTPD_NO_CACHE": "1"}).use_build_cache
    assert settings({"cache": "on"}, {"MOD_WSGI_HTTPD_NO_CACHE": "1"}).use_build_cache


def test_a_system_feature_missing_fails_before_compiling(tmp_path, monkeypatch):
    """ssl=system insists on the system's OpenSSL, and so does an ssl-dir (the library is taken from
    there or not at all). On a system the package data does not know, every system's package is
    named; on RHEL, dnf's alone."""
    from build_httpd import features, systems
    empty = tmp_path / "empty"
    (empty / "include").mkdir(parents=True)
    monkeypatch.setattr(systems, "this_system", lambda: None)
    with pytest.raises(MissingRequirementError) as e:
        decided(settings({"ssl-dir": str(empty)}))
    text = str(e.value)
    for needle in ("ssl-dir: OpenSSL is wanted from this system", "HTTPS (mod_ssl)", "openssl/ssl.h",
                   f"not found in {empty / 'include'}", "libssl-dev", "openssl-devel", "openssl-dev",
                   "brew install openssl@3", "nothing was compiled", "ssl=auto (or builtin) and no ssl-dir"):
        assert needle in text, needle
    monkeypatch.setattr(features, "find_headers", lambda feature, *a, **k: ())
    monkeypatch.setattr(systems, "this_system", lambda: "fedora")
    with pytest.raises(MissingRequirementError) as e:
        decided(settings({"ssl": "system"}))
    assert "ssl=system: OpenSSL is wanted from this system" in str(e.value) and "by the C compiler" in str(e.value)
    assert "(dnf install openssl-devel)" in str(e.value) and "apt-get" not in str(e.value)


def test_auto_builds_in_a_library_whose_headers_are_missing(monkeypatch):
    """auto never leaves a feature out: the compiler does not see brotli's headers, so brotli is
    built from its recipe, saying why and how to link the system's instead."""
    from build_httpd import features, systems
    found = features.find_headers
    monkeypatch.setattr(features, "find_headers", lambda feature, *a, **k: () if feature.name == "brotli"
                        else found(feature, *a, **k))
    monkeypatch.setattr(systems, "this_system", lambda: "debian")
    decisions = decided(settings())
    brotli = decisions["brotli"]
    assert brotli.built and brotli.builtin and brotli.source == "built in"
    assert brotli.reason == (f"brotli {RECIPES['brotli'].version} built in (its headers (brotli/encode.h) were not "
                             "found by the C compiler; apt-get install libbrotli-dev links the system's instead)")
    assert brotli.configure_args("/v") == ("--with-brotli=/v",)
    assert brotli.fingerprint == RECIPES["brotli"].source.sha256
    assert decisions["ssl"].source == "system"


def test_a_library_neither_found_nor_buildable_is_one_message_naming_both_ways(monkeypatch):
    """brotli builds with CMake: without headers and without cmake, the build stops before
    compiling, naming the system's package, the tool's package, and off."""
    from build_httpd import features, systems
    monkeypatch.setattr(systems, "this_system", lambda: "debian")
    monkeypatch.setattr(features, "find_headers", lambda feature, *a, **k: ())
    with pytest.raises(MissingRequirementError) as e:
        decided(settings(), have=lambda tool: tool != "cmake")
    text = str(e.value)
    for needle in ("brotli, for brotli compression of responses (mod_brotli)", "apt-get install libbrotli-dev",
                   "building it in needs cmake, which is not installed or does not run here (apt-get install cmake)", "brotli=off",
                   "neither on this system nor can it be built in here, so nothing was compiled"):
        assert needle in text, text
    off = {n: "off" for n in FEATURES if "off" in FEATURES[n].modes}
    assert decided(settings(off), have=lambda t: t != "perl")["brotli"].on_purpose  # only OpenSSL needs Perl
    with pytest.raises(MissingRequirementError) as e:  # expat cannot be off: no such way out is offered
        decided(settings(off), have=lambda t: t != "cmake")
    assert "expat, for XML parsing" in str(e.value) and "expat=off" not in str(e.value)


def test_a_found_feature_adds_its_directory_to_configure(tmp_path):
    """ci/test installs libssl-dev: OpenSSL's headers are there for the compiler to find."""
    decisions = decided(settings())
    assert decisions["ssl"].built and not decisions["ssl"].builtin, decisions["ssl"].reason
    assert decisions["ssl"].reason.startswith("the system's: openssl/ssl.h found by the C compiler")
    assert decisions["ssl"].configure_args() == ()
    assert decisions["ssl"].configure_args("/opt/ssl") == ("--with-ssl=/opt/ssl",)
    assert len(decisions["ssl"].fingerprint) == 64


def test_off_feature_is_off_without_looking():
    decisions = decided(settings({"ssl": "off", "http2": "off"}))
    assert decisions["ssl"].configure_args() == ("--disable-ssl",)
    assert "ssl=off" in decisions["ssl"].reason and decisions["ssl"].on_purpose


def test_header_probe_uses_the_real_compiler(tmp_path):
    env = {"PATH": "/usr/bin:/bin"}
    assert header_visible("stdio.h", "cc", env)
    assert not header_visible("no/such/header.h", "cc", env)
    assert not header_visible("stdio.h", "cc", env, include_dir=Path(tmp_path))


def test_a_library_directory_without_its_pkgconfig_file_is_refused(tmp_path):
    """httpd's configure would take the system's OpenSSL from pkg-config instead of DIR's."""
    import shutil
    (tmp_path / "include").mkdir()
    shutil.copytree("/usr/include/openssl", tmp_path / "include" / "openssl")
    with pytest.raises(MissingRequirementError) as e:
        decided(settings({"ssl-dir": str(tmp_path)}))
    assert "lib/pkgconfig/openssl.pc" in str(e.value) and "quietly link the system's OpenSSL" in str(e.value)
    (tmp_path / "lib" / "pkgconfig").mkdir(parents=True)
    (tmp_path / "lib" / "pkgconfig" / "openssl.pc").write_text("Name: OpenSSL\n")
    assert decided(settings({"ssl-dir": str(tmp_path)}))["ssl"].built


def test_the_portable_profile_is_a_setting_and_refuses_library_directories(tmp_path):
    assert settings().profile.name == "system" and not settings().profile.vendors
    assert settings({"profile": "Portable"}).profile.name == "portable"
    assert settings(env={"MOD_WSGI_HTTPD_PROFILE": "portable"}).profile.vendors
    with pytest.raises(SettingError) as e:
        settings({"profile": "static"})
    assert "profile=system or profile=portable" in str(e.value)
    with pytest.raises(SettingError) as e:
        settings({"profile": "portable", "ssl-dir": str(tmp_path)})
    assert "ssl-dir" in str(e.value) and "builds its own" in str(e.value)


def test_portable_decisions_build_every_feature_from_its_recipe_unless_off():
    decisions = decided(settings({"profile": "portable", "brotli": "off"}))
    assert not decisions["brotli"].built and decisions["brotli"].reason == "brotli=off was asked for"
    ssl = decisions["ssl"]
    assert ssl.builtin and "OpenSSL 3.5" in ssl.reason and ssl.fingerprint == RECIPES["openssl"].source.sha256


def test_portable_configure_points_every_feature_at_the_vendor_prefix(tmp_path):
    from build_httpd.build import configure_args
    s = settings({"profile": "portable", "brotli": "off"})
    decisions = decided(s)
    recipes = chosen_recipes(RECIPES, decisions)
    assert "brotli" not in recipes and "brotli" not in recipes["httpd"].depends  # off: not built at all
    vendor = tmp_path / "vendor"
    httpd = configure_args(recipes["httpd"], tmp_path / "stage", decisions, s, tmp_path / "cache", vendor)
    assert f"--with-ssl={vendor}" in httpd and f"--with-nghttp2={vendor}" in httpd and "--disable-brotli" in httpd
    assert {"--enable-ssl-staticlib-deps", "--enable-nghttp2-staticlib-deps", "--enable-curl-staticlib-deps",
            "--prefix=/mod_wsgi.httpd"} <= set(httpd)
    openssl = configure_args(recipes["openssl"], tmp_path / "stage", decisions, s, tmp_path / "cache", vendor)
    assert f"--prefix={vendor}" in openssl and "no-shared" in openssl
    curl = configure_args(recipes["curl"], tmp_path / "stage", decisions, s, tmp_path / "cache", vendor)
    assert f"--with-openssl={vendor}" in curl and recipes["curl"].depends == ("openssl",)
    assert "--with-tls=openssl" in configure_args(recipes["openldap"], tmp_path, decisions, s, tmp_path / "c", vendor)


def test_a_library_built_in_beside_the_system_s_uses_the_system_s_openssl(tmp_path, monkeypatch):
    """The system's OpenSSL (its headers found) and mod_md's libraries built in: libcurl and
    OpenLDAP speak TLS with the system's OpenSSL, no OpenSSL is built, and only what is built in
    links its archives' dependencies (--enable-curl-staticlib-deps, not ssl's)."""
    from build_httpd import features
    from build_httpd.build import configure_args
    found = features.find_headers
    monkeypatch.setattr(features, "find_headers", lambda feature, *a, **k: () if feature.name in ("md", "ldap")
                        else found(feature, *a, **k))
    s = settings()
    decisions = decided(s)
    assert [n for n, d in decisions.items() if d.builtin] == ["md", "ldap"]
    recipes = chosen_recipes(RECIPES, decisions)
    assert set(recipes) == {"apr", "apr-util", "pcre2", "httpd", "curl", "jansson", "openldap"}
    assert recipes["curl"].depends == () and "openssl" not in recipes["httpd"].depends
    vendor = tmp_path / "v"
    args = {n: configure_args(r, tmp_path, decisions, s, tmp_path / "c", vendor) for n, r in recipes.items()}
    assert "--with-openssl" in args["curl"] and not any(a.startswith("--with-openssl=") for a in args["curl"])
    assert "--with-tls=openssl" in args["openldap"]
    assert "--enable-curl-staticlib-deps" in args["httpd"] and "--enable-ssl-staticlib-deps" not in args["httpd"]
    assert f"--with-curl={vendor}" in args["httpd"] and not any(a.startswith("--with-ssl=") for a in args["httpd"])
    assert f"--with-ldap-lib={vendor}/lib" in args["apr-util"]
    # ssl built in: session-crypto uses that same OpenSSL, and libcurl links it
    decisions = decided(settings({"ssl": "builtin"}))
    assert decisions["ssl"].builtin and decisions["session-crypto"].builtin
    assert decisions["ssl"].reason.endswith("built in (ssl=builtin was asked for)")
    recipes = chosen_recipes(RECIPES, decisions)
    assert recipes["curl"].depends == ("openssl",)
    assert f"--with-openssl={vendor}" in configure_args(recipes["curl"], tmp_path, decisions, s, tmp_path / "c", vendor)


def test_built_in_libraries_are_found_first_and_the_system_s_still_found(tmp_path):
    """A build that mixes: the vendor prefix first for pkg-config, headers and libraries, the
    system's pkg-config files after it; the portable profile sees nothing but the vendor prefix."""
    some = chosen_recipes(RECIPES, decided(settings({"brotli": "builtin"})))
    system = settings().profile
    env = system.build_environment({"PKG_CONFIG_PATH": "/opt/pc", "LDFLAGS": "-Wl,-z,now"}, tmp_path, some)
    assert env["PKG_CONFIG_PATH"] == f"{tmp_path}/lib/pkgconfig:/opt/pc" and "PKG_CONFIG_LIBDIR" not in env
    assert env["CPATH"] == f"{tmp_path}/include" and env["LDFLAGS"] == f"-L{tmp_path}/lib -Wl,-z,now"
    assert system.environment({}, some)["LDFLAGS"] == "-Wl,--exclude-libs,libbrotlienc.a:libbrotlicommon.a:libbrotlidec.a"
    none = chosen_recipes(RECIPES, decided(settings()))
    assert system.build_environment({"LDFLAGS": "x"}, tmp_path, none) == {"LDFLAGS": "x"}
    portable = settings({"profile": "portable"}).profile
    assert portable.build_environment({}, tmp_path, some)["PKG_CONFIG_LIBDIR"] == f"{tmp_path}/lib/pkgconfig"


def test_the_target_is_a_setting_and_a_cross_build_is_one_place(tmp_path, monkeypatch):
    """-C target=aarch64 on an x86_64 machine: the cross toolchain in the environment, each
    recipe's cross arguments, the wheel's platform, what the prefix records, and the build key."""
    from build_httpd import profile
    from build_httpd.build import build_env, configure_args
    monkeypatch.setattr(profile, "build_machine", lambda: "x86_64")
    monkeypatch.setattr(profile, "host_libc", lambda: "glibc")
    assert not settings().target.cross and "target" not in settings().describe()
    s = settings({"profile": "portable", "target": "arm64"}, env={})
    assert s.target.machine == "aarch64" and s.target.cross and s.describe()["target"] == "manylinux_2_31_aarch64"
    assert s.target.wheel_platform == "linux_aarch64" and s.target.name == "manylinux_2_31_aarch64"
    assert settings({"target": "musllinux_1_2_aarch64"}).target.libc.name == "musl"
    with pytest.raises(SettingError) as e:
        settings({"target": "sparc"})
    assert "target=" + "|".join(profile.TARGETS) in str(e.value)
    env = build_env(s, "1")
    assert env["CC"] == "aarch64-linux-gnu-gcc" and env["AR"] == "aarch64-linux-gnu-ar" and env["CC_FOR_BUILD"] == "cc"
    decisions = decided(s)
    recipes = chosen_recipes(RECIPES, decisions)
    args = {n: configure_args(r, tmp_path, decisions, s, tmp_path / "cache", tmp_path / "v") for n, r in recipes.items()}
    assert "--host=aarch64-linux-gnu" in args["apr"] and "--host=aarch64-linux-gnu" in args["httpd"]
    assert "linux-aarch64" in args["openssl"] and "-DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc" in args["nghttp2"]
    native = settings({"profile": "portable"}, env={})
    assert "--host=aarch64-linux-gnu" not in configure_args(recipes["apr"], tmp_path, decisions, native,
                                                           tmp_path / "cache", tmp_path / "v")
    names = recorded_toolchain(s.target)
    assert names["aarch64-linux-gnu-gcc"] == "cc" and names["aarch64-linux-gnu-ar"] == "ar"
    assert recorded_toolchain(native.target) == {}


def test_the_recorded_cross_toolchain_becomes_the_target_s_own(tmp_path):
    from build_httpd.profile import TARGETS
    from build_httpd.relocate import name_native_toolchain
    (tmp_path / "build").mkdir()
    mk = tmp_path / "build" / "config_vars.mk"
    mk.write_text("CC = aarch64-linux-gnu-gcc\nAR = /usr/bin/aarch64-linux-gnu-ar\nGCC_AR = aarch64-linux-gnu-gcc-ar\n"
                  "LIBDIR = /usr/lib/gcc-cross/aarch64-linux-gnu/10\nHOST = --host=aarch64-linux-gnu\n")
    name_native_toolchain(tmp_path, recorded_toolchain(TARGETS["manylinux_2_31_aarch64"]))
    assert mk.read_text() == ("CC = cc\nAR = /usr/bin/ar\nGCC_AR = gcc-ar\nLIBDIR = /usr/lib/gcc/aarch64-linux-gnu/10\n"
                              "HOST = --host=aarch64-linux-gnu\n")


def test_a_cross_build_stops_first_when_target_programs_cannot_run(tmp_path, monkeypatch):
    """Configure runs the target's test programs: without binfmt/qemu (here: a compiler whose
    output this machine cannot execute) the build stops before anything is fetched, saying how
    to register qemu-user; a missing cross compiler says which Debian packages to install."""
    from build_httpd import profile
    from build_httpd.build import check_target_runs
    from build_httpd.errors import MissingRequirementError
    monkeypatch.setattr(profile, "build_machine", lambda: "x86_64")
    monkeypatch.setattr(profile, "host_libc", lambda: "glibc")
    cc = tmp_path / "fake-cc"
    cc.write_text('#!/bin/sh\nwhile [ "$1" != -o ]; do shift; done\nprintf "\\001\\002" > "$2"; chmod +x "$2"\n')
    cc.chmod(0o755)
    target = profile.TARGETS["manylinux_2_31_aarch64"]
    with pytest.raises(MissingRequirementError) as e:
        check_target_runs(target, {"CC": str(cc), "PATH": "/usr/bin:/bin"})
    assert "manylinux_2_31_aarch64 programs do not run on this x86_64" in str(e.value)
    assert "update-binfmts --enable qemu-aarch64" in str(e.value)
    with pytest.raises(MissingRequirementError) as e:
        check_target_runs(target, {"CC": str(tmp_path / "no-such-gcc"), "PATH": "/usr/bin:/bin"})
    assert "apt-get install gcc-aarch64-linux-gnu" in str(e.value) and "libc6-dev:arm64" in str(e.value)
    check_target_runs(profile.TARGETS["manylinux_2_31_x86_64"], {})  # native: nothing to check (the host runs its own programs)


def test_a_target_is_a_row_of_data_named_by_its_wheel_tag(monkeypatch):
    """Every row's name is the platform tag auditwheel must give its wheel; a machine's name alone
    means its newest glibc floor; the list command prints every row."""
    import subprocess
    import sys
    from build_httpd import profile
    monkeypatch.setattr(profile, "build_machine", lambda: "x86_64")
    for name, t in profile.TARGETS.items():
        assert name == f"{t.libc.tag}_{t.floor.replace('.', '_')}_{t.machine}", name
        assert t.arch in profile.ARCHES.values() and t.libc in profile.LIBCS.values()
    assert profile.target_named("-C target", "aarch64").name == "manylinux_2_31_aarch64"
    assert profile.target_named("-C target", "amd64").name == "manylinux_2_31_x86_64"
    listed = subprocess.run([sys.executable, "-m", "build_httpd.profile"], capture_output=True, text=True,
                            cwd=Path(__file__).parents[2], check=True).stdout.splitlines()
    assert [line.split()[0] for line in listed] == list(profile.TARGETS)


@pytest.mark.parametrize("name,cc,host", [
    ("musllinux_1_2_x86_64", "x86_64-linux-musl-gcc -idirafter /usr/x86_64-linux-gnu/include", "x86_64-linux-musl"),
    ("musllinux_1_2_aarch64", "aarch64-linux-musl-gcc -idirafter /usr/aarch64-linux-gnu/include "
                              "-mno-outline-atomics", "aarch64-linux-musl"),
    ("manylinux_2_28_x86_64", "x86_64-linux-gnu2.28-gcc", "x86_64-linux-gnu"),
    ("manylinux_2_28_aarch64", "aarch64-linux-gnu2.28-gcc", "aarch64-linux-gnu"),
])
def test_each_target_compiles_with_its_own_toolchain_and_records_plain_cc(name, cc, host, tmp_path, monkeypatch):
    """A target whose C library or floor is not the build machine's own is foreign even on the
    same architecture: its toolchain in CC (the user's CC would compile for the wrong C library),
    configure told the host triplet, plain `cc` recorded in the prefix. musl's programs get a
    thread stack Python can live in."""
    from build_httpd import profile
    from build_httpd.build import build_env, configure_args
    monkeypatch.setattr(profile, "build_machine", lambda: "x86_64")
    monkeypatch.setattr(profile, "host_libc", lambda: "glibc")
    monkeypatch.setenv("CC", "gcc")
    s = settings({"profile": "portable", "target": name}, env={})
    assert s.target.foreign and s.describe()["target"] == name
    env = build_env(s, "1")
    assert env["CC"].endswith(cc) or env["CC"] == cc, env["CC"]
    assert ("-Wl,-z,stack-size=2097152" in env["LDFLAGS"]) == (s.target.libc.name == "musl")
    decisions = decided(s)
    recipes = chosen_recipes(RECIPES, decisions)
    assert f"--host={host}" in configure_args(recipes["apr"], tmp_path, decisions, s, tmp_path / "c", tmp_path / "v")
    assert recorded_toolchain(s.target)[env["CC"]] == "cc"


def test_on_a_machine_of_the_target_s_own_c_library_its_own_cc_builds_it(monkeypatch):
    """On Alpine (musl) the musl target is the machine's own: its cc, no --host, nothing renamed;
    the glibc 2.28 floor needs its sysroot even on a glibc machine."""
    from build_httpd import profile
    monkeypatch.setattr(profile, "build_machine", lambda: "x86_64")
    monkeypatch.setattr(profile, "host_libc", lambda: "musl")
    assert profile.host_target().name == "musllinux_1_2_x86_64" and not profile.host_target().foreign
    assert profile.host_target().environment({"CC": "gcc"})["CC"] == "gcc"
    # the build's helper programs too (APR's configure would pick `gcc`, whatever cc is)
    assert profile.host_target().environment({"CC": "/opt/musl/cc/cc"})["CC_FOR_BUILD"] == "/opt/musl/cc/cc"
    assert profile.host_target().environment({})["CC_FOR_BUILD"] == "cc"
    assert profile.host_target().environment({"CC_FOR_BUILD": "gcc"})["CC_FOR_BUILD"] == "gcc"  # the user's word
    monkeypatch.setattr(profile, "host_libc", lambda: "glibc")
    assert profile.TARGETS["manylinux_2_28_x86_64"].foreign and not profile.host_target().foreign


def test_every_debian_module_is_a_feature_found_as_its_distribution_installs_it():
    """ci/test installs the -dev packages: Lua's headers in include/lua5.4/, libxml2's where only
    pkg-config's -I finds them, mod_md's two libraries; each found, with its version."""
    decisions = decided(settings())
    for name in ("lua", "proxy-html", "md", "ldap", "session-crypto"):
        assert decisions[name].built and not decisions[name].builtin, (name, decisions[name].reason)
        assert decisions[name].version[:1].isdigit(), (name, decisions[name].version)
    assert "lua5.4/lua.h" in decisions["lua"].reason
    assert "curl/curl.h, jansson.h" in decisions["md"].reason
    assert decisions["proxy-html"].configure_args() == ()


def every_header_found(monkeypatch):
    """The compiler sees every feature's headers, whatever this machine has installed."""
    from build_httpd import features
    monkeypatch.setattr(features, "find_headers", lambda feature, *a, **k: tuple(h[0] for h in feature.headers))
    monkeypatch.setattr(features, "header_fingerprint", lambda *a, **k: "f")
    monkeypatch.setattr(features, "header_version", lambda *a, **k: "1.0")


def test_a_feature_reaches_the_configure_of_every_component_it_needs(tmp_path, monkeypatch):
    """ldap and session-crypto switch APR-util's LDAP and crypto on or off with their modules."""
    from build_httpd.build import configure_args
    every_header_found(monkeypatch)
    recipes = load_recipes()
    args = {}
    for ssl in ("auto", "off"):
        s = settings({"ssl": ssl, "ldap": "auto" if ssl == "auto" else "off"})
        decisions = decided(s)
        args[ssl] = {n: configure_args(recipes[n], tmp_path, decisions, s, tmp_path / "cache", tmp_path / "v")
                     for n in ("apr-util", "httpd")}
    assert {"--with-ldap", "--with-crypto", "--with-openssl"} <= set(args["auto"]["apr-util"])
    assert not {"--without-ldap", "--without-crypto"} & set(args["auto"]["apr-util"])
    assert "session_crypto" in next(a for a in args["auto"]["httpd"] if a.startswith("--enable-mods-shared="))
    # ssl off: session-crypto (same OpenSSL) and md (needs mod_ssl) are off too, everywhere
    assert {"--without-ldap", "--without-crypto", "--without-openssl"} <= set(args["off"]["apr-util"])
    assert {"--disable-session-crypto", "--disable-md", "--disable-ldap", "--disable-authnz-ldap"} <= set(args["off"]["httpd"])


def test_a_feature_that_needs_another_is_refused_alone_in_one_message():
    decisions = decided(settings({"ssl": "off"}))
    assert not decisions["md"].built and "needs ssl" in decisions["md"].reason and decisions["md"].on_purpose
    for mode in ("system", "builtin"):
        with pytest.raises(MissingRequirementError) as e:
            decided(settings({"ssl": "off", "md": mode}))
        assert f"md={mode} needs ssl" in str(e.value) and "md=off" in str(e.value)


def test_the_portable_profile_builds_every_feature_in():
    decisions = decided(settings({"profile": "portable"}))
    assert decisions["lua"].built and decisions["lua"].version == RECIPES["lua"].version
    assert decisions["proxy-html"].built and decisions["proxy-html"].version == RECIPES["libxml2"].version
    assert all(d.builtin and not d.on_purpose for d in decisions.values()), decisions
    # mod_md's two libraries, each named with its version; APR-util's crypto is mod_ssl's OpenSSL recipe
    assert decisions["md"].reason == "libcurl and Jansson (curl 8.22.0, jansson 2.15.1) built in (portable profile)"
    assert decisions["md"].fingerprint == RECIPES["curl"].source.sha256 + RECIPES["jansson"].source.sha256
    assert decisions["session-crypto"].version == RECIPES["openssl"].version
    assert decisions["ldap"].version == RECIPES["openldap"].version


def test_a_feature_no_recipe_builds_and_no_system_library_is_an_error_saying_so(monkeypatch):
    from build_httpd import features
    monkeypatch.setattr(features, "find_headers", lambda feature, *a, **k: ())
    recipes = {n: r for n, r in RECIPES.items() if n != "openldap"}
    with pytest.raises(MissingRequirementError) as e:
        decide(FEATURES, settings(), recipes, "cc", PATH)
    assert "OpenLDAP, for LDAP authentication" in str(e.value) and "no recipe here builds it" in str(e.value)
    assert "ldap=off" in str(e.value)


# -- every message whole, every setting's effect (mutation testing found these unasserted) --------

SMALL = {"ssl": ("auto", "system", "required", "off"), "expat": ("required",), "session-crypto": ("auto", "off")}
OPTIONS = ("profile=system|portable, target=" + "|".join(__import__("build_httpd.profile").profile.TARGETS)
           + ", jobs=N, sources=DIR, cache-dir=DIR, cache=on|off, strip=on|off, keep-build=on|off, "
           "ssl=auto|system|required|off, expat=required, session-crypto=auto|off, ssl-dir=DIR")


def small(config=None, env=None):
    return load_settings(config, SMALL, environ=env or {}, with_dirs=["ssl"])


@pytest.mark.parametrize("config,env,message", [
    ({"colour": "blue", "size": "9"}, {},
     "unknown config setting -C colour, -C size. mod_wsgi-httpd does not know it. What to do: use one of: "
     + OPTIONS + "."),
    ({"session-crypto-dir": "/x"}, {},
     "unknown config setting -C session-crypto-dir. mod_wsgi-httpd does not know it. What to do: use one of: "
     + OPTIONS + "."),
    ({"strip": "maybe"}, {},
     "-C strip is 'maybe'. it is a yes/no setting. What to do: use one of 1, true, yes, on or 0, false, no, off."),
    ({"jobs": "0"}, {}, "-C jobs is '0'. it is the number of parallel compile jobs. What to do: use a whole "
     f"number of 1 or more (this machine has {__import__('os').cpu_count()} CPUs)."),
    ({}, {"MOD_WSGI_HTTPD_SOURCES": "/no/such/dir"},
     "MOD_WSGI_HTTPD_SOURCES is '/no/such/dir', which is not a directory. it names a directory holding source "
     "tarballs. What to do: create it, correct the path, or unset it."),
    ({"profile": "tiny"}, {},
     "-C profile is 'tiny'. the build profiles are system (link the system's OpenSSL, nghttp2, brotli, zlib, "
     "expat, Lua, libxml2, libcurl, Jansson and OpenLDAP where their headers are found, and build in from the "
     "recipes those that are not); portable (build OpenSSL, nghttp2, brotli, zlib, "
     "expat, Lua, libxml2, libcurl and Jansson in, static, symbols hidden, and OpenLDAP as a shared library of its "
     "own). What to do: use profile=system or profile=portable."),
    ({"session-crypto": "required"}, {},
     "-C session-crypto is 'required'. the session-crypto feature accepts auto, off. What to do: use "
     "session-crypto=auto|off."),
    ({"profile": "portable", "ssl-dir": "/opt/ssl"}, {},
     "-C ssl-dir is set, and so is profile=portable. the portable profile builds its own ssl library and never "
     "links one from a directory. What to do: drop -C ssl-dir, or build with profile=system."),
])
def test_each_refusal_is_one_whole_message(config, env, message):
    with pytest.raises(SettingError) as e:
        small(config, env)
    assert str(e.value) == message


def test_the_flags_read_their_own_settings_from_c_and_environment():
    s = small()
    assert (s.strip, s.keep_build, s.use_build_cache) == (True, False, True)
    s = small({"strip": "off", "keep-build": "yes", "cache": "no"})
    assert (s.strip, s.keep_build, s.use_build_cache) == (False, True, False)
    s = small(env={"MOD_WSGI_HTTPD_STRIP": "0", "MOD_WSGI_HTTPD_KEEP_BUILD": "TRUE"})
    assert (s.strip, s.keep_build) == (False, True)
    for word in ("1", "true", "yes", "on", " On "):
        assert small({"keep-build": word}).keep_build is True
    for word in ("0", "false", "no", "off", "OFF"):
        assert small({"strip": word}).strip is False
    # -C cache has no environment variable of its own: MOD_WSGI_HTTPD_CACHE names the cache directory
    assert small(env={"MOD_WSGI_HTTPD_CACHE": "/c"}).use_build_cache and small(
        env={"MOD_WSGI_HTTPD_CACHE": "/c"}).cache_dir == Path("/c")


def test_config_keys_are_normalised_and_the_last_of_repeated_ones_wins(tmp_path):
    s = small({"keep_build": "on", "SSL": "off", "jobs": ["7", "5", "2"], "--build-option": ["x"],
               "editable_mode": "strict", "ssl_dir": str(tmp_path), "cache_dir": str(tmp_path)})
    assert s.keep_build and s.features["ssl"] == "off" and s.jobs == 2
    assert s.feature_dirs == {"ssl": tmp_path.resolve()} and s.cache_dir == tmp_path


def test_an_empty_environment_variable_is_unset_and_values_are_trimmed(tmp_path):
    s = small(env={"MOD_WSGI_HTTPD_JOBS": "", "MOD_WSGI_HTTPD_SSL": " Required ", "MOD_WSGI_HTTPD_SOURCES": "",
                   "MOD_WSGI_HTTPD_PROFILE": " Portable "})
    assert s.features["ssl"] == "required" and s.sources_dir is None and s.profile.name == "portable"
    assert small({"sources": str(tmp_path)}).sources_dir == tmp_path


def test_jobs_default_to_the_cpu_count_and_accept_one(monkeypatch):
    assert small({"jobs": "1"}).jobs == 1 and small({"jobs": " 12 "}).jobs == 12
    monkeypatch.setattr("os.cpu_count", lambda: 5)
    assert small().jobs == 5
    monkeypatch.setattr("os.cpu_count", lambda: None)  # a machine that cannot say
    assert small().jobs == 1


def test_the_default_cache_is_the_user_s_cache_directory_for_this_package(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert small().cache_dir == tmp_path / "mod_wsgi-httpd"


def test_describe_names_what_changes_the_build_and_the_target_only_when_foreign(tmp_path):
    from build_httpd.profile import TARGETS, host_target
    native = small({"ssl": "off", "ssl-dir": str(tmp_path), "strip": "off"})
    assert native.describe() == {"features": {"ssl": "off", "expat": "required", "session-crypto": "auto"},
                                 "feature_dirs": {"ssl": str(tmp_path.resolve())}, "strip": False,
                                 "profile": "system"}
    foreign = next(name for name, t in TARGETS.items() if t.machine != host_target().machine)
    assert small({"target": foreign}).describe()["target"] == foreign


def test_a_build_tool_counts_only_when_it_runs(tmp_path):
    """A tool on PATH that cannot start (pip's musllinux cmake on musl 1.2.2) is as missing."""
    from build_httpd.features import runs
    (tmp_path / "cmake").write_text("#!/bin/sh\nexit 127\n")
    (tmp_path / "perl").write_text("#!/bin/sh\nexit 0\n")
    for tool in ("cmake", "perl"):
        (tmp_path / tool).chmod(0o755)
    env = {"PATH": str(tmp_path)}
    assert runs("perl", env) and not runs("cmake", env) and not runs("make", env)


def test_cmake_from_the_package_index_is_run_as_its_program(tmp_path, monkeypatch):
    """pip's cmake command is a Python script that needs the build environment's module path, which
    the build does not pass on: its program's own directory goes first on PATH instead."""
    import sys
    from build_httpd.build import build_env
    program = tmp_path / "data" / "bin"
    program.mkdir(parents=True)
    (program / "cmake").write_text("#!/bin/sh\n")
    (tmp_path / "cmake").mkdir()
    (tmp_path / "cmake" / "__init__.py").write_text(f"CMAKE_BIN_DIR = {str(program)!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cmake", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert build_env(settings(), "1")["PATH"] == f"{program}:/usr/bin:/bin"
    (program / "cmake").unlink()  # a broken installation: PATH as it is
    monkeypatch.delitem(sys.modules, "cmake", raising=False)
    assert build_env(settings(), "1")["PATH"] == "/usr/bin:/bin"


def test_the_hosted_build_makes_exactly_the_table_s_hosted_rows():
    """[tool.cibuildwheel] builds, per architecture and C library, in the image the target table's
    `hosted` names, and no image the table does not name: the rows say which wheel comes from where."""
    import sys
    from build_httpd.profile import TARGETS
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    linux = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["tool"]["cibuildwheel"]["linux"]
    images = {k[:-len("-image")]: v for k, v in linux.items() if k.endswith("-image")}
    hosted = {f"{t.libc.tag}-{t.machine}": t.hosted for t in TARGETS.values() if t.hosted}
    assert images == hosted
    for t in TARGETS.values():  # the image's own tag is the row's
        assert not t.hosted or t.name == f"{t.hosted}_{t.machine}", t.name


def test_a_bad_target_row_is_one_message_naming_the_file(tmp_path):
    from build_httpd.errors import RecipeError
    from build_httpd.profile import TARGETS, TARGETS_FILE, load_targets
    text = TARGETS_FILE.read_text()
    bad = tmp_path / "targets.toml"
    bad.write_text(text.replace('build_suite = "bullseye"\n', 'build_suite = "bullseye"\nsuite = "x"\n', 1))
    with pytest.raises(RecipeError) as e:
        load_targets(bad)
    assert f"{bad}: [[targets]] row 1 has unknown fields suite" in str(e.value)
    bad.write_text(text.replace('arch = "aarch64"\nlibc = "glibc"', 'arch = "sparc"\nlibc = "glibc"', 1))
    with pytest.raises(RecipeError) as e:
        load_targets(bad)
    assert "row 2 names arch 'sparc'" in str(e.value) and "x86_64, aarch64" in str(e.value)
    assert load_targets()[3] == TARGETS
