"""A toolchain built from a recipe (build_httpd/toolchain.py, recipes/toolchains/): musl for the
musllinux targets. Building it is proven by the musllinux wheel's build (test_portable_wheel.py);
here, what decides how it is built and where it lands."""

import os

import pytest

from build_httpd import profile, toolchain
from build_httpd.relocate import recorded_toolchain
from build_httpd.errors import SettingError


@pytest.fixture
def on_x86_64(monkeypatch):
    monkeypatch.setattr(profile, "build_machine", lambda: "x86_64")
    monkeypatch.setattr(profile, "host_libc", lambda: "glibc")


def test_every_target_that_names_a_recipe_has_one_and_its_command_is_what_cc_calls(on_x86_64):
    recipes = toolchain.toolchain_recipes()
    with_recipe = [t for t in profile.TARGETS.values() if t.toolchain.recipe]
    assert with_recipe and {t.toolchain.recipe for t in with_recipe} <= set(recipes)
    for target in with_recipe:
        recipe = toolchain.recipe_for(target)
        assert recipe.source.debian and recipe.license_files, recipe.name
        assert target.cc().split()[0] == target.toolchain.command.format(machine=target.machine)
        assert f"python -m build_httpd.toolchain {target.name} PREFIX" in target.install_hint()


def test_a_target_without_a_recipe_is_told_to_install_its_packages(on_x86_64):
    target = profile.TARGETS["manylinux_2_31_aarch64"]
    with pytest.raises(SettingError) as e:
        toolchain.recipe_for(target)
    assert "not built from a recipe" in e.value.what and "gcc-aarch64-linux-gnu" in e.value.fix


@pytest.mark.parametrize("name,compiler,cross_compile,gnu", [
    ("musllinux_1_2_x86_64", "gcc", "", "x86_64-linux-gnu"),
    ("musllinux_1_2_aarch64", "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-", "aarch64-linux-gnu"),
])
def test_musl_is_configured_for_the_target_s_machine_with_alpine_s_names(name, compiler, cross_compile, gnu,
                                                                         on_x86_64, tmp_path):
    target = profile.TARGETS[name]
    args = toolchain.configure_args(toolchain.recipe_for(target), target, tmp_path)
    assert f"--prefix={tmp_path}" in args and f"CC={compiler}" in args and f"--target={gnu}" in args
    assert f"CROSS_COMPILE={cross_compile}" in args
    assert "--syslibdir=/lib" in args and f"LDFLAGS=-Wl,-soname,libc.musl-{target.machine}.so.1" in args
    assert not [a for a in args if "{" in a]


def test_the_loader_is_linked_by_the_names_a_musl_system_has(on_x86_64, tmp_path):
    target = profile.TARGETS["musllinux_1_2_aarch64"]
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "ld-musl-aarch64.so.1").symlink_to("/nowhere")  # an earlier musl's: replaced
    made = toolchain.link_loader(target, tmp_path / "musl", root=tmp_path)
    assert sorted(p.name for p in made) == ["ld-musl-aarch64.so.1", "libc.musl-aarch64.so.1"]
    assert {os.readlink(p) for p in made} == {str(tmp_path / "musl" / "lib" / "libc.so")}


def test_a_prefix_that_holds_something_else_is_refused_before_anything_is_fetched(on_x86_64, tmp_path):
    (tmp_path / "other").write_text("a user's file")
    with pytest.raises(SettingError) as e:
        toolchain.build_toolchain(profile.TARGETS["musllinux_1_2_x86_64"], tmp_path)
    assert "is not empty" in e.value.what and (tmp_path / "other").read_text() == "a user's file"


def test_a_made_toolchain_s_directories_are_recorded_as_the_target_s_own(on_x86_64, tmp_path, monkeypatch):
    """libtool records its library search path: /opt/toolchain/sysroot/usr/lib/… is the target's
    /usr/lib/… there, and musl's prefix is the target's /usr."""
    for name, command in (("manylinux_2_28_x86_64", "x86_64-linux-gnu2.28-gcc"),
                          ("musllinux_1_2_x86_64", "x86_64-linux-musl-gcc")):
        bin_dir = tmp_path / name / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / command).write_text("#!/bin/sh\n")
        (bin_dir / command).chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
        names = recorded_toolchain(profile.TARGETS[name])
        assert names[f"{tmp_path / name}/sysroot"] == "" and names[str(tmp_path / name)] == "/usr"
        assert names[profile.TARGETS[name].cc()] == "cc"
