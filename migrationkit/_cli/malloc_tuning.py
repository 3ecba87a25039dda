"""Give big buffers back to the OS when they are freed (glibc), so RSS follows the byte bound.

glibc serves allocations of 128 KiB or more with their own ``mmap``, returned to the OS
on ``free`` — until a big one is freed: then it raises that threshold to the freed
size, and later big allocations (a 16 MiB server reply, a 1 MB string) come from the
heap, which rarely shrinks. Resident memory then keeps the high-water mark of every
size it has seen instead of what is alive. Fixing the threshold keeps it honest; it
costs an ``mmap`` per big allocation, nothing for small documents. Measured, 200
documents of 1 MB, 2 workers, 4 MiB batches: peak 267 MiB with glibc's default, 158
with the threshold fixed (``docs/probes/memory_by_document_size.py``).

A threshold the user set (``MALLOC_MMAP_THRESHOLD_``) is kept; other C libraries are
left alone.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)

#: ``mallopt`` parameter number of ``M_MMAP_THRESHOLD`` in glibc's ``malloc.h``.
M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value
ENVIRONMENT_VARIABLE = "MALLOC_MMAP_THRESHOLD_"


def return_big_buffers_to_the_os() -> bool:
    """Fix glibc's mmap threshold here and in child processes; ``True`` if it was set here."""
    if not sys.platform.startswith("linux") or ENVIRONMENT_VARIABLE in os.environ:
        return False
    os.environ[ENVIRONMENT_VARIABLE] = str(THRESHOLD_BYTES)  # read by each child at start
    try:
        process = ctypes.CDLL(None)  # this process's symbols, the C library's among them
        done = bool(process.mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES))
    except (OSError, AttributeError):  # not glibc (musl has no such knob): nothing to do
        return False
    log.debug("malloc: mmap threshold fixed at %d bytes: %s", THRESHOLD_BYTES, done)
    return done
