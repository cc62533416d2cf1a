"""Osteon's exceptions: one type per kind of failure.

Every exception raised for bad user input says what was received, what is allowed and how
to fix it. They subclass the built-in type a caller would expect (``ValueError``,
``KeyError``, ...) so generic handlers keep working.
"""

from __future__ import annotations

from difflib import get_close_matches
from pathlib import Path


class OsteonError(Exception):
    """Base class of every error Osteon raises on purpose."""


class ImageReadError(OsteonError, ValueError):
    """A file could not be read as an image. The message names the file and the fix."""

    def __init__(self, path: str | Path, problem: str, fix: str | None = None) -> None:
        self.path = Path(path)
        self.problem = problem
        self.fix = fix
        message = f"{self.path}: {problem}"
        if fix:
            message += f" Fix: {fix}"
        super().__init__(message)


class UnsupportedFormatError(ImageReadError):
    """The file's content is not a format Osteon reads (whatever its extension says)."""


class ImageTooLargeError(ImageReadError):
    """Decoding the file would need more memory than the configured limit (decompression bomb guard)."""


class DatasetFormatError(OsteonError, ValueError):
    """A dataset folder or annotation file does not follow the layout its adapter expects."""


class ManifestError(OsteonError, ValueError):
    """A Manifest table breaks the schema (missing column, bad value, bad path)."""


class ConfigError(OsteonError, ValueError):
    """A configuration value is invalid or inconsistent with the data."""


class SplitLeakError(ConfigError):
    """A given split puts one patient's images in two splits (train/val/test), which leaks."""


class RunDirError(OsteonError, ValueError):
    """A run directory is missing, incomplete, or would be overwritten."""


class UnknownNameError(OsteonError, KeyError):
    """A registry lookup failed; the message lists the closest registered names."""

    def __init__(self, kind: str, name: str, available: list[str]) -> None:
        close = get_close_matches(name, available, n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        shown = ", ".join(sorted(available)[:30]) + (" ..." if len(available) > 30 else "")
        self.message = f"Unknown {kind} {name!r}.{hint} Available: {shown}."
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message
