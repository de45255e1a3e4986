"""Training across processes and machines: the process group, shards, agreement, failures.

A distributed run is started by `torchrun` (or `specc run --procs N`, which
launches the same thing on this machine): every process runs `specc run` with
RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT in its environment.
Each process prepares the same batches (they depend only on the seed), takes
its shard of every global batch (`Dist.shard`), and the torch backend sums the
loss's count, the batch-norm statistics and (through DistributedDataParallel)
the gradients over the processes (`Network.distribute`), so every process
applies the same update to the same parameters: the run is the one-process run
with the whole batch, to rounding.

Process 0 alone prints, writes checkpoints and metrics. A stop signal on any
process stops all of them at the same step boundary (`Dist.agree_stop`). A
process that fails leaves a note in the rendezvous store, and every process
keeps a heartbeat there, so the others can say which one failed
(`Dist.failure`) instead of waiting on it.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from specc.errors import OptionError, SpecError
from specc.train.prepare import Batch

#: How long a collective may wait for a slow process before the run fails.
TIMEOUT_S = 300.0
#: How often each process proves it is alive, and how long the others watch.
HEARTBEAT_S = 0.25
_WATCH_S = 1.5


class PeerFailed(SpecError):
    """Another process of the run failed; this one stops without writing."""

    def render(self) -> str:
        return f"error: {self.args[0]}"


@dataclass
class Dist:
    """This process's place in a distributed run."""

    rank: int
    world: int
    local_rank: int
    device: str
    store: Any  # the rendezvous store, under this run's prefix
    net: Any = None  # the replica `attach` made

    @property
    def is_main(self) -> bool:
        """Process 0 prints and writes; the others only compute."""
        return self.rank == 0

    def shard(self, batch: Batch) -> Batch:
        """This process's rows of a global batch (contiguous, sizes differing by one
        at most); the loss's count is summed over the processes, so uneven shards
        and padding still give the whole batch's mean."""
        rows = np.array_split(np.arange(len(batch.inputs)), self.world)[self.rank]
        mask = None if batch.mask is None else batch.mask[rows]
        tokens = int(mask.sum()) if mask is not None else int(batch.targets[rows].size)
        if self.net is not None and len(rows):
            self.net.shard_rows(int(rows[0]), int(rows[-1]) + 1, len(batch.inputs))
        chars = None if batch.chars is None else batch.chars[rows]
        return replace(
            batch,
            inputs=batch.inputs[rows],
            targets=batch.targets[rows],
            mask=mask,
            tokens=tokens,
            chars=chars,
        )

    def attach(self, net: Any) -> None:
        """Make ``net`` one of the run's replicas (the torch backend's `distribute`)."""
        net.distribute()
        self.net = net

    def agree_stop(self, requested: int | None) -> int | None:
        """The stop signal any process received (the largest number), or None:
        every process leaves the loop at the same step."""
        import torch
        import torch.distributed as dist

        flag = torch.tensor([requested or 0], dtype=torch.int64, device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item()) or None

    def barrier(self) -> None:
        """Wait for every process (after process 0 wrote a checkpoint, before exiting)."""
        import torch.distributed as dist

        dist.barrier()

    def mark_failed(self, reason: str) -> None:
        """Tell the other processes why this one is stopping."""
        # the store may be gone too; then the heartbeat tells the rest
        with contextlib.suppress(Exception):
            self.store.set(f"failed/{self.rank}", reason[:500])

    def failure(self) -> str:
        """One line naming the process that failed, read from the store: a note it
        left, else the heartbeat that stopped."""
        for rank in range(self.world):
            if rank == self.rank:
                continue
            try:
                if self.store.check([f"failed/{rank}"]):
                    why = self.store.get(f"failed/{rank}").decode("utf-8", "replace")
                    return f"rank {rank} failed: {why}"
            except Exception:
                return "rank 0 failed (the run's store is gone with it)"
        try:
            before = [self._beat(r) for r in range(self.world)]
            time.sleep(_WATCH_S)
            after = [self._beat(r) for r in range(self.world)]
        except Exception:
            return "rank 0 failed (the run's store is gone with it)"
        dead = [r for r in range(self.world) if r != self.rank and before[r] == after[r]]
        if dead:
            return f"rank {', '.join(map(str, dead))} failed (its process is gone)"
        return "a process of the run lost its connection"

    def _beat(self, rank: int) -> bytes:
        return self.store.get(f"alive/{rank}")

    def close(self) -> None:
        """Leave the process group (the heartbeat thread is a daemon)."""
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def is_collective_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective that broke (a peer's connection closed, a
    timeout) rather than this process's own failure."""
    try:
        import torch.distributed as dist
    except ImportError:
        return False
    if isinstance(exc, dist.DistError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        word in text for word in ("gloo", "Gloo", "NCCL", "Connection closed", "Connection reset")
    )


def world_size() -> int:
    """How many processes this run has (1 without a launcher)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise OptionError("WORLD_SIZE must be a whole number") from None


def from_environment(backend: str, device: str | None) -> Dist | None:
    """Join the run the launcher described in the environment (None when alone).

    gloo on the CPU, nccl on GPUs; each process on a machine takes the GPU of its
    LOCAL_RANK. The store is the launcher's (torchrun's agent, or
    `specc run --procs`) when it says so, else process 0 hosts it.
    """
    world = world_size()
    if world <= 1:
        return None
    if backend != "torch":
        raise OptionError(
            f"a distributed run (WORLD_SIZE={world}) needs --backend torch, not {backend}"
        )
    import torch
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    wanted = device or "cpu"
    if wanted.startswith("cuda"):
        if not torch.cuda.is_available():
            raise OptionError(f"--device {wanted}: this machine's PyTorch sees no CUDA GPU")
        wanted = f"cuda:{local_rank}" if wanted == "cuda" else wanted
        torch.cuda.set_device(torch.device(wanted))
    timeout = datetime.timedelta(seconds=TIMEOUT_S)
    host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    base = dist.TCPStore(host, port, world, is_master=(rank == 0 and not agent), timeout=timeout)
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "specc")
    store = dist.PrefixStore(f"specc/{run_id}/", base)
    dist.init_process_group(
        "nccl" if wanted.startswith("cuda") else "gloo",
        store=dist.PrefixStore("pg/", store),
        rank=rank,
        world_size=world,
        timeout=timeout,
    )
    here = Dist(rank, world, local_rank, wanted, store)
    _start_heartbeat(host, port, f"specc/{run_id}/", rank, timeout)
    return here


def _start_heartbeat(host: str, port: int, prefix: str, rank: int, timeout: Any) -> None:
    """A daemon thread that bumps ``alive/RANK`` in the store on its own connection."""
    import torch.distributed as dist

    store = dist.PrefixStore(
        prefix, dist.TCPStore(host, port, is_master=False, timeout=timeout, wait_for_workers=False)
    )

    def beat() -> None:
        count = 0
        while True:
            count += 1
            try:
                store.set(f"alive/{rank}", str(count))
            except Exception:
                return
            time.sleep(HEARTBEAT_S)

    store.set(f"alive/{rank}", "0")
    threading.Thread(target=beat, name="specc-heartbeat", daemon=True).start()
