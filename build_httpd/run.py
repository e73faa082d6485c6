"""The one way the build runs a tool: resolved on PATH first, output to a log file, a clear error
with the log's tail on failure."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Tuple

from .errors import BuildError, MissingRequirementError, StepError
from .systems import how_to_install, tool_packages

TAIL_LINES = 15
ERROR_LINES = 12
LINE_CHARS = 300


def which(tool: str, why: str, env: Optional[Mapping[str, str]] = None) -> str:
    """The absolute path of `tool` (which may carry arguments, as CC often does), or a clear error."""
    words = shlex.split(tool) if tool else [""]
    path = os.environ.get("PATH", "") if env is None else env.get("PATH", "")
    found = shutil.which(words[0], path=path) if words[0] else None
    if not found:
        raise MissingRequirementError(
            f"{tool!r} was not found" if words[0] else "no tool was named",
            f"the build needs it {why}; PATH is {path}",
            f"install it ({how_to_install(tool_packages(words[0]))}) or put it on PATH")
    return found


def run(argv: Sequence[str], *, component: str, step: str, log_path: Path, cwd: Path,
        env: Mapping[str, str]) -> None:
    """Run a build step; its whole output goes to log_path."""
    tool = argv[0] if "/" in argv[0] else which(argv[0], f"for {step} of {component}", env)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"$ cd {shlex.quote(str(cwd))} && {shlex.join(argv)}\n".encode())
        log.flush()
        result = subprocess.run([tool, *argv[1:]], cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise StepError(component, step, str(log_path), *digest_log(log_path), result.returncode)


def tool_output(argv: Sequence[str], why: str, env: Optional[Mapping[str, str]] = None) -> str:
    """Run a helper tool (strip, readelf, patchelf, a compiler probe) resolved on PATH; its
    stdout, or one clear error naming the tool and what it said."""
    tool = which(argv[0], why, env) if "/" not in argv[0] else argv[0]
    result = subprocess.run([tool, *argv[1:]], capture_output=True, text=True,
                            env=dict(env) if env is not None else None, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise BuildError(f"{shlex.join([tool, *argv[1:]])[:300]} failed (exit status {result.returncode})",
                         f"it said:\n{result.stderr.strip()[-2000:]}\n",
                         f"check that {os.path.basename(tool)} works on this machine; if it does, report this as "
                         "a bug in mod_wsgi-httpd with that output")
    return result.stdout


# What a failed step's log is read for first: the compiler's and make's own error lines.
_ERROR_LINE = re.compile(r"(\berror\b|Error \d+|No space left on device|cannot find|not found|undefined reference)",
                         re.I)


def digest_log(log_path: Path) -> Tuple[List[str], str]:
    """(the error lines, the tail) of a log, each line cut to LINE_CHARS: libtool's lines run to
    kilobytes, and the one that matters is usually the compiler's `error:` line."""
    with open(log_path, "rb") as log:
        lines = [raw.decode("utf-8", "replace").rstrip("\n") for raw in log]
    cut = [line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + " …" for line in lines]
    errors = [line for line in cut if _ERROR_LINE.search(line) and not line.startswith("checking ")]
    return errors[:ERROR_LINES], "\n".join(cut[-TAIL_LINES:])
