"""Progress that CI can see: a tqdm bar on a terminal, plain log lines everywhere else.

Without a terminal (CI logs, the pytest plugin, ``| tee``) a bar prints nothing useful, and a CI job with a no-output
timeout kills a long run. :func:`progress` then writes one line every ``every`` items or every ``interval`` seconds,
whichever comes first, even while one slow item is still running (a heartbeat thread), e.g.::

    synthesis (ckpt_3): 12/40 clips (30%), elapsed 0:01:05, ETA 0:02:32

Lines go to stderr, or to ``callback`` (the pytest plugin passes its terminal reporter's ``write_line``). The object
is a small tqdm look-alike: ``update(n)``, ``close()``, iteration and ``with``.

``XTTS_QA_PROGRESS=bar|lines|off`` forces one behaviour (for instance ``lines`` on a terminal that records its output).
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import IO, Any, Generic, TypeVar

__all__ = ["Progress", "format_duration", "plural", "progress"]

T = TypeVar("T")

#: seconds between two plain lines when items arrive slowly (and between heartbeats while one item runs)
DEFAULT_INTERVAL = 30.0


def plural(count: int, word: str, plural_form: str | None = None) -> str:
    """``"1 note"``, ``"2 notes"``, ``"0 checkpoints"`` (``plural_form`` for irregular words)."""
    return f"{count} {word if count == 1 else (plural_form or _plural_word(word))}"


def _plural_word(word: str) -> str:
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def format_duration(seconds: float) -> str:
    """``0:01:05`` for 65 s (hours always shown, so CI log lines align)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class Progress(Generic[T]):
    """Progress of ``total`` items (or of an iterable): a tqdm bar or plain lines; see :func:`progress`."""

    def __init__(
        self,
        iterable: Iterable[T] | None = None,
        total: int | None = None,
        desc: str = "",
        unit: str = "item",
        *,
        every: int | None = None,
        interval: float = DEFAULT_INTERVAL,
        callback: Callable[[str], Any] | None = None,
        file: IO[str] | None = None,
        mode: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.iterable = iterable
        if total is None and isinstance(iterable, Sized):
            total = len(iterable)
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = 0
        self.interval = interval
        self.every = every if every is not None else (max(1, math.ceil(total / 10)) if total else 10)
        self.callback = callback
        self.file = file if file is not None else sys.stderr
        self.mode = mode or _choose_mode(self.file, callback)
        self._clock = clock
        self.start = clock()
        self._last_line_n = -1
        self._last_line_t = self.start
        self._closed = False
        self._lock = threading.Lock()
        self._bar: Any = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.file, leave=False, dynamic_ncols=True)
        elif self.mode == "lines":
            self._emit()  # a first line: the job has started and how big it is
            if interval > 0:
                self._heartbeat = threading.Thread(target=self._beat, name=f"xtts_qa progress {desc}", daemon=True)
                self._heartbeat.start()

    # -- the tqdm-like surface ----------------------------------------------------------------------
    def update(self, n: int = 1) -> None:
        """Count ``n`` more items done."""
        with self._lock:
            self.n += n
            if self._bar is not None:
                self._bar.update(n)
                return
            if self.mode != "lines":
                return
            due = self.n - self._last_line_n >= self.every or self._clock() - self._last_line_t >= self.interval
            finished = self.total is not None and self.n >= self.total
            if due or finished:
                self._emit_locked()

    def close(self) -> None:
        """Stop the bar or the heartbeat; in line mode, print the final count if it was not printed yet."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            if self._bar is not None:
                self._bar.close()
            elif self.mode == "lines" and self._last_line_n != self.n:
                self._emit_locked()
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join(timeout=1.0)

    def __iter__(self) -> Iterator[T]:
        if self.iterable is None:
            raise TypeError("progress(total) is not iterable; pass the iterable itself")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> Progress[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plain lines --------------------------------------------------------------------------------
    def line(self) -> str:
        """The progress line as it would be printed now."""
        elapsed = self._clock() - self.start
        head = f"{self.desc}: " if self.desc else ""
        if self.total:
            done = f"{self.n}/{plural(self.total, self.unit)} ({100 * self.n / self.total:.0f}%)"
            eta = elapsed / self.n * (self.total - self.n) if self.n else float("nan")
            tail = f", elapsed {format_duration(elapsed)}, ETA {format_duration(eta)}"
        else:
            done = plural(self.n, self.unit)
            tail = f", elapsed {format_duration(elapsed)}"
        return f"{head}{done}{tail}"

    def _emit(self) -> None:
        with self._lock:
            self._emit_locked()

    def _emit_locked(self) -> None:
        text = self.line()
        self._last_line_n = self.n
        self._last_line_t = self._clock()
        if self.callback is not None:
            self.callback(text)
        else:
            try:
                print(text, file=self.file, flush=True)
            except (OSError, ValueError):  # a closed or broken stream must not end the run
                pass

    def _beat(self) -> None:
        while not self._stop.wait(min(self.interval, 5.0)):
            with self._lock:
                if self._closed:
                    return
                if self._clock() - self._last_line_t >= self.interval:
                    self._emit_locked()


def _choose_mode(file: IO[str], callback: Callable[[str], Any] | None) -> str:
    forced = os.environ.get("XTTS_QA_PROGRESS", "").strip().lower()
    if forced in ("bar", "lines", "off"):
        return forced
    if callback is not None:
        return "lines"
    try:
        return "bar" if file.isatty() else "lines"
    except (AttributeError, ValueError):
        return "lines"


def progress(
    items: Iterable[T] | int | None = None,
    desc: str = "",
    unit: str = "item",
    *,
    total: int | None = None,
    every: int | None = None,
    interval: float = DEFAULT_INTERVAL,
    callback: Callable[[str], Any] | None = None,
    file: IO[str] | None = None,
    enabled: bool | None = None,
) -> Progress[T]:
    """Progress over an iterable, or over ``total`` items counted with ``update``.

    ``progress(clips, "synthesis", "clip")`` iterates; ``with progress(40, "transcription", "clip") as bar:
    bar.update(1)`` counts. On a terminal (and without ``callback``) it is a tqdm bar; otherwise a plain line every
    ``every`` items (default: every tenth of the total) or every ``interval`` seconds, whichever comes first, with
    done/total, elapsed time and ETA, written to ``file`` (stderr) or passed to ``callback``. ``enabled=False``
    shows nothing (``None`` or ``True``: the automatic choice).
    """
    iterable: Iterable[T] | None = None
    if isinstance(items, int):
        total = items
    elif items is not None:
        iterable = items
    mode = "off" if enabled is False else None
    return Progress(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        every=every,
        interval=interval,
        callback=callback,
        file=file,
        mode=mode,
    )
