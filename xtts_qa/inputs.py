"""The one error boundary for user input: every read of a user's file goes through here.

:func:`reading` turns whatever a hostile or damaged input makes Python or a library raise (OSError,
RecursionError, MemoryError, UnicodeError, ValueError, TypeError, parser errors) into an :class:`InputError`
that names the file and the fix, so the CLI prints one line and exits 2 while the rest of the report still
runs. :func:`require_regular_file` refuses FIFOs, devices, sockets and symlink loops before anything opens
them (opening a FIFO would block forever). :func:`read_json` reads JSON within the size and nesting limits of
:mod:`xtts_qa.limits`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xtts_qa.errors import EnvironmentProblem, InputError
from xtts_qa.limits import MAX_JSON_BYTES, MAX_NESTING, nesting_depth

__all__ = [
    "reading",
    "require_regular_file",
    "read_bytes",
    "read_text",
    "read_json",
    "safe_exists",
    "describe_os_error",
]


def describe_os_error(exc: OSError) -> tuple[str, str]:
    """(problem, fix) for an OSError met while reading a user's file."""
    code = exc.errno
    if isinstance(exc, PermissionError) or code in (errno.EACCES, errno.EPERM):
        return "permission denied.", "make the file readable by this user (chmod / chown) or run as its owner."
    if code == errno.ENAMETOOLONG:
        return (
            "the path is too long for the file system.",
            "use a shorter path (check config pointers such as tokenizer_file).",
        )
    if code == errno.ELOOP:
        return "is a symbolic link loop.", "point the link at a real file."
    if code == errno.ENOENT:
        return "file not found.", "check the path, or copy the file from the base model folder."
    if code == errno.EISDIR:
        return "is a folder where a file was expected.", "point at the file inside it."
    if code == errno.ENOTDIR:
        return "a part of the path is a file, not a folder.", "check the path."
    if code == errno.EIO:
        return "input/output error while reading (a failing disk or network mount).", "copy the file to a healthy disk."
    return f"cannot be read ({exc.strerror or type(exc).__name__}).", "check the path and the file's permissions."


@contextlib.contextmanager
def reading(
    path: str | Path, fix: str = "copy or export the file again, or restore it from the base model folder."
) -> Iterator[None]:
    """Run a read of ``path``; anything it raises (except our own errors) becomes an :class:`InputError`."""
    try:
        yield
    except (InputError, EnvironmentProblem):
        raise
    except OSError as exc:
        problem, os_fix = describe_os_error(exc)
        raise InputError(path, problem, os_fix) from None
    except RecursionError:
        raise InputError(
            path, f"nests too deeply to read (more than {MAX_NESTING} levels, or an object that contains itself).", fix
        ) from None
    except MemoryError:
        raise InputError(
            path, "needs more memory to read than this check may use (see README: Resource limits).", fix
        ) from None
    except UnicodeError:
        raise InputError(path, "is not UTF-8 text (a binary file?).", "point at the right file.") from None
    except Exception as exc:
        raise InputError(path, f"cannot be read ({type(exc).__name__}: {_first_line(str(exc))}).", fix) from None


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "no details"
    return line[:200]


def safe_exists(path: Path) -> bool:
    """``path.exists()`` that answers instead of raising (too-long names, permission denied on a parent)."""
    try:
        os.stat(path)
    except OSError:
        return False
    return True


def require_regular_file(path: str | Path, *, allow_empty: bool = False) -> os.stat_result:
    """The file's stat when it is a readable regular file (symlinks followed).

    Raises:
        InputError: missing, a folder, a FIFO / device / socket, a symlink loop, too long a name, or empty.
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        problem, fix = describe_os_error(exc)
        raise InputError(path, problem, fix) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(path, "is a folder where a file was expected.", "point at the file inside it.")
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a FIFO (named pipe)"
            if stat.S_ISFIFO(st.st_mode)
            else "a character device"
            if stat.S_ISCHR(st.st_mode)
            else "a block device"
            if stat.S_ISBLK(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "not a regular file"
        )
        raise InputError(
            path, f"is {kind}, not a regular file.", "point at the real file (copy it out of the pipe or device first)."
        )
    if st.st_size == 0 and not allow_empty:
        raise InputError(path, "is empty (0 bytes): the save or copy was interrupted.", "copy or export it again.")
    return st


def read_bytes(path: str | Path, max_bytes: int) -> bytes:
    """A regular file's bytes, refused above ``max_bytes``.

    Raises:
        InputError: unreadable, not a regular file, empty or too large.
    """
    path = Path(path)
    st = require_regular_file(path)
    if st.st_size > max_bytes:
        raise InputError(
            path,
            f"is {st.st_size / 2**20:.1f} MiB, more than the {max_bytes / 2**20:.0f} MiB this kind of file may have.",
            "point at the right file (see README: Resource limits).",
        )
    with reading(path):
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew while we read it
        raise InputError(path, "grew past its size limit while being read.", "wait until the file is fully written.")
    return data


def read_text(path: str | Path, max_bytes: int) -> str:
    """A UTF-8 text file (see :func:`read_bytes`)."""
    data = read_bytes(path, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(path, "is not UTF-8 text (a binary file?).", "point at the right file.") from None


def read_json(
    path: str | Path, *, max_bytes: int = MAX_JSON_BYTES, fix: str = "restore it from the base model folder."
) -> Any:
    """Parse a JSON file within the size and nesting limits.

    Raises:
        InputError: unreadable, not UTF-8, not JSON, too large or nested too deeply.
    """
    path = Path(path)
    text = read_text(path, max_bytes)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).", fix) from None
    except RecursionError:
        raise InputError(path, f"nests more than {MAX_NESTING} levels deep.", fix) from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise InputError(path, f"is not valid JSON ({_first_line(str(exc))}).", fix) from None
    if nesting_depth(data) > MAX_NESTING:
        raise InputError(path, f"nests more than {MAX_NESTING} levels deep.", fix)
    return data
