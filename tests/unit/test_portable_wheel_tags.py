"""ci/portable_wheel.py's tag logic: which tag auditwheel may give a target's wheel, read with
packaging (not by pattern on the file name), and what is added to it."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "ci"))
import portable_wheel  # noqa: E402


@pytest.mark.parametrize("tag, target, older", [
    ("manylinux_2_26_x86_64", "manylinux_2_28_x86_64", True),
    ("manylinux_2_28_x86_64", "manylinux_2_28_x86_64", True),
    ("manylinux_2_17_aarch64", "manylinux_2_31_aarch64", True),
    ("manylinux_2_34_x86_64", "manylinux_2_31_x86_64", False),   # newer than the floor
    ("manylinux_2_26_aarch64", "manylinux_2_28_x86_64", False),  # another architecture
    ("musllinux_1_1_x86_64", "manylinux_2_28_x86_64", False),    # another C library
    ("manylinux_2_9_x86_64", "manylinux_2_10_x86_64", True),     # numbers, not strings
    ("linux_x86_64", "manylinux_2_28_x86_64", False),
])
def test_a_tag_older_than_the_target_is_of_its_family_and_architecture(tag, target, older):
    assert portable_wheel.older_than(tag, target) is older


def test_the_platform_tags_come_from_the_wheel_name_read_by_packaging():
    name = "mod_wsgi_httpd-2.4.69.4-py3-none-manylinux_2_26_x86_64.manylinux_2_28_x86_64.whl"
    assert portable_wheel.platform_tags(Path(name)) == ("manylinux_2_26_x86_64", "manylinux_2_28_x86_64")


def test_a_wheel_tagged_for_another_machine_stops_the_build(tmp_path):
    wheel = tmp_path / "mod_wsgi_httpd-2.4.69.4-py3-none-manylinux_2_17_aarch64.whl"
    with pytest.raises(portable_wheel.Failure, match="not manylinux_2_28_x86_64"):
        portable_wheel.with_target_tag(wheel, "manylinux_2_28_x86_64", {})


def test_a_wheel_with_the_target_tag_is_kept_as_it_is(tmp_path):
    wheel = tmp_path / "mod_wsgi_httpd-2.4.69.4-py3-none-manylinux_2_26_x86_64.manylinux_2_28_x86_64.whl"
    assert portable_wheel.with_target_tag(wheel, "manylinux_2_28_x86_64", {}) == wheel


def test_the_offline_step_refuses_a_namespace_with_a_network(monkeypatch):
    real_open = open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/net/dev":
            import io
            return io.StringIO("Inter-|   Receive\n face |bytes\n    lo: 0 0\n  eth0: 1 2\n")
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr("builtins.open", fake_open)
    with pytest.raises(portable_wheel.Failure, match="not offline .*eth0"):
        portable_wheel.offline(["true"])
