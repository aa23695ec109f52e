"""Give memory-mapped checkpoint pages back to the kernel once a tensor has been read.

A memory-mapped 1.87 GB model.pth costs no memory to open, but every page a check reads stays in the process's
resident set until unmapped. :class:`PageReleaser` drops a tensor's pages with ``madvise(MADV_DONTNEED)`` after
use, *only* when the tensor lies inside a read-only-in-practice file mapping of a checkpoint we opened (checked
against ``/proc/self/maps``): such pages are re-read from the file if touched again, so nothing can be lost.
Anywhere else (another OS, a heap tensor) it does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import os
from collections.abc import Iterable
from pathlib import Path

import torch

log = logging.getLogger("xtts_qa")

__all__ = ["PageReleaser"]

_MADV_DONTNEED = 4


class PageReleaser:
    """Drops the resident pages of tensors that are memory-mapped from the given files."""

    def __init__(self, files: Iterable[Path]) -> None:
        self.ranges: list[tuple[int, int]] = []
        self._madvise = None
        wanted = {os.path.realpath(p) for p in files}
        try:
            with open("/proc/self/maps") as fh:
                for line in fh:
                    parts = line.split(maxsplit=5)
                    if len(parts) == 6 and os.path.realpath(parts[5].strip()) in wanted:
                        lo, hi = (int(x, 16) for x in parts[0].split("-"))
                        self.ranges.append((lo, hi))
            libc = ctypes.CDLL(None, use_errno=True)
            self._madvise = libc.madvise
            self._madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        except (OSError, AttributeError):
            self.ranges = []

    def release(self, tensor: torch.Tensor) -> None:
        """Drop the whole pages inside ``tensor``'s bytes if they belong to one of our file mappings."""
        if not self.ranges or self._madvise is None or tensor.device.type != "cpu" or not tensor.numel():
            return
        start = tensor.data_ptr()
        end = start + tensor.numel() * tensor.element_size()
        if not any(lo <= start and end <= hi for lo, hi in self.ranges):
            return
        page = mmap.PAGESIZE
        first, last = -(-start // page) * page, (end // page) * page
        if last > first:
            self._madvise(first, last - first, _MADV_DONTNEED)
