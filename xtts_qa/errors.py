"""The one exception family of xtts_qa.

Every error a user can cause names the file and says how to fix it; the CLI prints it on one line.
"""

from __future__ import annotations

from pathlib import Path


def shorten_path(path: str | Path, limit: int = 240) -> str:
    """A path for a one-line message: a hostile 5000-character name is elided in the middle."""
    text = str(path)
    return text if len(text) <= limit else f"{text[: limit // 2]}...({len(text)} characters)...{text[-limit // 2 :]}"


class XttsQaError(Exception):
    """Base class of every error xtts_qa raises on purpose."""


class _PathProblem(XttsQaError):
    """An error about one file or folder: ``<path>: <problem> Fix: <fix>``, on one line."""

    def __init__(self, path: str | Path, problem: str, fix: str = "") -> None:
        self.path = Path(path)
        self.problem = problem
        self.fix = fix
        text = f"{shorten_path(self.path)}: {problem}"
        if fix:
            text += f" Fix: {fix}"
        super().__init__(text)


class InputError(_PathProblem):
    """A file the user gave us cannot be used.

    Attributes:
        path: the offending file or folder.
        problem: what is wrong, in one sentence.
        fix: what the user should do about it.
    """


class UsageError(XttsQaError):
    """The command line or an option value is wrong (exit code 2)."""


class EnvironmentProblem(_PathProblem):
    """The machine, not the user's model, is in the way: the cache folder is read-only, a file sits where a folder
    should be, the disk is full. Never reported as a finding about a checkpoint.

    Attributes:
        path: the folder or file of the environment that is unusable.
        problem: what is wrong, in one sentence.
        fix: what the user should do about it.
    """
