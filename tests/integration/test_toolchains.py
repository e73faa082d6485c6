"""The toolchains python -m build_httpd.toolchain makes (build_httpd/toolchain.py), proven on what
they are for, with this machine's gcc: the glibc 2.28 sysroot links nothing newer than 2.28, and a
module that registers an atexit handler can be dlclose'd (httpd unloads its modules on every
graceful restart; zig's own linker gets this wrong, gcc's crtbeginS/crtendS get it right)."""

import os
import re
import subprocess

import pytest

from .conftest import ROOT, run

MODULE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
static void bye(void) { puts("module atexit ran"); fflush(stdout); }
int modfn(const char *p) { struct stat st; atexit(bye); return stat(p, &st); }
"""
PROGRAM = r"""
#include <crypt.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
static void *t(void *a) { return a; }
int main(int argc, char **argv) {
    pthread_t th; pthread_create(&th, 0, t, 0); pthread_join(th, 0);
    void *h = dlopen(argv[1], RTLD_NOW); int (*f)(const char *) = (int (*)(const char *))dlsym(h, "modfn");
    printf("stat %d sqrt %.3f crypt %s\n", f("/"), sqrt(2.0 * argc), crypt("a", "$1$ab") ? "ok" : "none");
    dlclose(h); puts("unloaded"); return 0;
}
"""


CHECK = r"""
set -euo pipefail
. ci/system-packages.sh
ensure_system_packages python3 python3-venv gcc libc6-dev libcrypt-dev binutils
python3 -m venv /opt/venv && /opt/venv/bin/pip install -q --disable-pip-version-check ziglang build
# the backend's own build requirements, as pyproject.toml names them (tomli on this Python 3.9)
/opt/venv/bin/python -c 'import build; print("\n".join(build.ProjectBuilder(".").build_system_requires))' \
    > /tmp/requires
/opt/venv/bin/pip install -q --disable-pip-version-check -r /tmp/requires
cc=$(/opt/venv/bin/python -m build_httpd.toolchain manylinux_2_28_x86_64 /opt/toolchain | tail -n 1)
echo "compiler: $cc"
cd /in
"$cc" -O2 -fPIC -shared mod.c -o mod.so
"$cc" -O2 -D_FORTIFY_SOURCE=2 main.c -o main -ldl -lpthread -lm -lcrypt
./main ./mod.so
for b in main mod.so; do echo "$b newest: $(objdump -T $b | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)"; done
printf '#include <sys/types.h>\nint pidfd_open(pid_t, unsigned);\nint main(void) { return pidfd_open(1, 0); }\n' > new.c
if "$cc" new.c -o new 2>new.err; then echo "pidfd_open linked"; else echo "pidfd_open refused: $(grep -c pidfd_open new.err)"; fi
"""


def test_the_glibc_2_28_sysroot_links_nothing_newer_and_dlclose_runs_atexit(tmp_path, requires_fresh_root):
    """Made in a fresh Debian 11 root (the build root of the 2.28 wheels): a program and a module
    built with it need nothing newer than GLIBC_2.28 (threads, dlopen, libm, libcrypt, fortified
    calls), the module's atexit handler runs when it is unloaded, and a function glibc 2.28 lacks
    (pidfd_open, 2.36) does not link."""
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "mod.c").write_text(MODULE)
    (inbox / "main.c").write_text(PROGRAM)
    result = subprocess.run(["bash", ROOT / "ci" / "fresh-root", "bullseye", "bash", "-c", CHECK],
                            env=dict(os.environ, FRESH_ROOT_IN=str(inbox)), capture_output=True, text=True,
                            timeout=1200)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-5000:]
    assert "compiler: /opt/toolchain/bin/x86_64-linux-gnu2.28-gcc" in out, out[-3000:]
    assert "stat 0 sqrt 2.000 crypt ok\nmodule atexit ran\nunloaded\n" in out, out[-3000:]
    for binary in ("main", "mod.so"):
        newest = re.search(rf"^{re.escape(binary)} newest: GLIBC_(\d+)\.(\d+)", out, re.M)
        assert newest and (int(newest[1]), int(newest[2])) <= (2, 28), out[-3000:]
    assert "pidfd_open refused: " in out and "pidfd_open refused: 0" not in out, out[-3000:]


def test_a_build_machine_whose_libcrypt_is_newer_than_the_floor_is_refused_before_zig_runs(tmp_path):
    """The sysroot takes libcrypt from the build machine: where it needs a newer glibc than the
    floor (Debian 12's needs 2.36), the wheel would not run where its tag says, so the toolchain
    is refused, saying where to build instead."""
    from build_httpd import profile, toolchain
    from build_httpd.errors import SettingError
    if profile.build_machine() != "x86_64":
        pytest.skip("the manylinux_2_28_x86_64 sysroot is for an x86_64 build machine")
    target = profile.TARGETS["manylinux_2_28_x86_64"]
    libcrypt = run(["gcc", "-print-file-name=libcrypt.so.1"]).stdout.strip()
    # objdump's own word on the versions libcrypt needs of libc, not the engine's reader
    needs = re.findall(r"\bGLIBC_(\d+(?:\.\d+)+)", run(["objdump", "-p", libcrypt]).stdout.split("Version References")[-1])
    if max(tuple(map(int, v.split("."))) for v in needs) <= (2, 28):
        pytest.skip(f"this machine's libcrypt ({libcrypt}) is old enough: the sysroot is made (test above)")
    with pytest.raises(SettingError) as e:
        toolchain.build_toolchain(target, tmp_path / "toolchain")
    assert "newer than manylinux_2_28_x86_64's floor, 2.28" in e.value.what and "bullseye" in e.value.fix
    assert not (tmp_path / "toolchain").exists()
