"""specc's NumPy interpreter against PyTorch eager on CPU, side by side.

The model (built in specc from spec text, copied weight for weight into torch):

    embedding(32) -> CELL(hidden H) -> batchnorm -> leaky_relu(0.01)
        -> dense(vocab=65) -> softmax + cross-entropy

where CELL is rnn(tanh) against torch.nn.RNN, lstm against torch.nn.LSTM, or gru
against torch.nn.GRU (PyTorch's fused CPU cells), one row per cell and shape
(``--cells``). The by-hand, matmul, scaling and sampling figures are the rnn's.

For every thread count the script re-executes itself in a child process whose
environment pins both libraries to that many threads (OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS and MKL_NUM_THREADS are set before numpy and torch are
imported, and torch.set_num_threads(n) is called). Inside the child the two
implementations run in one process on the same data from the same initial
weights, in alternating bursts of about 50 ms of consecutive calls, for a
fixed time budget, so a machine that gets busier or quieter affects both
alike. Times are medians; the machine's load average is printed beside
them (on a shared machine, two-thread results depend on what else runs).

What is measured, per configuration (batch x seq_len x hidden):

* train tokens/s: one optimisation step. specc: ``net.backward_flat`` (forward
  and backward), ``clip_global_norm(5.0)``, flat Adam. torch: forward,
  ``F.cross_entropy``, ``backward``, ``clip_grad_norm_(5.0)``, ``Adam.step``.
* infer tokens/s: forward to probabilities in evaluation mode (running
  batchnorm statistics); torch under ``torch.inference_mode()``.
* ratio: specc tokens/s over torch tokens/s (above 1: specc is faster).
* cold: the training ratio again, with specc and torch taking one step each
  in turn, so that every step starts with caches and branch predictors full of
  the other library's work. At 1x25x100 that slows NumPy code by about half
  and torch by under a tenth. The bursts are what a training loop
  sees; this shows how much of each library's speed depends on warm caches.
* loss check: |specc loss - torch loss| on the first step, which shows the two
  really compute the same model from the same weights.
* by hand: the training step of numpy_by_hand.py (the model written out in
  NumPy, straight-line) against torch, timed both ways: what NumPy itself
  allows, and what specc's interpreter costs on top of it.
* memory, specc: peak of numpy allocations during one training step
  (tracemalloc; specc's buffer pool is emptied first, so every array the step
  needs is allocated and counted inside it), against the activations backward
  must keep: the embedded inputs and hidden states of the rnn, the normalised
  batchnorm output, the dense layer's input and the logits, i.e.
  B*T*(32 + 3H + 65) floats (the lstm and gru keep 9H: see `KEPT_PER_HIDDEN`).
  "pool" is what specc keeps between steps to reuse.
* memory, torch: bytes of the tensors autograd saves for backward (recorded
  with ``torch.autograd.graph.saved_tensors_hooks``, no profiler), and the
  growth of peak RSS over one step (Linux, after resetting the peak through
  /proc/self/clear_refs); RSS misses memory the allocator reuses, so it is a
  lower bound.
* scaling: the training step at seq_len 64, 256, 1024, 4096 (hidden 128) and
  hidden 128, 256, 512, 1024 (seq_len 64), batch 32, in bursts alternating
  with torch's; specc's cost per token should stay flat in seq_len.
* sampling: characters/s of ``specc.train.infer.generate`` (hidden 128,
  64-character window; bench_carry.py compares it with stepping, what
  `generate` does by default).

The child reports which BLAS numpy runs (as threadpoolctl names it), and
by default clears OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE so OpenBLAS picks the
kernel for this CPU (``--keep-blas-env`` keeps them).

Usage:
    python benchmarks/bench_torch.py                 # full run, 1 and 2 threads (~12 min)
    python benchmarks/bench_torch.py --quick         # smoke run (~1 min)
    python benchmarks/bench_torch.py --threads 1 --json out.json
    python benchmarks/bench_torch.py --configs 32x64x256 --no-extras
    python benchmarks/bench_torch.py --cells lstm gru --no-extras   # the gated rows only

Needs torch (specc's ``torch`` extra; ``pip install -e ".[bench]"`` brings it
and MKL). With the ``mkl`` extra installed, specc makes its matrix products
with MKL (see specc/backend/numpy/blas.py); each run's header says which
library specc used, and SPECC_BLAS=numpy measures it without.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CONFIGS = [(32, 64, 128), (32, 64, 256), (64, 128, 512), (1, 25, 100)]
VOCAB = 65
EMBED = 32
SPEC = """
model bench {
    input  chars : tokens
    output next  = chars
        -> embedding(dim=32)
        -> %s
        -> batchnorm
        -> leaky_relu(slope=0.01)
        -> dense(units=vocab)
        -> softmax
}
"""
CELLS = ("rnn", "lstm", "gru")
#: Training and inference bars (specc / torch) per cell; the rnn's 1x25x100 bar is higher.
BARS = {"rnn": (1.3, 4.0, 1.2), "lstm": (1.0, 3.0, 1.0), "gru": (1.0, 3.0, 1.0)}


def layer(cell: str, h: int) -> str:
    """The recurrent step of the benchmark model in spec text."""
    return f"rnn(hidden={h}, activation=tanh)" if cell == "rnn" else f"{cell}(hidden={h})"


THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# ----- parent: one child per thread count, then the report ----------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--quick", action="store_true", help="a ~1 minute smoke run")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    ap.add_argument(
        "--configs",
        nargs="+",
        metavar="BxTxH",
        help="only these configurations (default: " + " ".join(fmt(c) for c in CONFIGS) + ")",
    )
    ap.add_argument("--no-extras", action="store_true", help="skip scaling and sampling")
    ap.add_argument(
        "--cells", nargs="+", choices=CELLS, default=list(CELLS), help="recurrent layers to time"
    )
    ap.add_argument(
        "--keep-blas-env",
        action="store_true",
        help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE in the children's environment",
    )
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        configs = [parse(c) for c in args.configs] if args.configs else CONFIGS
        result = run_child(args.child, args.quick, configs, not args.no_extras, args.cells)
        Path(args.child_out).write_text(json.dumps(result))
        return 0

    runs = []
    for n in args.threads:
        env = dict(os.environ)
        for var in THREAD_VARS:
            env[var] = str(n)
        cleared = []
        if not args.keep_blas_env:
            for var in BLAS_OVERRIDES:
                if env.pop(var, None) is not None:
                    cleared.append(var)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "child.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(n)]
            cmd += ["--child-out", str(out)] + (["--quick"] if args.quick else [])
            cmd += ["--configs", *args.configs] if args.configs else []
            cmd += ["--no-extras"] if args.no_extras else []
            cmd += ["--cells", *args.cells]
            print(f"running with {n} thread(s)...", file=sys.stderr, flush=True)
            load_before = os.getloadavg()[0]
            subprocess.run(cmd, env=env, check=True)
            run = json.loads(out.read_text())
        run["cleared_env"] = cleared
        # Other processes on the machine slow both sides, but not evenly (OpenMP and
        # OpenBLAS threads that spin suffer most): keep the load beside the numbers.
        run["load_average"] = [load_before, os.getloadavg()[0]]
        runs.append(run)
        print_run(run)
    report = {"machine": machine_facts(), "quick": args.quick, "runs": runs}
    print_summary(runs)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


def machine_facts() -> dict[str, Any]:
    from specc.study.machine import cpu_model  # the parent never times anything

    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "python": platform.python_version()}


def print_run(run: dict[str, Any]) -> None:
    n = run["threads"]
    print(f"\n== {n} thread(s) | numpy {run['numpy']} ({run['blas']}) | torch {run['torch']}")
    lib = run.get("specc_products", "numpy")
    print(f"   (specc's matrix products: {lib}; SPECC_BLAS=numpy or no mkl extra: numpy)")
    if "load_average" in run:
        before, after = run["load_average"]
        print(f"   (1-minute load average of the machine: {before:.2f} before, {after:.2f} after)")
    if run.get("cleared_env"):
        print(f"   (cleared for this run: {', '.join(run['cleared_env'])})")
    cpu = n == 1  # with one thread, the thread's CPU time is all the work
    head = (
        f"{'cell B x T x H':<17} {'specc train':>12} {'torch train':>12} {'ratio':>6}"
        + (f" {'(cpu)':>6}" if cpu else "")
        + f" {'cold':>6}"
        + f"   {'specc infer':>12} {'torch infer':>12} {'ratio':>6}"
        + (f" {'(cpu)':>6}" if cpu else "")
        + f"   {'loss diff':>9}"
    )
    print(head + "\n" + "-" * len(head))
    for c in run["configs"]:
        print(
            f"{label(c):<17} {c['specc_train_tok_s']:>12,.0f} {c['torch_train_tok_s']:>12,.0f}"
            f" {c['train_ratio']:>6.2f}"
            + (f" {c['train_ratio_cpu']:>6.2f}" if cpu else "")
            + f" {c['train_ratio_cold']:>6.2f}"
            + f"   {c['specc_infer_tok_s']:>12,.0f} {c['torch_infer_tok_s']:>12,.0f}"
            f" {c['infer_ratio']:>6.2f}"
            + (f" {c['infer_ratio_cpu']:>6.2f}" if cpu else "")
            + f"   {c['loss_diff']:>9.1e}"
        )
    print(
        "(tokens/s, medians over alternating bursts of ~50 ms of consecutive steps;"
        " ratio = specc / torch"
        + ("; (cpu): the same ratio in CPU time of the thread" if cpu else "")
        + ";\n cold: the training ratio with the two taking one step each in turn)"
    )
    print(
        f"\n{'B x T x H':<12} {'by hand train':>13} {'ratio':>6} {'cold':>6} {'specc/by hand':>14}"
        f" {'loss diff':>10}   (the model written out in NumPy, numpy_by_hand.py)"
    )
    for c in run["configs"]:
        if "hand_train_tok_s" in c:
            print(
                f"{c['config']:<12} {c['hand_train_tok_s']:>13,.0f} {c['hand_train_ratio']:>6.2f}"
                f" {c['hand_train_ratio_cold']:>6.2f}"
                f" {c['specc_train_tok_s'] / c['hand_train_tok_s']:>14.2f}"
                f" {c['hand_loss_diff']:>10.1e}"
            )
    print(
        f"\n{'B x T x H':<12} {'numpy/torch matmul speed: step (B,H)@(H,H)':>44} {'dense':>7}"
        f" {'specc step product/torch':>25}"
    )
    for c in run["configs"]:
        if "blas" not in c:
            continue
        m = c["blas"]
        loop = m.get("step_product")
        print(
            f"{c['config']:<12} {m['step_matmul']:>44.2f} {m['dense_matmul']:>7.2f}"
            f" {'(numpy)' if loop is None else f'{loop:.2f}':>25}"
        )

    print(
        f"\n{'cell B x T x H':<17} {'specc peak MB':>13} {'floor MB':>9} {'peak/floor':>10}"
        f" {'pool MB':>8} {'torch saved MB':>15} {'torch dRSS MB':>14}"
    )
    for c in run["configs"]:
        m = c["memory"]
        rss = "n/a" if m["torch_rss_delta_mb"] is None else f"{m['torch_rss_delta_mb']:.1f}"
        print(
            f"{label(c):<17} {m['specc_peak_mb']:>13.2f} {m['floor_mb']:>9.2f}"
            f" {m['peak_over_floor']:>10.2f} {m['specc_pool_mb']:>8.2f}"
            f" {m['torch_saved_mb']:>15.2f} {rss:>14}"
        )

    if run["scaling"] is None:
        return
    print("\ntraining step, batch 32 (torch and specc in alternating bursts):")
    print(
        f"{'seq_len x hidden':<18} {'ms/step':>9} {'us/token':>9} {'per token vs first':>19}"
        f" {'torch us/token':>15} {'vs first':>9}"
    )
    for axis in ("seq_len", "hidden"):
        rows = run["scaling"][axis]
        base, torch_base = rows[0]["us_per_token"], rows[0]["torch_us_per_token"]
        for r in rows:
            shape = f"{r['seq_len']} x {r['hidden']}"
            print(
                f"{shape:<18} {r['ms_per_step']:>9.2f} {r['us_per_token']:>9.2f}"
                f" {r['us_per_token'] / base:>19.2f} {r['torch_us_per_token']:>15.2f}"
                f" {r['torch_us_per_token'] / torch_base:>9.2f}"
            )
    s = run["sampling"]
    print(
        f"\nsampling: {s['chars_per_s']:,.0f} characters/s "
        f"(generate, hidden {s['hidden']}, window {s['window']}, {s['chars']} characters)"
    )


def print_summary(runs: list[dict[str, Any]]) -> None:
    print("\n== bars")
    for run in runs:
        for c in run["configs"]:
            train_bar, small_bar, infer_bar = BARS[c.get("cell", "rnn")]
            want = small_bar if c["config"] == "1x25x100" else train_bar
            ok_t = "met" if c["train_ratio"] >= want else "NOT met"
            ok_i = "met" if c["infer_ratio"] >= infer_bar else "NOT met"
            print(
                f"{run['threads']} thread(s) {label(c):<16} train {c['train_ratio']:.2f}x "
                f"(bar {want}x: {ok_t}; cold {c['train_ratio_cold']:.2f}x), "
                f"infer {c['infer_ratio']:.2f}x (bar {infer_bar}x: {ok_i})"
            )


# ----- child: the measurements ---------------------------------------------------------


def label(c: dict[str, Any]) -> str:
    """A result row's name: its cell and its B x T x H."""
    return f"{c.get('cell', 'rnn')} {c['config']}"


def fmt(c: tuple[int, int, int]) -> str:
    return "x".join(map(str, c))


def parse(text: str) -> tuple[int, int, int]:
    b, t, h = (int(v) for v in text.lower().split("x"))
    return b, t, h


def run_child(
    threads: int,
    quick: bool,
    configs: list[tuple[int, int, int]],
    extras: bool,
    cells: list[str] | tuple[str, ...] = CELLS,
) -> dict[str, Any]:
    import numpy as np
    import torch

    from specc.backend.numpy import blas

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    results = []
    for cell in cells:
        for b, t, h in configs:
            results.append(compare(b, t, h, quick, cell))
            print(f"  {cell} {b}x{t}x{h} done", file=sys.stderr, flush=True)
    return {
        "threads": threads,
        "numpy": np.__version__,
        "torch": torch.__version__,
        "blas": blas_info(),
        "specc_products": blas.name(),
        "configs": results,
        "scaling": scaling(quick) if extras and "rnn" in cells else None,
        "sampling": sampling(quick) if extras and "rnn" in cells else None,
    }


def blas_info() -> str:
    """numpy's BLAS as threadpoolctl reports it, found as specc finds it."""
    from specc.backend.numpy import blas

    lib = blas.numpy_blas()
    if lib is None:
        return "BLAS not found by threadpoolctl"
    return (
        f"{lib['internal_api']} {lib.get('version')}, kernel {lib.get('architecture')},"
        f" {lib['num_threads']} thread(s)"
    )


def build_pair(b: int, t: int, h: int, seed: int = 0, cell: str = "rnn"):
    """The specc network and a torch copy with the same weights, plus one batch of data.
    Torch's two biases: the rnn's and lstm's one bias goes to b_ih (b_hh = 0); the gru
    has both, as torch."""
    import numpy as np
    import torch

    import specc

    net = specc.loads(SPEC % layer(cell, h)).build("bench", sizes={"vocab": VOCAB}, seed=seed)
    p = {k: torch.from_numpy(v.copy()) for k, v in net.params.items()}
    model = TorchModel(h, cell)
    with torch.no_grad():
        model.emb.weight.copy_(p["embedding.E"])
        model.rnn.weight_ih_l0.copy_(p[f"{cell}.W_xh"].T)
        model.rnn.weight_hh_l0.copy_(p[f"{cell}.W_hh"].T)
        if cell == "gru":
            model.rnn.bias_ih_l0.copy_(p["gru.b_xh"])
            model.rnn.bias_hh_l0.copy_(p["gru.b_hh"])
        else:
            model.rnn.bias_ih_l0.copy_(p[f"{cell}.b"])
            model.rnn.bias_hh_l0.zero_()
        model.bn.weight.copy_(p["batchnorm.gamma"])
        model.bn.bias.copy_(p["batchnorm.beta"])
        model.lin.weight.copy_(p["dense.W"].T)
        model.lin.bias.copy_(p["dense.b"])
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, VOCAB, (b, t))
    targets = rng.integers(0, VOCAB, (b, t))
    return net, model, ids, targets


def TorchModel(h: int, cell: str = "rnn"):
    """The torch model, defined on first use so the parent process never imports torch."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(VOCAB, EMBED)
            if cell == "rnn":
                self.rnn = nn.RNN(EMBED, h, nonlinearity="tanh", batch_first=True)
            else:
                self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](EMBED, h, batch_first=True)
            self.bn = nn.BatchNorm1d(h)
            self.lin = nn.Linear(h, VOCAB)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            out, _ = self.rnn(self.emb(ids))
            z = self.bn(out.reshape(-1, out.shape[-1]))  # statistics over batch and time
            return self.lin(F.leaky_relu(z, 0.01))  # logits (B*T, V)

    return Model()


def training_steps(net, model, ids, targets) -> tuple[Callable[[], float], Callable[[], float]]:
    """One training step each (forward, backward, clip 5.0, Adam), specc's and torch's,
    on the batch ``ids``/``targets``; each returns its loss."""
    import torch
    from torch.nn import functional as F

    from specc.ir.spec import Adam
    from specc.train.optim import clip_global_norm, make_optimizer

    opt = make_optimizer(Adam(lr=1e-3), net.flat_params.size, net.dtype)
    topt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t_ids = torch.from_numpy(ids)
    t_targets = torch.from_numpy(targets).reshape(-1)
    inputs = {"chars": ids}

    def specc_step() -> float:
        loss = net.backward_flat(inputs, targets)
        clip_global_norm(net.flat_grads, 5.0)
        opt.step(net.flat_params, net.flat_grads)
        return loss

    def torch_step() -> float:
        model.train()
        topt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(t_ids), t_targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        topt.step()
        return loss.item()

    return specc_step, torch_step


def compare(b: int, t: int, h: int, quick: bool, cell: str = "rnn") -> dict[str, Any]:
    import numpy as np
    import numpy_by_hand  # beside this script
    import torch
    from torch.nn import functional as F

    net, model, ids, targets = build_pair(b, t, h, cell=cell)
    specc_step, torch_step = training_steps(net, model, ids, targets)
    t_ids = torch.from_numpy(ids)
    inputs = {"chars": ids}

    def specc_infer() -> None:
        net.forward(inputs, train=False)

    def torch_infer() -> None:
        model.eval()
        with torch.inference_mode():
            F.softmax(model(t_ids), dim=-1)

    torch_first = torch_step()  # first steps: identical weights and data
    loss_diff = abs(specc_step() - torch_first)
    memory = measure_memory(net, model, specc_step, torch_step, b, t, h, cell)

    budget = 3.0 if quick else 24.0  # seconds per configuration, all phases
    train = alternate_bursts(specc_step, torch_step, budget * 0.5)
    infer = alternate_bursts(specc_infer, torch_infer, budget * 0.4)
    cold = alternate(specc_step, torch_step, budget * 0.3)
    ts, tt, si, ti = train.f, train.g, infer.f, infer.g
    tokens = b * t
    extra: dict[str, Any] = {}
    if cell == "rnn":  # numpy_by_hand.py and the matmul speeds are the rnn model's
        hand_step = numpy_by_hand.training_step(net.params, ids, targets)  # copies weights
        hand_loss_diff = abs(hand_step() - torch_first)
        hand = alternate_bursts(hand_step, torch_step, budget * 0.3)
        hand_cold = alternate(hand_step, torch_step, budget * 0.2)
        extra = {
            "hand_train_tok_s": tokens / hand.f,
            "hand_train_ratio": hand.g / hand.f,
            "hand_train_ratio_cold": hand_cold.g / hand_cold.f,
            "hand_loss_diff": float(hand_loss_diff),
            "blas": blas_speed(b, t, h, quick),
        }
    return {
        "cell": cell,
        "config": f"{b}x{t}x{h}",
        "batch": b,
        "seq_len": t,
        "hidden": h,
        "repetitions": {"train": train.pairs, "infer": infer.pairs, "cold": cold.pairs},
        "burst_steps": {
            "train": [train.burst_f, train.burst_g],
            "infer": [infer.burst_f, infer.burst_g],
        },
        "train_ratio_cpu": train.cpu_g / train.cpu_f,
        "infer_ratio_cpu": infer.cpu_g / infer.cpu_f,
        "specc_train_tok_s": tokens / ts,
        "torch_train_tok_s": tokens / tt,
        "train_ratio": tt / ts,
        "specc_infer_tok_s": tokens / si,
        "torch_infer_tok_s": tokens / ti,
        "infer_ratio": ti / si,
        "specc_train_ms": ts * 1e3,
        "torch_train_ms": tt * 1e3,
        "specc_infer_ms": si * 1e3,
        "torch_infer_ms": ti * 1e3,
        "specc_train_tok_s_cold": tokens / cold.f,
        "torch_train_tok_s_cold": tokens / cold.g,
        "train_ratio_cold": cold.g / cold.f,
        "loss_diff": float(loss_diff),
        "memory": memory,
        **extra,
        "float32": bool(net.flat_params.dtype == np.float32),
    }


def blas_speed(b: int, t: int, h: int, quick: bool) -> dict[str, float]:
    """How fast numpy's BLAS multiplies compared with torch's, on the two products that
    dominate this model: one step of the recurrence, (B, H) @ (H, H), and the output
    layer over all tokens, (B*T, H) @ (H, 65). Both write into a preallocated array.
    A ratio below 1 is a ceiling the interpreter cannot pass where matmul dominates."""
    import numpy as np
    import torch

    from specc.backend.numpy import blas

    rng = np.random.default_rng(0)
    out: dict[str, float] = {}
    for name, (rows, inner, cols) in {
        "step_matmul": (b, h, h),
        "dense_matmul": (b * t, h, VOCAB),
    }.items():
        a = rng.standard_normal((rows, inner), dtype=np.float32)
        w = rng.standard_normal((inner, cols), dtype=np.float32)
        y = np.empty((rows, cols), np.float32)
        ta, tw, ty = torch.from_numpy(a.copy()), torch.from_numpy(w.copy()), torch.empty(rows, cols)
        reps = max(1, 20_000 // rows)  # several calls per timing for the small products

        def numpy_mm(a=a, w=w, y=y, reps=reps) -> None:
            for _ in range(reps):
                np.dot(a, w, out=y)

        def torch_mm(ta=ta, tw=tw, ty=ty, reps=reps) -> None:
            for _ in range(reps):
                torch.mm(ta, tw, out=ty)

        timing = alternate(numpy_mm, torch_mm, 0.5 if quick else 2.0)
        out[name] = timing.g / timing.f

        product = blas.step_product(w, rows) if name == "step_matmul" else None
        if product is not None:  # what specc's rnn loop calls when MKL is installed
            src, dst = blas.row_addresses(a[None])[0], blas.row_addresses(y[None])[0]

            def loop_mm(src=src, dst=dst, reps=reps, product=product) -> None:
                for _ in range(reps):
                    product(src, dst)

            timing = alternate(loop_mm, torch_mm, 0.5 if quick else 2.0)
            out["step_product"] = timing.g / timing.f
    return out


class Timing:
    """Medians of two interleaved functions: wall-clock seconds and CPU seconds of
    the calling thread (which, with one thread, is all the work and leaves out
    time the process spent descheduled by other load)."""

    def __init__(
        self,
        f: list[float],
        g: list[float],
        cf: list[float],
        cg: list[float],
        bursts: tuple[int, int] = (1, 1),
    ):
        import numpy as np

        self.f, self.g = float(np.median(f)), float(np.median(g))
        self.cpu_f, self.cpu_g = float(np.median(cf)), float(np.median(cg))
        self.pairs = len(f)
        self.burst_f, self.burst_g = bursts  # consecutive calls per turn (see alternate_bursts)


def alternate(f, g, budget: float, warmup: int = 2) -> Timing:
    """Time f and g called in turn, f, g, f, g, ..., for about ``budget`` seconds
    (at least 5 and at most 400 calls of each): every call starts right after one
    of the other. This is the cold view (see `alternate_bursts`). Strict turns
    make it well defined: with the order swapped every round, half of each one's
    calls would follow one of its own, and the median would fall anywhere between
    the warm and the cold time."""
    for _ in range(warmup):
        f()
        g()
    tf: list[float] = []
    tg: list[float] = []
    cf: list[float] = []
    cg: list[float] = []
    clock, cpu = time.perf_counter, time.thread_time
    end = clock() + budget
    i = 0
    while i < 5 or (clock() < end and i < 400):
        for fn, acc, cacc in ((f, tf, cf), (g, tg, cg)):
            start, cstart = clock(), cpu()
            fn()
            acc.append(clock() - start)
            cacc.append(cpu() - cstart)
        i += 1
    return Timing(tf, tg, cf, cg)


def alternate_bursts(f, g, budget: float, burst_seconds: float = 0.05) -> Timing:
    """Time f and g in alternating bursts of consecutive calls, each about
    ``burst_seconds`` long (order swapped each round): the steady state of a
    training or generation loop, which runs one step after another. The
    headline figures; the bursts still interleave, so a machine that gets
    busier or quieter affects both alike.

    Calling them in turn (`alternate`) starts each step with the caches and
    branch predictors full of the other library's work. At 1x25x100 that costs
    NumPy code half as much again (specc and the hand-written model alike) and
    torch under a tenth: that cold view is reported beside. Here the first call
    of each burst is such a cold call, so it is run but not timed; a burst has
    at least three calls. Medians over the others."""
    for _ in range(2):
        f()
        g()
    clock, cpu = time.perf_counter, time.thread_time
    lengths = []
    for fn in (f, g):  # calls per burst, from a few timed calls
        start = clock()
        for _ in range(3):
            fn()
        lengths.append(max(3, round(burst_seconds / ((clock() - start) / 3))))
    times: list[list[float]] = [[], []]
    cpus: list[list[float]] = [[], []]
    end = clock() + budget
    i = 0
    while i < 2 or clock() < end:
        for k in (0, 1) if i % 2 == 0 else (1, 0):
            fn = (f, g)[k]
            fn()  # the first call after the other library's burst: cold, not timed
            for _ in range(lengths[k] - 1):
                start, cstart = clock(), cpu()
                fn()
                times[k].append(clock() - start)
                cpus[k].append(cpu() - cstart)
        i += 1
    return Timing(times[0], times[1], cpus[0], cpus[1], bursts=(lengths[0], lengths[1]))


#: Hidden-sized activations per token that backward must keep, by cell: the rnn's
#: states, the normalised batchnorm output and the dense layer's input (3), plus the
#: lstm's four gates, c_t and tanh(c_t), or the gru's three gates and h_{t-1}·W_hh.
KEPT_PER_HIDDEN = {"rnn": 3, "lstm": 9, "gru": 9}


def measure_memory(
    net, model, specc_step, torch_step, b: int, t: int, h: int, cell: str = "rnn"
) -> dict[str, Any]:
    import tracemalloc

    import torch

    specc_step()  # warm: optimizer state exists before measuring
    pool = getattr(net, "_pool", None)
    held = pool._bytes if pool is not None else 0  # kept between steps for reuse
    if pool is not None:
        pool.clear()  # so every array the step needs is allocated, and counted, in it
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    specc_step()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    floor = b * t * (EMBED + KEPT_PER_HIDDEN[cell] * h + VOCAB) * net.flat_params.dtype.itemsize

    saved: dict[int, int] = {}

    def pack(x: torch.Tensor) -> torch.Tensor:
        saved[x.untyped_storage().data_ptr()] = x.untyped_storage().nbytes()
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        torch_step()
    return {
        "specc_peak_mb": peak / 1e6,
        "specc_pool_mb": held / 1e6,
        "floor_mb": floor / 1e6,
        "peak_over_floor": peak / floor,
        "torch_saved_mb": sum(saved.values()) / 1e6,
        "torch_rss_delta_mb": rss_delta(torch_step),
    }


def rss_delta(fn) -> float | None:
    """Growth of peak RSS (MB) while running fn, or None where Linux's counters are missing."""
    status = Path("/proc/self/status")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        return None

    def read(key: str) -> int:
        for line in status.read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
        raise KeyError(key)

    before = read("VmRSS:")
    fn()
    return (read("VmHWM:") - before) / 1e3


def scaling(quick: bool) -> dict[str, list[dict[str, Any]]]:
    def step_time(t: int, h: int) -> dict[str, Any]:
        net, model, ids, targets = build_pair(32, t, h)
        step, torch_step = training_steps(net, model, ids, targets)
        timing = alternate_bursts(step, torch_step, 1.0 if quick else 6.0)
        return {
            "seq_len": t,
            "hidden": h,
            "ms_per_step": timing.f * 1e3,
            "us_per_token": timing.f * 1e6 / (32 * t),
            "torch_us_per_token": timing.g * 1e6 / (32 * t),
        }

    seq = (64, 256) if quick else (64, 256, 1024, 4096)
    hid = (128, 256) if quick else (128, 256, 512, 1024)
    return {
        "seq_len": [step_time(t, 128) for t in seq],
        "hidden": [step_time(64, h) for h in hid],
    }


def sampling(quick: bool) -> dict[str, Any]:
    import specc
    from specc.data.vocab import Vocab
    from specc.train.infer import generate

    vocab = Vocab(list(string.ascii_letters + string.digits + " .\n"))  # 65 characters
    net = specc.loads(SPEC % layer("rnn", 128)).build("bench", sizes={"vocab": VOCAB}, seed=0)
    n = 100 if quick else 400
    generate(net, vocab, prime="The ", n=10, seed=1, context="window")  # warm
    start = time.perf_counter()
    text = generate(net, vocab, prime="The ", n=n, seed=1, context="window")
    sec = time.perf_counter() - start
    assert len(text) == n
    return {"chars": n, "hidden": 128, "window": 64, "chars_per_s": n / sec}


if __name__ == "__main__":
    sys.exit(main())
