"""Training tokens/s of the char model on specc's backends and on hand-written PyTorch.

The model is `specs/char_rnn.spec`'s with a variable hidden size H:

    embedding(32) -> rnn(tanh, H) -> batchnorm -> leaky_relu(0.01) -> dense(65) -> softmax

Three ways to take one training step (forward, backward, global-norm clip 5.0,
Adam), on the same batch from the same initial weights:

* numpy: specc's NumPy backend (always on the CPU);
* torch: specc's torch backend on ``--device`` (cpu, cuda, cuda:N);
* by hand: the same model written directly in PyTorch (nn.Embedding, nn.RNN,
  nn.BatchNorm1d, nn.Linear, torch.optim.Adam, clip_grad_norm_) on ``--device``.

Configurations are batch x seq_len x hidden: bench_torch.py's (32x64x128,
32x64x256, 64x128x512, 1x25x100) and a large one, 256x256x1024. Each is timed
for ``--seconds`` per implementation, taking turns in rounds so a machine
that gets busier affects all three; the table gives the median step as tokens/s
and names the device each column ran on.

Usage:
    python benchmarks/bench_backends.py                     # all shapes, on the CPU
    python benchmarks/bench_backends.py --device cuda       # torch columns on the GPU
    python benchmarks/bench_backends.py --configs 32x64x128 --seconds 2
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_limits

import specc
from specc.train.optim import clip_global_norm, make_optimizer

VOCAB, EMBED, CLIP, LR = 65, 32, 5.0, 3e-3
CONFIGS = ("32x64x128", "32x64x256", "64x128x512", "1x25x100", "256x256x1024")
SPEC = """
model bench {
    input  chars : tokens
    output next  = chars -> embedding(dim=32) -> rnn(hidden=%d, activation=tanh)
        -> batchnorm -> leaky_relu(slope=0.01) -> dense(units=vocab) -> softmax
}
"""


class ByHand(torch.nn.Module):
    """The char model written directly in PyTorch."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, EMBED)
        self.rnn = torch.nn.RNN(EMBED, hidden, batch_first=True)
        self.norm = torch.nn.BatchNorm1d(hidden)
        self.out = torch.nn.Linear(hidden, VOCAB)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(self.embed(ids))
        b, t, n = h.shape
        h = torch.nn.functional.leaky_relu(self.norm(h.reshape(b * t, n)), 0.01)
        return self.out(h)


def specc_step(backend: str, hidden: int, ids, targets, device: str) -> Callable[[], None]:
    """One training step of specc's ``backend`` (Adam on the flat arrays, as `specc run`)."""
    program = specc.loads(SPEC % hidden)
    net = program.build("bench", sizes={"vocab": VOCAB}, backend=backend)
    if backend == "torch" and device != "cpu":
        from specc.backend import build_network

        net = build_network(net.model, "torch", device=device)
    opt = make_optimizer(program.ir.tasks[0].optimizer if program.ir.tasks else _adam(),
                         net.flat_params.size, net.dtype)  # fmt: skip

    def step() -> None:
        net.backward_flat({"chars": ids}, targets)
        clip_global_norm(net.flat_grads, CLIP)
        opt.step(net.flat_params, net.flat_grads)

    return step


def _adam():
    from specc.ir.spec import Adam

    return Adam(lr=LR)


def by_hand_step(hidden: int, ids, targets, device: str) -> Callable[[], None]:
    """One training step of the hand-written model."""
    model = ByHand(hidden).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    x = torch.from_numpy(ids).to(device)
    y = torch.from_numpy(targets).reshape(-1).to(device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        if device != "cpu":
            torch.cuda.synchronize()

    return step


def time_rounds(steps: dict[str, Callable[[], None]], seconds: float) -> dict[str, float]:
    """Median seconds per step of each, taking one step each in turn until every one
    has run ``seconds`` (at least 3 steps each, after one warm-up step)."""
    for step in steps.values():
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    while any(sum(t) < seconds or len(t) < 3 for t in times.values()):
        for name, step in steps.items():
            if sum(times[name]) >= seconds and len(times[name]) >= 3:
                continue
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="where the torch columns run")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), metavar="BxTxH")
    parser.add_argument("--seconds", type=float, default=5.0, help="time per implementation")
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads for numpy's BLAS and torch"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    cpu = platform.processor() or platform.machine()
    where = torch.cuda.get_device_name(args.device) if args.device != "cpu" else cpu
    print(f"numpy: CPU ({cpu}, {args.threads} threads); "
          f"torch and by hand: {args.device} ({where}); torch {torch.__version__}")  # fmt: skip
    print(f"{'config':>14} {'numpy tok/s':>12} {'torch tok/s':>12} {'by hand tok/s':>14} "
          f"{'torch/by hand':>14}")  # fmt: skip
    for config in args.configs:
        b, t, h = map(int, config.split("x"))
        rng = np.random.default_rng(0)
        ids = rng.integers(0, VOCAB, size=(b, t))
        targets = rng.integers(0, VOCAB, size=(b, t))
        steps = {
            "numpy": specc_step("numpy", h, ids, targets, "cpu"),
            "torch": specc_step("torch", h, ids, targets, args.device),
            "hand": by_hand_step(h, ids, targets, args.device),
        }
        secs = time_rounds(steps, args.seconds)
        rate = {name: b * t / s for name, s in secs.items()}
        ratio = rate["torch"] / rate["hand"]
        print(f"{config:>14} {rate['numpy']:>12,.0f} {rate['torch']:>12,.0f} "
              f"{rate['hand']:>14,.0f} {ratio:>14.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
