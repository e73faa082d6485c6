"""A missing library or tool is named in the words of the system the build runs on."""

import pytest

from build_httpd import systems
from build_httpd.errors import MissingRequirementError
from build_httpd.recipes import all_features, load_recipes
from build_httpd.run import which

OS_RELEASES = {
    "rocky": ('ID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="8.10"\n', "fedora", "dnf install"),
    "alpine": ("ID=alpine\nVERSION_ID=3.20.3\n", "alpine", "apk add"),
    "ubuntu": ("ID=ubuntu\nID_LIKE=debian\n", "debian", "apt-get install"),
    "arch": ("ID=arch\n", None, None),
}


@pytest.mark.parametrize("name", OS_RELEASES)
def test_the_system_is_known_from_os_release(name, tmp_path):
    text, key, _ = OS_RELEASES[name]
    (tmp_path / "os-release").write_text(text)
    assert systems.this_system(tmp_path / "os-release") == key


@pytest.mark.parametrize("name", OS_RELEASES)
def test_every_feature_library_is_named_for_each_system(name):
    _, key, command = OS_RELEASES[name]
    for feature in all_features(load_recipes()).values():
        hint = systems.how_to_install(feature.packages, key)
        if key is None:  # a system the data does not know: every known system's words
            assert "Debian/Ubuntu: apt-get install" in hint and "Alpine: apk add" in hint, hint
        else:
            assert hint == f"{command} {feature.packages[key]}"


def test_a_missing_tool_names_the_package_of_this_system(monkeypatch):
    monkeypatch.setattr(systems, "this_system", lambda: "alpine")
    with pytest.raises(MissingRequirementError) as e:
        which("patch", "to apply the patches", {"PATH": "/nonexistent"})
    assert "apk add patch" in str(e.value) and "apt-get" not in str(e.value)
    monkeypatch.setattr(systems, "this_system", lambda: "fedora")
    with pytest.raises(MissingRequirementError) as e:
        which("x86_64-linux-gnu-gcc -O2", "to compile", {"PATH": "/nonexistent"})
    assert "dnf install gcc make" in str(e.value)
    with pytest.raises(MissingRequirementError) as e:
        which("readelf", "to read", {"PATH": "/nonexistent"})
    assert "dnf install binutils" in str(e.value)
    with pytest.raises(MissingRequirementError) as e:
        which("patchelf", "to set RUNPATHs", {"PATH": "/nonexistent"})
    assert "dnf install patchelf" in str(e.value) and "gcc" not in str(e.value)
