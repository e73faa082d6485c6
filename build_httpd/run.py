"""The one way the build runs a tool: resolved on PATH first, output to a log file, a clear error
with the log's tail on failure."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections import deque
from pathlib import Path
from typing import Mapping, Optional, Sequence

from .errors import MissingRequirementError, StepError

TAIL_LINES = 40


def which(tool: str, why: str, env: Optional[Mapping[str, str]] = None) -> str:
    """The absolute path of `tool` (which may carry arguments, as CC often does), or a clear error."""
    words = shlex.split(tool) if tool else [""]
    path = os.environ.get("PATH", "") if env is None else env.get("PATH", "")
    found = shutil.which(words[0], path=path) if words[0] else None
    if not found:
        raise MissingRequirementError(
            f"{tool!r} was not found" if words[0] else "no tool was named",
            f"the build needs it {why}; PATH is {path}",
            "install it (Debian/Ubuntu: apt-get install build-essential; Fedora: dnf install gcc make; "
            "Alpine: apk add build-base; macOS: xcode-select --install) or put it on PATH")
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
        with open(log_path, "rb") as log:
            tail = b"".join(deque(log, maxlen=TAIL_LINES)).decode("utf-8", "replace")
        raise StepError(component, step, str(log_path), tail.rstrip(), result.returncode)
