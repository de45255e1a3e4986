"""Pictures: `specc plot` learning curves and the `specc diagnose --svg` chart.

Each chart is rendered to a file through the real entry point (written,
non-empty, the right format) and its figure is checked against the data: one
line per series a reader expects, holding exactly the numbers of the run.
Without matplotlib, `specc plot` says in one line what to install and
`diagnose --svg` falls back to the terminal view.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import specc
from specc.cli.main import main
from specc.diagnose.flow import GradientFlow
from specc.train.loop import run_task

from helpers import write_spec_and_data

TEXT = "the quick brown fox jumps over the lazy dog. " * 30

SPEC = """
model lm {
    input  chars : tokens
    output next  = chars -> embedding(dim=8) -> rnn(hidden=16) -> dense(units=vocab) -> softmax
}
task t : next_char {
    model      = lm
    data       = text("corpus.txt")
    seq_len    = 12
    batch      = 4
    optimizer  = adam(lr=2e-2)
    schedule   = cosine(warmup=5)
    eval_every = 5
    steps      = STEPS
    generate   = 5
}
"""

ADDER = """
model adder {
    input  pairs : sequence[2]
    output sum   = pairs -> rnn(hidden=16, activation=tanh, return=last) -> dense(units=1)
}
task adding : regress { model = adder  data = adding(length=20, samples=64)  batch = 16
                        steps = 3 }
"""


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    """Metrics files of two runs of different lengths (30 and 20 steps)."""
    paths = []
    for steps in (30, 20):
        folder = tmp_path / f"r{steps}"
        spec = write_spec_and_data(folder, SPEC.replace("STEPS", str(steps)), {"corpus.txt": TEXT})
        run_task(specc.load(spec), out_dir=folder / "runs")
        paths.append(folder / "runs" / "t.json")
    return paths


def test_without_matplotlib_plot_says_what_to_install(runs, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    assert main(["plot", str(runs[0])]) == 1
    err = capsys.readouterr().err
    assert (
        err == "error: specc plot needs matplotlib, which is not installed: "
        "pip install 'specc[plot]'\n"
    )
    assert not runs[0].with_suffix(".png").exists()


def test_without_matplotlib_diagnose_svg_saves_the_terminal_view(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    spec = write_spec_and_data(tmp_path, ADDER)
    svg = tmp_path / "flow.svg"
    assert main(["diagnose", str(spec), "--svg", str(svg)]) == 0
    assert svg.read_text().startswith('<svg class="rich-terminal"')
    assert "pip install 'specc[plot]' to save a chart" in capsys.readouterr().err


plt = pytest.importorskip("matplotlib.pyplot")


@pytest.mark.parametrize(
    "suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")]
)
def test_plot_writes_the_picture_the_suffix_names(runs, tmp_path, capsys, suffix, magic):
    out = tmp_path / f"curves{suffix}"
    assert main(["plot", *map(str, runs), "-o", str(out)]) == 0
    data = out.read_bytes()
    assert data.startswith(magic) and len(data) > 5000
    said = capsys.readouterr().out
    assert "r30/runs/t: 6 evaluations over 30 steps" in " ".join(said.split())
    assert f"wrote {out}" in " ".join(said.split())


def test_plot_writes_beside_the_first_run_by_default(runs):
    assert main(["plot", str(runs[0])]) == 0
    assert runs[0].with_suffix(".png").read_bytes().startswith(b"\x89PNG")


def test_the_curves_hold_the_runs_numbers_one_line_per_series(runs):
    from specc.train.curves import learning_curves, read_run

    read = [read_run(p) for p in runs]
    fig = learning_curves(read)
    loss_ax, metric_ax, lr_ax = fig.axes
    assert len(loss_ax.get_lines()) == 4  # train and held-out, for each of two runs
    assert len(metric_ax.get_lines()) == 2 and len(lr_ax.get_lines()) == 2
    assert metric_ax.get_ylabel() == "held-out accuracy"
    doc = json.loads(runs[0].read_text())
    steps = [h["step"] for h in doc["history"]]
    train, held = loss_ax.get_lines()[:2]
    assert list(train.get_xdata()) == steps == [5, 10, 15, 20, 25, 30]
    assert list(train.get_ydata()) == [h["train_loss"] for h in doc["history"]]
    assert list(held.get_ydata()) == [h["val"]["loss"] for h in doc["history"]]
    assert list(lr_ax.get_lines()[0].get_ydata()) == [h["lr"] for h in doc["history"]]
    assert len(lr_ax.get_lines()[1].get_xdata()) == 4  # the 20-step run
    plt.close(fig)


@pytest.mark.parametrize(
    "content, words",
    [
        ("not json", "not a specc metrics file"),
        ('{"task": "t"}', "not a specc metrics file (kind: Field required)"),
    ],
)
def test_a_file_that_is_not_a_metrics_file_is_one_line(tmp_path, capsys, content, words):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main(["plot", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{bad}: error: ") and words in err and err.count("\n") == 1


def test_a_run_without_history_is_named(runs, tmp_path, capsys):
    doc = json.loads(runs[0].read_text())
    doc["history"] = []
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc))
    assert main(["plot", str(old)]) == 1
    assert "holds no evaluations to draw" in capsys.readouterr().err


def test_an_unknown_picture_format_and_an_unwritable_place_are_refused(runs, tmp_path, capsys):
    assert main(["plot", str(runs[0]), "-o", str(tmp_path / "x.jpeg")]) == 1
    assert "cannot tell the picture format" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["plot", str(runs[0]), "-o", str(blocker / "x.png")]) == 1
    assert f"{blocker} is a file, not a directory" in capsys.readouterr().err


def test_diagnose_svg_is_a_log_scale_chart_of_every_measurement(tmp_path):
    from specc.diagnose.view import flow_chart

    spec = write_spec_and_data(tmp_path, ADDER)
    svg = tmp_path / "flow.svg"
    assert (
        main(["diagnose", str(spec), "--train", "--out", str(tmp_path / "o"), "--svg", str(svg)])
        == 0
    )
    text = svg.read_text()
    assert text.startswith("<?xml") and "<svg" in text and len(text) > 5000
    flows = [
        GradientFlow("rnn", 0.5 ** np.arange(20)[::-1], "a"),
        GradientFlow("rnn", np.ones(20), "b"),
    ]
    doc = {"model": "m", "rnn": "rnn", "activation": "tanh", "init": "default", "T": 20}
    fig = flow_chart(doc, flows)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log" and len(ax.get_lines()) == 2
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), 0.5 ** np.arange(20)[::-1])
    plt.close(fig)
