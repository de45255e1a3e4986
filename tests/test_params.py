"""Named params, `--set`, and sweep blocks as `specc check` sees them (no Ray needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import specc
from specc.errors import OptionError, SpecError
from specc.frontend.compile import compile_text
from specc.frontend.fmt import format_spec

from helpers import REPO, checkout_env, specc_cli, write_file, write_spec_and_data

ADDER = """\
param hidden = 8   # the state size
param lr = 1e-3
param act = leaky_relu(slope=0.01)

model adder {
    input  pairs : sequence[2]
    output sum   = pairs -> rnn(hidden=hidden, activation=act, init=identity, return=last)
                         -> dense(units=1)
}

task adding : regress {
    model     = adder
    data      = adding(length=10, samples=64)
    optimizer = adam(lr=lr)
    steps     = 2
}
"""

LITERAL = (
    ADDER.replace("hidden=hidden", "hidden=8")
    .replace("activation=act", "activation=leaky_relu(slope=0.01)")
    .replace("adam(lr=lr)", "adam(lr=1e-3)")
)


def without_spans(obj) -> object:
    """A model's JSON with every source position left out (the text differs in length)."""
    data = obj.model_dump(mode="json") if hasattr(obj, "model_dump") else obj
    if isinstance(data, dict):
        return {k: without_spans(v) for k, v in data.items() if k != "span"}
    if isinstance(data, list):
        return [without_spans(v) for v in data]
    return data


def first_error(text: str, params: dict[str, str] | None = None) -> tuple[str, str, str | None]:
    with pytest.raises(SpecError) as info:
        compile_text(text, "t.spec", None, params)
    d = info.value.diagnostics[0]
    assert d.span is not None
    return f"{d.span.line}:{d.span.column}", d.message, d.help


def test_a_param_builds_the_model_its_value_would() -> None:
    with_params = specc.loads(ADDER).ir
    literal = specc.loads(LITERAL).ir
    assert without_spans(with_params.model("adder")) == without_spans(literal.model("adder"))
    assert with_params.task("adding").optimizer == literal.task("adding").optimizer
    assert with_params.task("adding").params == {
        "hidden": "8",
        "lr": "1e-3",
        "act": "leaky_relu(slope=0.01)",
    }


def test_a_wrong_type_is_reported_at_the_use_naming_the_declaration() -> None:
    text = ADDER.replace("param hidden = 8", "param hidden = 2.5")
    where, message, _ = first_error(text)
    assert where == "7:40"  # `hidden` inside rnn(...), not the declaration
    assert message == (
        "'hidden' of rnn must be a positive whole number, got 2.5 (param 'hidden' at line 1)"
    )


def test_a_call_valued_param_is_checked_at_its_use() -> None:
    text = ADDER.replace("slope=0.01", "slope=-1")
    where, message, _ = first_error(text)
    assert where == "7:59"
    assert message.endswith("got -1 (param 'act' at line 3)")


def test_a_near_miss_name_suggests_the_param() -> None:
    where, _message, help = first_error(ADDER.replace("hidden=hidden", "hidden=hiden"))
    assert where == "7:40"
    assert help == "did you mean the param 'hidden'?"


def test_a_param_declared_twice_is_an_error() -> None:
    where, message, _ = first_error(ADDER.replace("param lr = 1e-3", "param hidden = 3"))
    assert (where, message) == ("2:7", "param 'hidden' is defined twice (first at line 1)")


def test_set_overrides_a_param_and_names_itself_in_errors() -> None:
    ir = specc.loads(ADDER, params={"hidden": "16", "act": "tanh"}).ir
    assert ir.model("adder").nodes[0].hidden == 16
    assert ir.model("adder").nodes[0].activation.name == "tanh"
    where, message, _ = first_error(ADDER, {"hidden": "0"})
    assert where == "7:40"
    assert message == "'hidden' of rnn must be greater than 0, got 0 (from --set hidden=0)"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"hiden": "3"},
            "--set hiden: no param named 'hiden' in this file; did you mean 'hidden'?",
        ),
        ({"hidden": "3 4"}, "--set hidden=3 4: '3 4' is not one value"),
        ({"hidden": "(("}, "--set hidden=((: '((' is not one value"),
    ],
)
def test_bad_set_is_one_line(params: dict[str, str], message: str) -> None:
    with pytest.raises(OptionError) as info:
        specc.loads(ADDER, params=params)
    assert info.value.render().startswith(f"error: {message}")
    assert "\n" not in info.value.render()


def test_unused_param_is_a_warning_with_its_place(tmp_path: Path) -> None:
    spec = write_file(tmp_path / "t.spec", "param spare = 3\n" + ADDER)
    done = specc_cli("check", str(spec))
    assert done.returncode == 0
    assert done.stderr.startswith(f"{spec}:1:7: warning: param 'spare' is never used")


def test_check_set_undeclared_exits_1_with_one_line(tmp_path: Path) -> None:
    spec = write_file(tmp_path / "t.spec", ADDER)
    done = specc_cli("check", str(spec), "--set", "lrr=0.1")
    assert done.returncode == 1
    assert done.stderr == (
        "error: --set lrr: no param named 'lrr' in this file; did you mean 'lr'?\n"
    )


def test_run_records_the_values_used(tmp_path: Path) -> None:
    spec = write_file(tmp_path / "t.spec", ADDER)
    done = specc_cli("run", str(spec), "--set", "hidden=4", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "out" / "adding.json").read_text())
    assert metrics["params"] == {"hidden": "4", "lr": "1e-3", "act": "leaky_relu(slope=0.01)"}
    with np.load(tmp_path / "out" / "adding.npz") as z:
        task = json.loads(z["__task__"].tobytes())
        meta = json.loads(z["__metrics__"].tobytes())
    assert task["params"]["hidden"] == "4"
    assert meta["params"]["hidden"] == "4"


def test_explain_shows_the_params_and_takes_set(tmp_path: Path) -> None:
    spec = write_file(tmp_path / "t.spec", ADDER)
    done = specc_cli("explain", str(spec), "--set", "hidden=32")
    assert done.returncode == 0, done.stderr
    assert "params: hidden = 32, lr = 1e-3, act = leaky_relu(slope=0.01)" in done.stdout


SWEEP = """
sweep search : adding {
    hidden = choice(4, 8)      # sizes
    lr     = loguniform(1e-4, 1e-1)
    act    = grid(tanh, leaky_relu(slope=0.1))
    metric = val.mse
    scheduler = asha(grace=2)
    trials = 3
}
"""


def test_a_sweep_block_compiles_to_its_ir() -> None:
    sweep = specc.loads(ADDER + SWEEP).ir.sweep("search")
    assert sweep.task == "adding"
    assert sweep.metric == "val.mse" and sweep.mode == "min"
    assert sweep.space["hidden"].values == ["4", "8"]
    assert (sweep.space["lr"].low, sweep.space["lr"].high) == (1e-4, 1e-1)
    assert sweep.space["act"].values == ["tanh", "leaky_relu(slope=0.1)"]
    assert sweep.scheduler is not None and sweep.scheduler.grace == 2
    assert sweep.trials == 3


def test_fmt_keeps_params_and_sweeps_with_their_comments() -> None:
    text = ADDER + SWEEP
    once = format_spec(compile_text(text).surface)
    assert "param hidden = 8  # the state size\nparam lr = 1e-3\n" in once
    assert "    hidden    = choice(4, 8)  # sizes\n" in once
    assert format_spec(compile_text(once).surface) == once
    assert without_spans(specc.loads(once).ir) == without_spans(specc.loads(text).ir)


SWEEP_ERRORS = [
    ("hidden = choice()", "18:14", "choice needs at least one value"),
    ("lr = uniform(0.1)", "18:10", "uniform takes 2 numbers (low, high), got 1"),
    ("lr = loguniform(0, 1)", "18:21", "loguniform needs a low bound above 0, got 0"),
    ("lr = uniform(1, 0.5)", "18:10", "uniform needs low < high, got 1 and 0.5"),
    ("hidden = randint(2, 8.5)", "18:25", "randint takes whole numbers, got 8.5"),
    ("hidden = normal(4, 8)", "18:14", "unknown distribution 'normal'"),
    ("hiden = choice(4, 8)", "18:5", "no param named 'hiden' to sweep"),
    (
        "metric = val.accuracy\n    lr = choice(0.1)",
        "18:14",
        "a regress task does not report 'val.accuracy'",
    ),
    ("lr = choice(0.1)\n    mode = best", "19:12", "'mode' must be 'min' or 'max', got 'best'"),
    ("hidden = grid(4, 8)\n    search = optuna", "18:14", "grid(...) cannot be searched by optuna"),
    ("hidden = choice(4, 2.5)", "18:24", "hidden = 2.5 does not fit at line 7"),
    ("hidden = uniform(4, 8)", "18:22", "hidden = 4.0 does not fit at line 7"),
]


@pytest.mark.parametrize(("line", "where", "message"), SWEEP_ERRORS)
def test_sweep_diagnostics_are_located(line: str, where: str, message: str) -> None:
    text = ADDER + f"sweep s : adding {{\n    {line}\n}}\n"
    got_where, got_message, _help = first_error(text)
    assert (got_where, got_message[: len(message)]) == (where, message), got_message


def test_a_sweep_of_an_undeclared_param_suggests_the_declared_one() -> None:
    _, _, help = first_error(ADDER + "sweep s : adding {\n    hiden = choice(4, 8)\n}\n")
    assert help == "did you mean 'hidden'?"


def test_a_sweep_of_an_unknown_task_suggests_one() -> None:
    where, message, help = first_error(ADDER + "sweep s : addng {\n    lr = choice(0.1)\n}\n")
    assert (where, message, help) == ("17:11", "no task named 'addng'", "did you mean 'adding'?")


def test_sweep_without_ray_exits_1_with_one_line(tmp_path: Path) -> None:
    """Ray hidden from the interpreter: check still validates, sweep says what to install."""
    blocker = write_file(tmp_path / "noray" / "ray" / "__init__.py", "raise ImportError('no')\n")
    spec = write_spec_and_data(tmp_path, ADDER + SWEEP)
    env = checkout_env()
    env["PYTHONPATH"] = f"{blocker.parent.parent}:{env['PYTHONPATH']}"
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "specc.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=120,
        )

    assert cli("check", str(spec)).returncode == 0
    done = cli("sweep", str(spec))
    assert done.returncode == 1
    assert (
        done.stderr
        == "error: specc sweep needs Ray Tune; install it with: pip install 'specc[sweep]'\n"
    )
