"""The one place a device request (``auto``, ``cpu``, ``cuda``, ``cuda:N``) becomes the device a process uses."""

from __future__ import annotations

import logging

log = logging.getLogger("xtts_qa")

__all__ = ["cuda_device_count", "resolve_device"]


def cuda_device_count() -> int:
    """Visible CUDA devices (0 without a GPU or when torch cannot tell)."""
    try:
        import torch

        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception as exc:  # a broken CUDA install means CPU, never a crash
        log.warning("cannot query CUDA (%s: %s); using the CPU", type(exc).__name__, exc)
        return 0


def resolve_device(requested: str = "auto", worker_id: str | None = None, cuda_devices: int | None = None) -> str:
    """The device one process should use.

    ``auto`` means CUDA when there is a GPU, else CPU; CUDA is always named with its index (``cuda:0``). Under
    pytest-xdist (``worker_id`` ``gw0``, ``gw1``, ...) with several GPUs, worker N gets ``cuda:N mod count``, so
    workers do not pile onto one GPU. An explicit ``cpu`` or ``cuda:N`` is returned as given.

    Args:
        requested: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (case and spaces ignored; empty = ``auto``).
        worker_id: pytest-xdist's worker id, or None.
        cuda_devices: the number of visible GPUs; None = ask torch (only when the request needs it).
    """
    requested = (requested or "auto").strip().lower()
    if requested not in ("auto", "cuda"):
        return requested
    count = cuda_device_count() if cuda_devices is None else cuda_devices
    if requested == "auto":
        requested = "cuda" if count else "cpu"
    if requested != "cuda":
        return requested
    if count <= 1 or not worker_id or not worker_id.startswith("gw"):
        return "cuda:0" if count else "cuda"
    return f"cuda:{int(worker_id[2:] or 0) % count}"
