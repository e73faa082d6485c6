"""Apache's standard configuration tree, as `make install` writes it, made movable: nothing in
conf/ names the build prefix (${SRVROOT} is the ServerRoot in effect, ${LOGDIR} where logs and
run-time files go, both defined by httpd itself and httpd.conf), and httpd.conf's LoadModule
lines are the modules the build produced, in an order in which every one of them loads."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import List, Sequence, Tuple

from .errors import BuildError

# One LoadModule line of make install's httpd.conf: active or commented, perhaps indented inside
# the <IfModule> that picks mod_cgi or mod_cgid by MPM.
LOAD_LINE = re.compile(r"^\s*(#?)LoadModule\s+(\w+)_module\s+modules/mod_(\w+)\.so\s*$")
BUG = "report this as a bug in mod_wsgi-httpd"
NOBODY = 65534  # the kernel's overflow uid and gid


def conf_files(stage: Path) -> List[Path]:
    return sorted((stage / "conf").rglob("*.conf"))


# A directive, active or commented out ("#CustomLog ..."), not a line of prose
DIRECTIVE = re.compile(r"^\s*#?\s*<?[A-Z][A-Za-z]*\s")


def make_movable(stage: Path, prefix: str) -> None:
    """Paths into the installed tree become ${LOGDIR} (the logs directory: absolute, or relative
    to ServerRoot in a directive) and ${SRVROOT}."""
    for path in conf_files(stage):
        text = path.read_text()
        lines = [line.replace('"logs/', '"${LOGDIR}/') if DIRECTIVE.match(line) else line
                 for line in text.split("\n")]
        new = "\n".join(lines).replace(f"{prefix}/logs", "${LOGDIR}").replace(prefix, "${SRVROOT}")
        if new != text:
            path.write_text(new)


def _units(lines: Sequence[str], start: int) -> Tuple[List[List[str]], int]:
    """From `start`, the LoadModule block as units: a LoadModule line, or an <IfModule> wrapping
    exactly one; returns them and the index after the block."""
    units, i = [], start
    while i < len(lines):
        if LOAD_LINE.match(lines[i]):
            units.append([lines[i]])
            i += 1
        elif (lines[i].startswith("<IfModule") and i + 2 < len(lines) and LOAD_LINE.match(lines[i + 1])
              and lines[i + 2].startswith("</IfModule>")):
            units.append(lines[i:i + 3])
            i += 3
        else:
            break
    return units, i


def _name(unit: List[str]) -> str:
    return next(m.group(3) for m in map(LOAD_LINE.match, unit) if m)


def order_load_modules(stage: Path, load_first: Sequence[str]) -> List[str]:
    """Reorder httpd.conf's (and the original's) LoadModule block: the MPMs, then the modules
    whose symbols others use (load_first, in its order), then the rest as make install listed
    them. Each line must name a module the build produced and each module must have a line.
    Returns the module names in load order."""
    built = {p.name[len("mod_"):-len(".so")] for p in (stage / "modules").glob("mod_*.so")}
    order = []
    for path in (stage / "conf" / "httpd.conf", stage / "conf" / "original" / "httpd.conf"):
        lines = path.read_text().split("\n")
        start = next((i for i, line in enumerate(lines) if LOAD_LINE.match(line)), None)
        if start is None:
            raise BuildError(f"{path.name} as installed has no LoadModule line", f"{path} lists no module", BUG)
        units, end = _units(lines, start)
        names = [_name(u) for u in units]
        if set(names) != built or len(names) != len(built):
            raise BuildError(f"{path.name}'s LoadModule lines are not the modules the build produced",
                             f"lines without a module: {sorted(set(names) - built) or 'none'}; modules without "
                             f"a line: {sorted(built - set(names)) or 'none'}; twice: "
                             f"{sorted({n for n in names if names.count(n) > 1}) or 'none'}", BUG)

        def rank(unit: List[str]) -> Tuple[int, int]:
            name = _name(unit)
            if name.startswith("mpm_"):
                return (0, 0)
            return (1, load_first.index(name)) if name in load_first else (2, 0)

        units.sort(key=rank)  # stable: the rest stay in make install's order
        lines[start:end] = [line for unit in units for line in unit]
        path.write_text("\n".join(lines))
        order = [_name(u) for u in units]
    return order


def all_modules_config(stage: Path) -> str:
    """httpd.conf with every LoadModule line active but the MPMs it leaves commented (one MPM
    loads at a time): what `httpd -t` must accept."""
    out = []
    for line in (stage / "conf" / "httpd.conf").read_text().split("\n"):
        m = LOAD_LINE.match(line)
        if m and m.group(1) and not m.group(3).startswith("mpm_"):
            line = line.replace("#LoadModule", "LoadModule", 1)
        out.append(line)
    return "\n".join(out)


def check_all_load(stage: Path) -> None:
    """httpd itself reads its httpd.conf with every module loaded (the MPM it chose): a module
    whose symbols are not there yet, or a line for a module that is not, shows up here and not
    on a user's first start. The user and group are this process's own (the check is about the
    modules; the machine that builds need not have the user httpd.conf names) or, as root, the
    overflow ids (httpd refuses to serve as root even for -t)."""
    text = all_modules_config(stage)
    uid, gid = (os.geteuid(), os.getegid()) if os.geteuid() != 0 else (NOBODY, NOBODY)
    text = re.sub(r"^User .*$", f"User #{uid}", text, flags=re.M)
    text = re.sub(r"^Group .*$", f"Group #{gid}", text, flags=re.M)
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "all-modules.conf"
        conf.write_text(text)
        argv = [str(stage / "bin" / "httpd"), "-t", "-d", str(stage), "-f", str(conf)]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as e:
            raise BuildError("the built httpd does not run", str(e), BUG)
    if result.returncode != 0 or "Syntax OK" not in result.stderr + result.stdout:
        raise BuildError("the built httpd cannot load its own modules in its httpd.conf's order",
                         (result.stderr or result.stdout).strip()[-1500:], BUG)


def check(stage: Path, prefix: str) -> None:
    """No configuration file names the build prefix, which does not exist where it is installed."""
    named = [str(p.relative_to(stage)) for p in conf_files(stage) if prefix in p.read_text()]
    if named:
        raise BuildError(f"configuration files still name the build prefix {prefix}", ", ".join(named), BUG)
