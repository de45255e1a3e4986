"""Learning-rate schedules, weight decay and the best-evaluation watch.

Worked examples check our own rules with numpy alone; the comparisons with
torch.optim.AdamW, torch.optim.SGD(weight_decay) and torch.optim.lr_scheduler,
step for step, need torch and are skipped without it.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from specc.ir.spec import AdamW, Constant, Cosine, Plateau, Sgd, StepDecay
from specc.train.optim import decay_slices, make_optimizer
from specc.train.schedule import LearningRate, Watch

# ----- our own rules -----------------------------------------------------------------------


def rates(cfg, base: float, total: int) -> list[float]:
    schedule = LearningRate(cfg, base, total)
    return [schedule.at(i) for i in range(total)]


def test_cosine_warms_up_linearly_then_falls_to_min_lr():
    got = rates(Cosine(warmup=4, min_lr=0.1), 1.0, 12)
    np.testing.assert_allclose(got[:5], [0.25, 0.4375, 0.625, 0.8125, 1.0])
    assert got[5] < 1.0 and all(a > b for a, b in itertools.pairwise(got[4:]))
    np.testing.assert_allclose(got[8], 0.1 + 0.9 * 0.5)  # half-way through the cosine
    assert got[-1] > 0.1


def test_step_decay_multiplies_by_factor_every_n_steps():
    np.testing.assert_allclose(
        rates(StepDecay(every=2, factor=0.5), 1.0, 6), [1, 1, 0.5, 0.5, 0.25, 0.25]
    )


def test_constant_keeps_the_optimizers_rate():
    assert rates(Constant(), 0.3, 3) == [0.3, 0.3, 0.3]


def test_plateau_cuts_after_patience_evaluations_without_improvement():
    schedule = LearningRate(Plateau(patience=1, factor=0.5, min_lr=0.2), 1.0, 100)
    seen = []
    for loss in [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.8, 0.9, 0.9, 0.9, 0.9]:
        schedule.evaluated(loss)
        seen.append(schedule.at(0))
    assert seen == [1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2]


def test_watch_keeps_the_best_and_stops_after_patience():
    watch = Watch(metric="accuracy", higher=True, patience=2)
    kept = [watch.evaluated(v, step, step // 10) for step, v in ((10, 0.5), (20, 0.7), (30, 0.6))]
    assert kept == [True, True, False] and watch.step == 20 and not watch.stop
    assert not watch.evaluated(0.7, 40, 4) and watch.stop  # equal is no improvement


def test_decay_leaves_vectors_alone_unless_asked():
    layout = {"w": slice(0, 6), "b": slice(6, 8), "e": slice(8, 12), "g": slice(12, 13)}
    shapes = {"w": (2, 3), "b": (2,), "e": (2, 2), "g": (1,)}
    assert decay_slices(layout, shapes) == [slice(0, 6), slice(8, 12)]
    assert decay_slices(layout, shapes, "all") == [slice(0, 13)]


def test_adamw_shrinks_decayed_parameters_and_only_those():
    opt = make_optimizer(AdamW(lr=0.1, weight_decay=0.5), 2, np.dtype(np.float64), [slice(0, 1)])
    params = np.array([1.0, 1.0])
    opt.step(params, np.zeros(2))  # no gradient: only the decay moves anything
    np.testing.assert_allclose(params, [0.95, 1.0])


def test_sgd_weight_decay_adds_wd_times_p_to_the_gradient():
    opt = make_optimizer(Sgd(lr=0.1, weight_decay=0.5), 2, np.dtype(np.float64), [slice(0, 2)])
    params = np.array([1.0, -2.0])
    opt.step(params, np.array([0.0, 1.0]))
    np.testing.assert_allclose(params, [1 - 0.1 * 0.5, -2 - 0.1 * (1 - 1.0)])


# ----- parity with PyTorch -----------------------------------------------------------------

torch = pytest.importorskip("torch")


def torch_rates(make, total: int, base: float, metrics=None) -> list[float]:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    sched = make(opt)
    out = []
    for i in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(metrics[i]) if metrics is not None else sched.step()
    return out


@pytest.mark.parametrize("warmup, min_lr", [(0, 0.0), (5, 0.0), (7, 1e-4), (1, 0.0)])
def test_cosine_matches_torch(warmup, min_lr):
    total, base = 40, 3e-3
    lr_sched = torch.optim.lr_scheduler

    def make(opt):
        cosine = lr_sched.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=min_lr)
        if not warmup:
            return cosine
        linear = lr_sched.LinearLR(opt, start_factor=1 / warmup, total_iters=warmup)
        return lr_sched.SequentialLR(opt, [linear, cosine], milestones=[warmup])

    want = torch_rates(make, total, base)
    np.testing.assert_allclose(
        rates(Cosine(warmup=warmup, min_lr=min_lr), base, total), want, rtol=1e-9, atol=1e-15
    )


def test_step_decay_matches_torch():
    want = torch_rates(lambda o: torch.optim.lr_scheduler.StepLR(o, 3, gamma=0.3), 20, 0.1)
    np.testing.assert_allclose(rates(StepDecay(every=3, factor=0.3), 0.1, 20), want, rtol=1e-12)


@pytest.mark.parametrize("mode", ["min", "max"])
def test_plateau_matches_torch(mode):
    rng = np.random.default_rng(0)
    values = list(np.round(np.cumsum(rng.normal(0, 1, 60)) / 10 + 5, 3))
    cfg = Plateau(patience=2, factor=0.5, min_lr=1e-3)

    def make(opt):
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode=mode, patience=2, factor=0.5, min_lr=1e-3
        )

    want = torch_rates(make, len(values), 0.1, values)
    ours = LearningRate(cfg, 0.1, 60, higher=mode == "max")
    got = []
    for v in values:
        got.append(ours.at(0))
        ours.evaluated(v)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert len(set(got)) > 2  # the walk did make it cut the rate more than once


def _torch_steps(opt_cls, kwargs, start, grads, decayed, rates_):
    w = torch.nn.Parameter(torch.tensor(start[decayed], dtype=torch.float32))
    b = torch.nn.Parameter(torch.tensor(start[~decayed], dtype=torch.float32))
    wd = kwargs.pop("weight_decay")
    opt = opt_cls(
        [{"params": [w], "weight_decay": wd}, {"params": [b], "weight_decay": 0.0}], **kwargs
    )
    for g, lr in zip(grads, rates_, strict=True):
        for group in opt.param_groups:
            group["lr"] = lr
        w.grad = torch.tensor(g[decayed], dtype=torch.float32)
        b.grad = torch.tensor(g[~decayed], dtype=torch.float32)
        opt.step()
    out = np.empty_like(start, dtype=np.float32)
    out[decayed], out[~decayed] = w.detach().numpy(), b.detach().numpy()
    return out


@pytest.mark.parametrize(
    "cfg, torch_cls, kwargs",
    [
        (
            AdamW(lr=1e-2, weight_decay=0.1),
            "AdamW",
            {"weight_decay": 0.1, "betas": (0.9, 0.999), "eps": 1e-8},
        ),
        (
            AdamW(lr=1e-2, weight_decay=0.3, beta1=0.8, beta2=0.99, eps=1e-6),
            "AdamW",
            {"weight_decay": 0.3, "betas": (0.8, 0.99), "eps": 1e-6},
        ),
        (
            Sgd(lr=0.05, momentum=0.9, weight_decay=0.01),
            "SGD",
            {"weight_decay": 0.01, "momentum": 0.9},
        ),
        (Sgd(lr=0.05, weight_decay=0.2), "SGD", {"weight_decay": 0.2}),
    ],
)
def test_weight_decay_matches_torch_under_a_schedule(cfg, torch_cls, kwargs):
    """Float32, 30 steps, a cosine schedule changing lr every step, the first six
    parameters decayed (one slice, as a matrix would be) and the rest not."""
    rng = np.random.default_rng(1)
    start = rng.normal(size=10).astype(np.float32)
    grads = [rng.normal(size=10).astype(np.float32) for _ in range(30)]
    decayed = np.arange(10) < 6
    schedule = LearningRate(Cosine(warmup=3), cfg.lr, 30)
    opt = make_optimizer(cfg, 10, np.dtype(np.float32), [slice(0, 6)])
    params = start.copy()
    for i, g in enumerate(grads):
        opt.lr = schedule.at(i)
        opt.step(params, g.copy())
    want = _torch_steps(
        getattr(torch.optim, torch_cls),
        dict(kwargs, lr=cfg.lr),
        start,
        grads,
        decayed,
        [schedule.at(i) for i in range(30)],
    )
    np.testing.assert_allclose(params, want, rtol=2e-6, atol=1e-7)
    assert not np.allclose(params[:6], make_decay_free(cfg, start, grads, schedule)[:6])


def make_decay_free(cfg, start, grads, schedule):
    """The same run without weight decay, to show the decay made a difference."""
    free = cfg.model_copy(update={"weight_decay": 0.0})
    opt = make_optimizer(free, 10, np.dtype(np.float32), [slice(0, 6)])
    params = start.copy()
    for i, g in enumerate(grads):
        opt.lr = schedule.at(i)
        opt.step(params, g.copy())
    return params
