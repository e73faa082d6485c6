"""One way to wait for a server, for the tests, ci/ and bench/: call a probe until it answers."""

import time


def wait_until(probe, what, timeout=60, interval=0.3, alive=None):
    """Call probe() until it returns without raising an exception of the kinds it signals "not
    yet" with (OSError and its kin, requests' and httpx's connection errors all derive from
    Exception); return what it returned. `alive()` returning False (a server process that exited)
    or the timeout ends the wait with an AssertionError naming `what` and the last error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return probe()
        except Exception as error:  # noqa: BLE001 - the probe decides what "not yet" looks like
            last = error
        if alive is not None and not alive():
            raise AssertionError(f"{what}: the server exited ({last})")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: no answer in {timeout} s ({last})")
        time.sleep(interval)
