"""The SBOM: what vulnerability scanners read. Every component carries a CPE 2.3 and a package URL
that the databases use, the system profile names the system libraries it links with the versions
it was built against, and the document validates against CycloneDX's schema."""

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

import json

from build_httpd import report
from build_httpd.errors import BuildError
from build_httpd.system_packages import SystemPackage
from build_httpd.features import Decision
from build_httpd.recipes import all_features, load_recipes

EXPECTED_CPE = {
    "httpd": "apache:http_server", "apr": "apache:portable_runtime", "apr-util": "apache:apr-util",
    "pcre2": "pcre:pcre2", "openssl": "openssl:openssl", "nghttp2": "nghttp2:nghttp2",
    "brotli": "google:brotli", "zlib": "zlib:zlib", "expat": "libexpat_project:libexpat",
    "lua": "lua:lua", "libxml2": "xmlsoft:libxml2", "curl": "haxx:libcurl", "jansson": "jansson_project:jansson",
    "openldap": "openldap:openldap",
}
# where the source lives, as package URLs name it (lua.org and GNOME's GitLab are not on GitHub)
PURL_TYPE = {"lua": "generic", "libxml2": "gitlab", "openldap": "generic"}


def validate(document):
    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(json.dumps(document))
    assert error is None, getattr(error.data, "message", error)


def system_decisions(recipes, versions):
    return {name: Decision(f, "auto", name in versions, "test", "", versions.get(name, ""))
            for name, f in all_features(recipes).items()}


@pytest.mark.parametrize("profile", ["system", "portable"])
def test_every_component_has_the_cpe_and_purl_scanners_match(profile):
    recipes = load_recipes(profile=profile)
    decisions = system_decisions(recipes, {"ssl": "3.0.19", "expat": "2.5.0"})
    document = report.sbom(recipes, profile, decisions)
    validate(document)
    shipped = [c for c in document["components"] if c.get("scope") != "excluded"]
    assert {c["name"] for c in shipped} == set(recipes)
    for component in shipped:
        vendor_product = EXPECTED_CPE[component["name"]]
        assert component["cpe"] == f"cpe:2.3:a:{vendor_product}:{component['version']}:*:*:*:*:*:*:*"
        purl = PackageURL.from_string(component["purl"])
        assert purl.type == PURL_TYPE.get(component["name"], "github") and purl.version and component["version"].replace(".", "_") in \
            purl.version.replace(".", "_")


def test_the_system_profile_lists_the_libraries_it_links_with_their_versions():
    recipes = load_recipes(profile="system")
    document = report.sbom(recipes, "system", system_decisions(recipes, {"ssl": "3.0.19", "expat": "2.5.0",
                                                                         "brotli": ""}))
    validate(document)
    external = {c["name"]: c for c in document["components"] if c.get("scope") == "excluded"}
    assert set(external) == {"openssl", "expat", "brotli"}  # only what was built (http2, deflate not)
    # a feature library no recipe builds is named by the feature (mod_md's libcurl)
    with_md = report.sbom(recipes, "system", system_decisions(recipes, {"ssl": "3.0.19", "md": "8.14.1"}))
    validate(with_md)
    curl = next(c for c in with_md["components"] if c["name"] == "curl")
    assert curl["cpe"] == "cpe:2.3:a:haxx:libcurl:8.14.1:*:*:*:*:*:*:*" and curl["scope"] == "excluded"
    assert external["openssl"]["cpe"] == "cpe:2.3:a:openssl:openssl:3.0.19:*:*:*:*:*:*:*"
    assert external["expat"]["purl"] == "pkg:github/libexpat/libexpat@R_2_5_0"
    # brotli's headers declare no version: no CPE that would match every release
    assert "cpe" not in external["brotli"] and "@" not in external["brotli"]["purl"]
    top = next(d for d in document["dependencies"] if d["ref"].startswith("mod_wsgi-httpd@"))
    assert "openssl@3.0.19" in top["dependsOn"]


def test_the_portable_profile_lists_no_system_library():
    recipes = load_recipes(profile="portable")
    document = report.sbom(recipes, "portable", system_decisions(recipes, {"ssl": "3.5.7"}))
    assert not [c for c in document["components"] if c.get("scope") == "excluded"]
    openssl = next(c for c in document["components"] if c["name"] == "openssl")
    patches = [p["value"] for p in openssl["properties"] if p["name"] == "mod_wsgi-httpd:patch"]
    assert any("CVE-" in p for p in patches)


def test_a_system_build_names_what_it_built_in_and_why_apart_from_the_system_s():
    """The system's OpenSSL, brotli built in (its headers were missing): brotli is a shipped
    component saying why it is built in, OpenSSL an excluded system one, brotli not that too."""
    from build_httpd.features import chosen_recipes
    from build_httpd.recipes import every_recipe
    recipes = every_recipe()
    decisions = system_decisions(recipes, {"ssl": "3.0.19", "expat": "2.5.0"})
    why = "brotli 1.1.0 built in (its headers (brotli/encode.h) were not found by the C compiler)"
    decisions["brotli"] = Decision(decisions["brotli"].feature, "auto", True, why, "x", "1.1.0", builtin=True)
    document = report.sbom(chosen_recipes(recipes, decisions), "system", decisions)
    validate(document)
    by_name = {c["name"]: c for c in document["components"]}
    assert by_name["openssl"]["scope"] == "excluded" and "scope" not in by_name["brotli"]
    assert {"name": "mod_wsgi-httpd:built-in", "value": why} in by_name["brotli"]["properties"]
    assert [c["name"] for c in document["components"]].count("brotli") == 1
    assert not {"curl", "nghttp2", "lua"} & set(by_name)


def deb(name, version):
    return SystemPackage("deb", "debian", "12", name, version, "amd64")


# what a system build on Debian 12 links (relocate.linked): the package's own libraries, and the
# system's, whose files the compiler finds and dpkg knows
OWN = {"libapr-1.so.0": "lib/libapr-1.so.0", "libaprutil-1.so.0": "lib/libaprutil-1.so.0",
       "libpcre2-8.so.0": "lib/libpcre2-8.so.0"}
NEEDS = ("ld-linux-x86-64.so.2", "libc.so.6", "libcrypto.so.3", "libcurl.so.4", "libjansson.so.4", "libm.so.6",
         "libssl.so.3", "libuuid.so.1", "libwhatever.so.7")
PACKAGES = {"/usr/lib/ld-linux-x86-64.so.2": deb("glibc", "2.36-9+deb12u14"), "/usr/lib/libc.so.6": deb("glibc", "2.36-9+deb12u14"),
            "/usr/lib/libm.so.6": deb("glibc", "2.36-9+deb12u14"),
            "/usr/lib/libssl.so.3": deb("openssl", "3.0.17-1~deb12u2"), "/usr/lib/libcrypto.so.3": deb("openssl", "3.0.17-1~deb12u2"),
            "/usr/lib/libcurl.so.4": deb("curl", "7.88.1-10+deb12u14"), "/usr/lib/libjansson.so.4": deb("jansson", "2.14-2"),
            "/usr/lib/libuuid.so.1": deb("util-linux", "2.38.1-5+deb12u3")}


def linked_sbom(recipes, own=OWN, needs=NEEDS, libc="glibc"):
    decisions = system_decisions(recipes, {"ssl": "3.0.17", "md": "7.88.1"})
    linking = report.Linking(own, needs, libc=libc,
                             locate=lambda soname: "" if soname == "libwhatever.so.7" else f"/usr/lib/{soname}")
    return report.sbom(recipes, "system", decisions, owners=PACKAGES.get, linking=linking)


def test_every_library_a_binary_links_is_a_component_named_with_its_soname():
    document = linked_sbom(load_recipes(profile="system"))
    validate(document)
    named = {p["value"]: c for c in document["components"] for p in c.get("properties", [])
             if p["name"] == report.SONAME}
    assert set(named) == set(OWN) | set(NEEDS)
    assert {s: c["name"] for s, c in named.items() if s in OWN} == {
        "libapr-1.so.0": "apr", "libaprutil-1.so.0": "apr-util", "libpcre2-8.so.0": "pcre2"}
    # a library a feature decided on is that component (the header version it was built against)
    assert named["libssl.so.3"] is named["libcrypto.so.3"] and named["libssl.so.3"]["version"] == "3.0.17"
    assert named["libcurl.so.4"]["name"] == "curl"
    # one no feature names, by its package: the recipe's identity where one builds that upstream
    jansson = named["libjansson.so.4"]
    assert jansson["cpe"] == "cpe:2.3:a:jansson_project:jansson:2.14:*:*:*:*:*:*:*"
    assert jansson["purl"] == "pkg:deb/debian/jansson@2.14-2?arch=amd64&distro=debian-12"
    assert jansson["scope"] == "excluded"
    # else the package alone, never a guessed CPE; the C library once, for all its objects
    uuid = named["libuuid.so.1"]
    assert uuid["name"] == "util-linux" and "cpe" not in uuid and uuid["purl"].startswith("pkg:deb/debian/util-linux@")
    assert named["libc.so.6"] is named["libm.so.6"] is named["ld-linux-x86-64.so.2"]
    assert named["libc.so.6"]["name"] == "glibc"
    # a file no package owns (and the compiler cannot find) is still named, by its SONAME
    assert named["libwhatever.so.7"]["name"] == "libwhatever.so.7"
    top = next(d for d in document["dependencies"] if d["ref"].startswith("mod_wsgi-httpd@"))
    assert {"util-linux@2.38.1-5+deb12u3", "glibc@2.36-9+deb12u14", "libwhatever.so.7"} <= set(top["dependsOn"])


def test_a_c_library_no_package_owns_is_named_by_the_target_s():
    document = linked_sbom(load_recipes(profile="portable"), own={}, needs=("libc.musl-x86_64.so.1",), libc="musl")
    validate(document)
    assert any(c["name"] == "musl" and c["scope"] == "excluded" for c in document["components"])


def test_a_library_in_lib_that_no_recipe_ships_stops_the_build():
    with pytest.raises(BuildError) as e:
        linked_sbom(load_recipes(profile="system"), own=dict(OWN, **{"libfoo.so.1": "lib/libfoo.so.1"}))
    assert "no recipe says it ships lib/libfoo.so.1" in str(e.value) and "`ships`" in str(e.value)


def test_a_made_toolchain_s_files_are_named_as_the_target_has_them(tmp_path):
    """The glibc 2.28 sysroot and musl are made under a directory of the build machine; the SBOM
    names what they link as the target has it (it once said /opt/toolchain/sysroot/usr/lib/…)."""
    from build_httpd.report import as_on_target
    names = {f"{tmp_path}/sysroot": "", str(tmp_path): "/usr", "aarch64-linux-gnu-gcc": "cc",
             "/usr/lib/gcc-cross/aarch64-linux-gnu/": "/usr/lib/gcc/aarch64-linux-gnu/"}
    on_target = as_on_target(names)
    assert on_target(f"{tmp_path}/sysroot/usr/lib/aarch64-linux-gnu/libcrypt.so.1") == \
        "/usr/lib/aarch64-linux-gnu/libcrypt.so.1"
    assert on_target(f"{tmp_path}/lib/libc.so") == "/usr/lib/libc.so"
    assert on_target("/lib/x86_64-linux-gnu/libz.so.1") == "/lib/x86_64-linux-gnu/libz.so.1"
    assert on_target(f"{tmp_path}-other/lib/x.so") == f"{tmp_path}-other/lib/x.so"  # a longer name, not under it
