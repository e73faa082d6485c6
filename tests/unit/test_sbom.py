"""The SBOM: what vulnerability scanners read. Every component carries a CPE 2.3 and a package URL
that the databases use, the system profile names the system libraries it links with the versions
it was built against, and the document validates against CycloneDX's schema."""

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

import json

from build_httpd import report
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

