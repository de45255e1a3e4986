"""What this machine offers: its memory, read once where a guard needs it."""

from __future__ import annotations

import os


def human_bytes(n: float) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
    for unit in units:
        if abs(n) < 1024 or unit == units[-1]:
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.1f} {unit}" if isinstance(n, float) else f"{n} {unit}"
        try:
            n /= 1024
        except OverflowError:  # an int too large for a float (a size written with 200 digits)
            n //= 1024
    return f"{n:.1f} YiB"


def _meminfo(field: str) -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def total_bytes() -> int | None:
    """Physical memory of this machine."""
    found = _meminfo("MemTotal")
    if found is None:
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return None
    return found


def available_bytes() -> int | None:
    """Memory a new allocation can use now (MemAvailable), or None if unknown."""
    return _meminfo("MemAvailable") or total_bytes()
