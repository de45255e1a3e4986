"""The torch backend's training step through DistributedDataParallel, in this process.

A process group of one (gloo) runs the whole distributed path — DDP's reducer,
our summing communication hook, batchnorm's all-summed statistics — without
starting processes; tests/test_torch_backend_dist.py runs two. And the GPU's
way of holding parameters (a device copy refreshed before each pass), run on
the CPU, gives the CPU's numbers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest

import specc
from specc.backend import build_network
from specc.ir.spec import Adam
from specc.train.loop import train_step
from specc.train.optim import make_optimizer
from specc.train.prepare import prepare

from helpers import SPECS

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

TWO_OUTPUTS = """
model two {
    input  c : tokens
    h      = c -> embedding(dim=8) -> rnn(hidden=12) -> batchnorm
    side   = h -> dense(units=3)
    output y = h -> dense(units=vocab) -> softmax
}
task t : next_char { model = two  data = text("c.txt")  seq_len = 8  batch = 6 }
"""


@contextlib.contextmanager
def one_process_group(backend: str) -> Iterator[None]:
    """A process group of this process alone (gloo on the CPU, nccl on a GPU)."""
    if dist.is_initialized():
        pytest.skip("a process group is already running here")
    dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


@pytest.fixture
def group_of_one() -> Iterator[None]:
    with one_process_group("gloo"):
        yield


def steps(program, task_name: str | None, n: int, distributed: bool, **build) -> tuple:
    """``n`` Adam steps in float64: (losses, parameters, running statistics)."""
    task = program.task(task_name).model_copy(update={"optimizer": Adam(lr=3e-3)})
    prepared = prepare(task, program.base_dir)
    model = program.bound_model(task.model, prepared.sizes)
    net = build_network(model, "torch", seed=task.seed, dtype="float64")
    if build:
        net = type(net)(model, seed=task.seed, dtype="float64", **build)
    if distributed:
        net.distribute()
    opt = make_optimizer(task.optimizer, net.flat_params.size, net.dtype)
    losses = [
        train_step(net, opt, prepared.batch(*divmod(i, prepared.steps_per_epoch)), task, i)
        for i in range(n)
    ]
    return np.array(losses), net.flat_params.copy(), {k: v.copy() for k, v in net.state.items()}


def assert_same_run(got: tuple, want: tuple, rel: float) -> None:
    for a, b in zip(got[:2], want[:2], strict=True):
        assert np.abs(a - b).max() <= rel * np.abs(b).max()
    assert got[2].keys() == want[2].keys()
    for key in want[2]:
        assert np.abs(got[2][key] - want[2][key]).max() <= rel * np.abs(want[2][key]).max()


def test_a_group_of_one_trains_through_ddp_as_the_lone_process(group_of_one, monkeypatch):
    """Padded sentences, a reversed rnn and batchnorm: DDP's buckets carry every
    gradient, and the run is the undistributed one to rounding."""
    from specc.backend.torch import collective

    buckets: list[int] = []
    hook = collective._sum_hook

    def counted(group, bucket):
        buckets.append(bucket.buffer().numel())
        return hook(group, bucket)

    monkeypatch.setattr(collective, "_sum_hook", counted)
    program = specc.load(SPECS / "tagger.spec")
    alone = steps(program, None, 4, distributed=False)
    assert not buckets
    grouped = steps(program, None, 4, distributed=True)
    n_params = grouped[1].size
    assert sum(buckets) == 4 * n_params  # every gradient of every step went through DDP
    assert_same_run(grouped, alone, 1e-13)


def test_ddp_trains_a_model_whose_second_output_the_loss_never_reaches(group_of_one, tmp_path):
    """The second output's dense layer gets no gradient: DDP is told to look for it."""
    (tmp_path / "c.txt").write_text("the quick brown fox jumps over the lazy dog. " * 20)
    program = specc.loads(TWO_OUTPUTS, base_dir=tmp_path)
    alone = steps(program, None, 3, distributed=False)
    grouped = steps(program, None, 3, distributed=True)
    assert_same_run(grouped, alone, 1e-13)


def test_the_gpus_parameter_copies_give_the_cpus_numbers() -> None:
    """`copy_params` holds the parameters as the GPU path does (one device copy,
    refreshed before each pass; gradients copied back) on the CPU: the same
    losses, parameters and statistics, bit for bit."""
    program = specc.load(SPECS / "tagger.spec")
    shared = steps(program, None, 5, distributed=False)
    copied = steps(program, None, 5, distributed=False, device="cpu", copy_params=True)
    assert_same_run(copied, shared, 0.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_group_of_one_on_the_gpu_trains_through_ddp_over_nccl() -> None:
    """DDP on a GPU (device_ids, nccl, the device copy of the parameters): the
    undistributed GPU run's numbers (float64; cuDNN may add in another order)."""
    program = specc.load(SPECS / "tagger.spec")
    alone = steps(program, None, 4, distributed=False, device="cuda")
    with one_process_group("nccl"):
        grouped = steps(program, None, 4, distributed=True, device="cuda")
    assert_same_run(grouped, alone, 1e-9)
