"""The relocation rewrites, the component scheduler and the build directory, in seconds: real ELF
files from the real compiler, real make fragments and pkg-config files."""

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from build_httpd import build, elf, relocate
from build_httpd.errors import BuildError, MissingRequirementError
from build_httpd.recipes import load_recipes

PREFIX = "/mod_wsgi.httpd"


def shared_library(lib: Path) -> None:
    """libdemo.so.1.2.3 with SONAME libdemo.so.1, and the two usual links to it."""
    lib.mkdir(parents=True, exist_ok=True)
    src = lib.parent / "demo.c"
    src.write_text("int demo(void) { return 42; }\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-Wl,-soname,libdemo.so.1", "-o", lib / "libdemo.so.1.2.3", src],
                   check=True)
    (lib / "libdemo.so.1").symlink_to("libdemo.so.1.2.3")
    (lib / "libdemo.so").symlink_to("libdemo.so.1.2.3")
    (lib / "libgone.so").symlink_to("libgone.so.0")  # dangling


def test_flatten_libraries_keeps_one_real_file_named_by_its_soname(tmp_path):
    lib = tmp_path / "lib"
    shared_library(lib)
    relocate.flatten_libraries(lib)
    assert sorted(p.name for p in lib.iterdir()) == ["libdemo.so", "libdemo.so.1"]
    assert not any(p.is_symlink() for p in lib.iterdir())
    assert relocate.is_elf(lib / "libdemo.so.1")
    assert "INPUT(libdemo.so.1)" in (lib / "libdemo.so").read_text()
    # the linker script links: -ldemo still works against the flattened directory
    main = tmp_path / "main.c"
    main.write_text("int demo(void); int main(void) { return demo() == 42 ? 0 : 1; }\n")
    subprocess.run(["cc", "-o", tmp_path / "main", main, f"-L{lib}", "-ldemo"], check=True)
    assert subprocess.run([tmp_path / "main"], env={"LD_LIBRARY_PATH": str(lib)}).returncode == 0


def test_every_binary_finds_lib_from_where_it_is_apr_utils_drivers_included(tmp_path):
    """bin/ and modules/ look in ../lib, lib/ beside itself, lib/apr-util-1/ (APR-util's LDAP and
    crypto drivers, which need the package's libldap) in .., and a driver's unversioned link goes."""
    stage = tmp_path / "stage"
    shared_library(stage / "lib")
    drivers = stage / "lib" / "apr-util-1"
    drivers.mkdir()
    src = tmp_path / "driver.c"
    src.write_text("int driver(void) { return 1; }\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-Wl,-soname,apr_demo-1.so", "-o", drivers / "apr_demo-1.so", src],
                   check=True)
    (drivers / "apr_demo.so").symlink_to("apr_demo-1.so")
    for directory, name in (("bin", "prog"), ("modules", "mod_demo.so")):
        (stage / directory).mkdir()
        shutil.copyfile(drivers / "apr_demo-1.so", stage / directory / name)
    relocate.flatten_libraries(stage / "lib")
    relocate.fix_elf(stage, strip=False)
    runpaths = {str(p.relative_to(stage)): elf.read(p).runpaths for p in relocate.files(stage)
                if relocate.is_elf(p)}
    assert runpaths == {"bin/prog": ["$ORIGIN/../lib"], "modules/mod_demo.so": ["$ORIGIN/../lib"],
                        "lib/libdemo.so.1": ["$ORIGIN"], "lib/apr-util-1/apr_demo-1.so": ["$ORIGIN/.."]}
    assert sorted(p.name for p in drivers.iterdir()) == ["apr_demo-1.so"]
    assert relocate.leftovers(stage) == []


def test_make_fragments_and_pkgconfig_files_find_their_own_prefix(tmp_path):
    build_dir = tmp_path / "build"
    build_dir.mkdir()
    (build_dir / "config_vars.mk").write_text(f"prefix = {PREFIX}\nexp_libdir = {PREFIX}/lib\n")
    (build_dir / "apr_rules.mk").write_text(f"apr_builddir={PREFIX}/build-1\n")
    pc = tmp_path / "lib" / "pkgconfig"
    pc.mkdir(parents=True)
    (pc / "apr-1.pc").write_text(f"prefix={PREFIX}\nlibdir={PREFIX}/lib\n")
    relocate.relocate_text(tmp_path, PREFIX)
    config = (build_dir / "config_vars.mk").read_text()
    assert config.splitlines()[0] == relocate.MAKE_PREFIX.format(var="prefix")
    assert "exp_libdir = $(prefix)/lib" in config and PREFIX not in config
    assert "$(mod_wsgi_httpd_prefix)/build-1" in (build_dir / "apr_rules.mk").read_text()
    assert (pc / "apr-1.pc").read_text() == "prefix=${pcfiledir}/../..\nlibdir=${prefix}/lib\n"
    # GNU make really computes the prefix from the fragment's own location
    (tmp_path / "Makefile").write_text("include build/config_vars.mk\nall:\n\t@echo $(exp_libdir)\n")
    out = subprocess.run(["make", "-s", "-C", tmp_path], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"{tmp_path}/lib"


def test_point_at_stage_touches_only_the_given_tree_and_can_run_twice(tmp_path):
    stage = tmp_path / "dest" / PREFIX.lstrip("/")
    mine, other = tmp_path / "mine", stage / "build"
    for d in (mine, other):
        d.mkdir(parents=True)
        (d / "x.mk").write_text(f"top = {PREFIX}\n")
    relocate.point_at_stage(mine, stage, PREFIX)
    relocate.point_at_stage(mine, stage, PREFIX)
    assert (mine / "x.mk").read_text() == f"top = {stage}\n"
    assert (other / "x.mk").read_text() == f"top = {PREFIX}\n"
    assert [p.name for p in mine.iterdir()] == ["x.mk"]  # no temporary file left


def test_scrub_and_leftovers(tmp_path):
    work = tmp_path / "work"
    stage = work / "dest" / PREFIX.lstrip("/")
    (stage / "build").mkdir(parents=True)
    (stage / "build" / "config.nice").write_text(f"--with-apr={stage}/bin --cache-file={work}/config.cache "
                                                f"{work}/src/httpd-2.4.69\n")
    (stage / "lib").mkdir()
    (stage / "lib" / "link").symlink_to("/etc")
    problems = relocate.leftovers(stage, work)
    assert any("names" in p for p in problems) and any("a symlink" in p for p in problems)
    (stage / "lib" / "link").unlink()
    relocate.scrub_build_paths(stage, work, PREFIX)
    assert (stage / "build" / "config.nice").read_text() == (
        f"--with-apr={PREFIX}/bin --cache-file={PREFIX}-build/config.cache {PREFIX}-build/httpd-2.4.69\n")
    assert relocate.leftovers(stage, work) == []


def test_a_runpath_leaving_the_package_is_reported(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    src = tmp_path / "p.c"
    src.write_text("int main(void) { return 0; }\n")
    subprocess.run(["cc", "-o", bin_dir / "p", src, "-Wl,-rpath,/opt/elsewhere/lib"], check=True)
    assert any("RUNPATH entry /opt/elsewhere/lib" in p for p in relocate.leftovers(tmp_path))
    subprocess.run(["patchelf", "--set-rpath", "$ORIGIN/../lib", bin_dir / "p"], check=True)
    assert relocate.leftovers(tmp_path) == []


def test_merge_into_moves_files_and_links(tmp_path):
    own, stage = tmp_path / "own", tmp_path / "stage"
    (own / "lib").mkdir(parents=True)
    (own / "lib" / "libx.so.1").write_text("x")
    (own / "lib" / "libx.so").symlink_to("libx.so.1")
    (stage / "lib").mkdir(parents=True)
    (stage / "lib" / "liby.so").write_text("y")
    relocate.merge_into(own, stage)
    assert sorted(p.name for p in (stage / "lib").iterdir()) == ["libx.so", "libx.so.1", "liby.so"]
    assert os.readlink(stage / "lib" / "libx.so") == "libx.so.1"


# -- the scheduler --------------------------------------------------------------------------------

def test_each_component_starts_as_soon_as_its_own_dependencies_are_installed(tmp_path):
    """APR-util needs APR only: it must not wait for PCRE2 (which takes longest here)."""
    recipes = load_recipes()
    duration = {"apr": 0.1, "pcre2": 0.8, "apr-util": 0.1, "httpd": 0.1}
    events, lock = [], threading.Lock()

    def fake(job, ws, settings):
        with lock:
            events.append(("start", job.recipe.name, time.monotonic(), job.background))
        time.sleep(duration[job.recipe.name])
        with lock:
            events.append(("end", job.recipe.name, time.monotonic(), job.background))

    tarballs = {r.source.filename: None for r in recipes.values()}
    plan = build.Plan(None, recipes, {}, {}, "", "")
    build.build_all(plan, build.Workspace(tmp_path), tarballs, {n: [] for n in recipes}, build=fake)
    at = {(kind, name): t for kind, name, t, _ in events}
    assert at[("start", "apr-util")] < at[("end", "pcre2")]
    assert {name for kind, name, _, background in events if background} == {"pcre2"}  # only httpd needs it
    for name, recipe in recipes.items():
        for dep in recipe.depends:
            assert at[("end", dep)] <= at[("start", name)], (dep, name)


def test_a_failing_component_stops_the_build_with_its_error(tmp_path):
    recipes = load_recipes()

    def fake(job, ws, settings):
        if job.recipe.name == "pcre2":
            raise MissingRequirementError("pcre2 broke")

    tarballs = {r.source.filename: None for r in recipes.values()}
    plan = build.Plan(None, recipes, {}, {}, "", "")
    with pytest.raises(MissingRequirementError, match="pcre2 broke"):
        build.build_all(plan, build.Workspace(tmp_path), tarballs, {n: [] for n in recipes}, build=fake)


def test_the_libraries_only_httpd_needs_compile_in_the_background():
    """Built in, OpenSSL, libcurl, OpenLDAP, expat, APR and APR-util are the chain httpd waits for;
    the rest compile beside it at a lower priority."""
    from build_httpd.features import chosen_recipes, decide
    from build_httpd.recipes import all_features, every_recipe
    from build_httpd.settings import load_settings
    recipes = every_recipe()
    features = all_features(recipes)
    settings = load_settings({"profile": "portable"}, {n: f.modes for n, f in features.items()}, environ={})
    chosen = chosen_recipes(recipes, decide(features, settings, recipes, "cc", {}, have=lambda tool: True))
    assert build.side_branches(chosen) == {"pcre2", "nghttp2", "brotli", "zlib", "lua", "libxml2", "jansson"}


# -- the build directory --------------------------------------------------------------------------

def test_a_noexec_temporary_directory_falls_back_to_the_cache(tmp_path, monkeypatch, capsys):
    """The real noexec mount is in the integration tier (it needs root); here the decision."""
    monkeypatch.setattr(build.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(build, "_can_execute_in", lambda d: "fallback" in str(d))
    work = build._work_dir(tmp_path / "fallback")
    assert work.parent == tmp_path / "fallback" and oct(work.parent.stat().st_mode)[-3:] == "700"
    assert "mounted noexec" in capsys.readouterr().err


def test_no_directory_that_can_run_programs_is_one_clear_message(tmp_path, monkeypatch):
    monkeypatch.setattr(build.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(build, "_can_execute_in", lambda d: False)
    with pytest.raises(MissingRequirementError, match="TMPDIR"):
        build._work_dir(None)
    assert list(tmp_path.iterdir()) == []


# -- failing steps ---------------------------------------------------------------------------------

def failing_step(tmp_path, script: str) -> str:
    """Run `script` as a real build step with run(); the text of the StepError it must raise."""
    from build_httpd.errors import StepError
    from build_httpd.run import run
    (tmp_path / "step.sh").write_text(script)
    with pytest.raises(StepError) as e:
        run(["sh", str(tmp_path / "step.sh")], component="httpd", step="make", log_path=tmp_path / "make.log",
            cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    return str(e.value)


def test_a_full_disk_is_said_first(tmp_path):
    """A real ENOSPC from the kernel (/dev/full), in a step with a long libtool-like log."""
    text = failing_step(tmp_path, "for i in $(seq 60); do echo \"libtool: compile: $(printf 'x%.0s' $(seq 3000))\"; done\n"
                                  "dd if=/dev/zero of=/dev/full bs=1k count=1\n")
    assert text.startswith("make of httpd failed: the disk is full (No space left on device)")
    assert "TMPDIR" in text and str(tmp_path / "make.log") in text
    assert max(len(line) for line in text.splitlines()) < 400  # kilobyte lines are cut


def test_the_compilers_error_lines_come_first(tmp_path):
    (tmp_path / "broken.c").write_text("int main(void) { return undeclared_thing; }\n")
    text = failing_step(tmp_path, "cc -c broken.c -o broken.o\nstatus=$?\n"
                                  "for i in $(seq 30); do echo noise $i; done\nexit $status\n")
    assert text.index("error lines") < text.index("undeclared_thing") < text.index("last lines")
    assert "noise 30" in text and "noise 1\n" not in text  # the tail is short


def test_a_vendored_symbol_leaking_out_of_a_module_is_caught(tmp_path):
    """The portable profile's no-clash promise, checked on real objects: the same static archive
    linked into a module with and without -Wl,--exclude-libs."""
    (tmp_path / "vend.c").write_text("int SSL_pretend(void) { return 42; }\n")
    (tmp_path / "mod.c").write_text("int SSL_pretend(void);\nint module_entry(void) { return SSL_pretend(); }\n")
    subprocess.run(["cc", "-c", "-fPIC", "-o", tmp_path / "vend.o", tmp_path / "vend.c"], check=True)
    subprocess.run(["ar", "rcs", tmp_path / "libvend.a", tmp_path / "vend.o"], check=True)
    for name, flags in (("hidden", ["-Wl,--exclude-libs,libvend.a"]), ("leaky", [])):
        stage = tmp_path / name
        (stage / "modules").mkdir(parents=True)
        subprocess.run(["cc", "-shared", "-fPIC", "-o", stage / "modules" / "mod_x.so", tmp_path / "mod.c",
                        f"-L{tmp_path}", *flags, "-lvend"], check=True)
    relocate.check_hidden(tmp_path / "hidden", [tmp_path / "libvend.a"])
    # beside the leaky module: a text file first, and a module that needs a shared copy of the library
    (tmp_path / "leaky" / "modules" / "a-note.txt").write_text("not a binary\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-Wl,-soname,libvend.so.1", "-o", tmp_path / "libvend.so",
                    tmp_path / "vend.o"], check=True)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", tmp_path / "leaky" / "modules" / "mod_y.so", tmp_path / "mod.c",
                    tmp_path / "libvend.so"], check=True)
    with pytest.raises(BuildError) as e:
        relocate.check_hidden(tmp_path / "leaky", [tmp_path / "libvend.a"])
    assert str(e.value) == (
        "a vendored library is not private to the modules it is linked into. these would clash with the "
        "system's copies in the same process:\n  modules/mod_x.so exports SSL_pretend\n"
        "  modules/mod_y.so needs libvend.so.1. What to do: report this as a bug in mod_wsgi-httpd.")


def test_a_binary_for_another_machine_or_c_library_stops_the_build(tmp_path):
    """The target check reads every ELF file's machine and loader: this machine's /bin/true is
    right for its own glibc target and wrong for an aarch64 or a musl one."""
    from build_httpd.profile import TARGETS, host_target
    from build_httpd.relocate import check_target
    (tmp_path / "bin").mkdir()
    shutil.copy2("/bin/true", tmp_path / "bin" / "true")
    (tmp_path / "bin" / "script").write_text("#!/bin/sh\n")
    own = host_target()
    check_target(tmp_path, own.arch.elf_machine, own.libc.loader, own.name)
    other = next(t for t in TARGETS.values() if t.machine != own.machine)
    with pytest.raises(BuildError) as e:
        check_target(tmp_path, other.arch.elf_machine, other.libc.loader, other.name)
    assert str(e.value) == (
        f"the build compiled files that are not for its target {other.name}. \n"
        f"  bin/true is for ELF machine {own.arch.elf_machine}, not {other.arch.elf_machine}. What to do: unset CC, "
        "CFLAGS and LDFLAGS that name another compiler or machine, or install the target's toolchain, then "
        "build again.")
    musl = next(t for t in TARGETS.values() if t.machine == own.machine and t.libc.name != own.libc.name)
    with pytest.raises(BuildError) as e:
        check_target(tmp_path, musl.arch.elf_machine, musl.libc.loader, musl.name)
    assert f"not {musl.libc.loader}*" in str(e.value)
