"""The one error hierarchy of the build. Every message says what happened, why, and what to do.

Only the PEP 517 entry point (backend.py) turns these into output; helpers raise and never exit.
"""

from __future__ import annotations


class BuildError(Exception):
    """Base of every error the build reports to a person."""

    def __init__(self, what: str, why: str = "", fix: str = ""):
        super().__init__(what)
        self.what, self.why, self.fix = what, why, fix

    def message(self) -> str:
        parts = [self.what.rstrip(".") + "."]
        if self.why:
            parts.append(self.why.rstrip(".") + ".")
        if self.fix:
            parts.append("What to do: " + self.fix.rstrip(".") + ".")
        return " ".join(parts)

    def __str__(self) -> str:
        return self.message()


class RecipeError(BuildError):
    """A recipe or patch file is malformed."""


class SettingError(BuildError):
    """A config setting or environment variable has a value we do not accept."""


class VerificationError(BuildError):
    """Bytes did not match the recipe: never extracted, never cached."""


class FetchError(BuildError):
    """No place could supply a verified copy of a source file."""


class MissingRequirementError(BuildError):
    """A tool or library the build needs is not there; raised before anything compiles."""


class StepError(BuildError):
    """A build step (configure, make, ...) failed; carries the error lines and the tail of its log."""

    def __init__(self, component: str, step: str, log_path: str, errors, tail: str, returncode: int):
        text = "\n".join(errors) + "\n" + tail
        if "No space left on device" in text:
            what = f"{step} of {component} failed: the disk is full (No space left on device)"
            fix = ("free some space where the build writes (TMPDIR, the cache directory) or point TMPDIR at a "
                   f"filesystem with room, then install again; the log is {log_path}")
        else:
            what = f"{step} of {component} failed (exit status {returncode})"
            fix = f"read the whole log at {log_path}; a missing system library or tool is the usual cause"
        why = ""
        if errors:
            why += "the error lines of its log were:\n" + "\n".join(errors) + "\n"
        why += f"its last lines ({log_path}) were:\n{tail}\n"
        super().__init__(what, why, fix)
        self.component, self.step, self.log_path = component, step, log_path


def format_error(error: BuildError) -> str:
    """The single place an error becomes text for a person."""
    bar = "=" * 78
    return f"\n{bar}\nmod_wsgi-httpd: {error.message()}\n{bar}\n"
