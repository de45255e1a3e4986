"""Flushing subnormal numbers to zero in a study worker, as ``torch.set_flush_denormal``
does: the study's saturating layers (a sigmoid rnn at T = 50) drive gradients into
subnormal numbers, which the CPU handles in microcode at a hundredfold cost and
which made single runs take minutes instead of seconds.

The switch is the SSE control register's flush-to-zero and denormals-are-zero
bits, set through the C library's ``fesetenv`` (glibc on x86-64 keeps the
register in ``fenv_t``). It holds for the thread that sets it, which in a
worker process is the one that trains. Elsewhere nothing is changed.
"""

from __future__ import annotations

import ctypes
import platform
import sys

#: glibc's x86-64 ``fenv_t``: 28 bytes of x87 state, then the 4-byte ``__mxcsr``.
_MXCSR_AT, _FENV_SIZE = 28, 32
#: Flush-to-zero (bit 15) and denormals-are-zero (bit 6).
_FTZ_DAZ = 0x8040


def flush_subnormals() -> bool:
    """Treat subnormal inputs and results as zero on this thread; whether it could."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        libc = ctypes.CDLL(None)
        get, put = libc.fegetenv, libc.fesetenv
    except (OSError, AttributeError):
        return False
    get.argtypes = put.argtypes = (ctypes.c_void_p,)
    get.restype = put.restype = ctypes.c_int
    env = ctypes.create_string_buffer(_FENV_SIZE * 2)  # room to spare
    if get(env) != 0:
        return False
    mxcsr = int.from_bytes(env.raw[_MXCSR_AT : _MXCSR_AT + 4], "little") | _FTZ_DAZ
    ctypes.memmove(ctypes.addressof(env) + _MXCSR_AT, mxcsr.to_bytes(4, "little"), 4)
    return put(env) == 0
