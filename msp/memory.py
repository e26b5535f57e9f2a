"""glibc's allocator, tuned for web workers that read request bodies of a MiB or so.

By default glibc serves a block over 128 KiB with its own ``mmap`` and unmaps it when freed,
and gives the heap's free top back to the kernel past 128 KiB: every forwarded scrape
(≈ 800 KiB, held in two or three buffers on its way through gunicorn and Django) then
page-faults its buffers in afresh, 200+ faults a request, about as much system CPU as the
rest of the forward. Raising both thresholds keeps such blocks on the heap and the heap's top
in the process, so the next request reuses the same pages. The cost: a worker keeps up to
``TRIM_THRESHOLD`` of free heap after its largest request.
"""

from __future__ import annotations

import ctypes
import ctypes.util

#: mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap (glibc accepts at most 32 MiB); request bodies are
#: at most DATA_UPLOAD_MAX_MEMORY_SIZE (10 MiB by default), inflated ones as much again.
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Free heap kept at its top before any is given back.
TRIM_THRESHOLD = 64 * 1024 * 1024


def malloc_keep_request_buffers() -> bool:
    """Tune glibc's malloc of this process as above; False where it is not glibc's (musl,
    macOS), which is left as it is."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is None or not hasattr(libc, "gnu_get_libc_version"):  # glibc's own symbol
            return False
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
