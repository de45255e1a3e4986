"""How benchmarks/bench_torch.py times the two libraries: the definitions its
ratios rest on. The per-step ("cold") view must put every call right after one
of the other library's, and the burst (headline) view must time only calls that
follow one of their own; otherwise a median can land anywhere between the warm
and the cold time."""

from __future__ import annotations

import importlib.util
import time
from types import ModuleType

import pytest

from helpers import REPO

# a repository tool, not the package: run with -m tools (CI does)
pytestmark = pytest.mark.tools

SCRIPT = REPO / "benchmarks" / "bench_torch.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_torch", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports only the standard library at the top
    return module


def recorders(log: list[str], pause: float = 0.0):
    def make(name: str):
        def call() -> None:
            log.append(name)
            if pause:
                time.sleep(pause)

        return call

    return make("f"), make("g")


def runs(seq: list[str]) -> list[tuple[str, int]]:
    """Consecutive equal names as (name, length)."""
    out: list[tuple[str, int]] = []
    for name in seq:
        if out and out[-1][0] == name:
            out[-1] = (name, out[-1][1] + 1)
        else:
            out.append((name, 1))
    return out


def test_cold_view_calls_the_two_strictly_in_turn(bench):
    log: list[str] = []
    f, g = recorders(log)
    timing = bench.alternate(f, g, budget=0.01, warmup=2)
    assert all(length == 1 for _, length in runs(log))  # f, g, f, g, ...
    assert log[0] == "f" and log.count("f") == log.count("g")
    assert timing.pairs == log.count("f") - 2  # every call but the warm-up is timed


def test_bursts_time_only_calls_that_follow_their_own(bench):
    log: list[str] = []
    f, g = recorders(log, pause=0.001)
    timing = bench.alternate_bursts(f, g, budget=0.05, burst_seconds=0.003)
    size = {"f": timing.burst_f, "g": timing.burst_g}
    assert min(size.values()) >= 3
    # Warm-up (f, g twice) and three probe calls of each come first. Rounds swap
    # the order (f g, g f, ...), so two bursts of one library can meet.
    bursts = runs(log[4 + 6 :])
    assert len(bursts) >= 3 and {name for name, _ in bursts} == {"f", "g"}
    assert all(length % size[name] == 0 for name, length in bursts)
    f_calls = sum(length for name, length in bursts if name == "f")
    # The first call of each burst, right after the other library's, is not timed.
    assert timing.pairs == f_calls - f_calls // size["f"]
