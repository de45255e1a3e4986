"""What `specc run` prints at the end of a run: the held-out curve as a sparkline."""

from __future__ import annotations

from specc.cli import main
from specc.cli.show import held_out_curve

from helpers import SPECS


def test_the_held_out_curve_rises_and_falls_with_the_metric():
    history = [{"val": {"accuracy": a}} for a in (0.1, 0.2, 0.8, 0.3)]
    line = held_out_curve({"history": history, "best": {"metric": "accuracy"}})
    assert line is not None and "held-out accuracy  ▁▂█▃  0.1000 → 0.3000" in line
    losses = [{"val": {"loss": v}} for v in (2.0, 1.0)]
    assert "held-out loss  █▁" in held_out_curve({"history": losses})
    assert held_out_curve({"history": losses[:1]}) is None  # one point is no curve


def test_a_run_ends_with_its_held_out_curve(tmp_path, capsys):
    spec = str(SPECS / "pos_tagger.spec")
    assert main(["run", spec, "--steps", "44", "--out", str(tmp_path / "o")]) == 0
    printed = capsys.readouterr().out
    assert "held-out accuracy  " in printed and "over 2 evaluations" in printed
