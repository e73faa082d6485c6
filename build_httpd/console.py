"""What a person watching the build sees: short prefixed lines on stderr (pip -v shows them)."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager


def say(message: str) -> None:
    print(f"mod_wsgi-httpd: {message}", file=sys.stderr, flush=True)


@contextmanager
def phase(label: str):
    """One line per phase with its elapsed time: `configure apr … 12.3 s`."""
    start = time.monotonic()
    try:
        yield
    except BaseException:
        say(f"{label} … failed after {time.monotonic() - start:.1f} s")
        raise
    say(f"{label} … {time.monotonic() - start:.1f} s")


def progress(total: int, label: str):
    """A progress bar on a terminal; nothing in a log or CI (tqdm's disable=None decides), nor
    where tqdm is not installed (ci/check_updates.py on a bare Python)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                file=sys.stderr, mininterval=0.5, leave=False, disable=None)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass
