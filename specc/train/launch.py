"""`specc run --procs N`: a distributed run on this machine, without torchrun.

The launcher hosts the run's store (so it outlives any one process), starts N
copies of `python -m specc run ...` with the environment torchrun would give
them, forwards SIGINT and SIGTERM, and watches them: once one exits with an
error, the others get a few seconds to notice and say which one failed, then
are killed, so a run never hangs on a dead process. Loopback only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence

#: How long the other processes get to stop on their own after one fails.
GRACE_S = 10.0


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch(argv: Sequence[str], procs: int) -> int:
    """Run `specc ARGV` as ``procs`` processes; returns the run's exit status (the
    first failing process's, 0 when all succeed)."""
    import torch.distributed as dist

    port = free_port()
    store = dist.TCPStore("127.0.0.1", port, is_master=True, wait_for_workers=False)
    env = dict(os.environ)
    env.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(procs),
        LOCAL_WORLD_SIZE=str(procs),
        TORCHELASTIC_USE_AGENT_STORE="True",
        TORCHELASTIC_RUN_ID=uuid.uuid4().hex[:12],
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "specc", *argv],
            env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
        )
        for rank in range(procs)
    ]

    def forward(signum, frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _watch(children)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        del store


def _status(code: int) -> int:
    return 128 - code if code < 0 else code


def _watch(children: list[subprocess.Popen]) -> int:
    failed_at: float | None = None
    first = 0
    while True:
        codes = [child.poll() for child in children]
        for code in codes:
            if code not in (None, 0) and not first:
                first, failed_at = _status(code), time.monotonic()
        if all(code is not None for code in codes):
            return first
        if failed_at is not None and time.monotonic() - failed_at > GRACE_S:
            for child in children:
                if child.poll() is None:
                    child.kill()
        time.sleep(0.05)
