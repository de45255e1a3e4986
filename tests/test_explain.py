"""specc explain: counts, accounting, the text view (snapshots), exports, unroll, options.

Snapshots live in tests/snapshots/*.txt. When one is missing, or when
SPECC_UPDATE_SNAPSHOTS=1, the test writes it (and passes); otherwise the
rendered view must equal it, so a change to the picture shows in review.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import specc
import specc.cli.explain as cmd
import specc.explain.views as views
from specc import cli
from specc.errors import OptionError, SpecError
from specc.explain.export import model_json, to_dot, to_mermaid
from specc.explain.unroll import unroll_lines
from specc.ir.accounting import Count, analyse, optimizer_arrays
from specc.train.checkpoint import Checkpoint, save_checkpoint
from specc.train.prepare import task_sizes

from helpers import SPECS, write_spec_and_data

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


# ----- helpers ----------------------------------------------------------------


def load_spec(name: str) -> specc.Program:
    """A spec from specs/; without its data files if they are not there."""
    path = SPECS / name
    try:
        return specc.load(path)
    except SpecError:
        return specc.loads(path.read_text(encoding="utf-8"), base_dir=None)


def report_for(program, sizes=None, model=None, task="first"):
    model = program.bound_model(model, sizes or {})
    if task == "first":
        task = next((t for t in program.ir.tasks if t.model == model.name), None)
    return analyse(model, task)


def params_by_node(report) -> dict[str, int | None]:
    return {n.name: n.param_count.value for n in report.nodes}


def render(view) -> str:
    console = Console(
        width=80, record=True, color_system=None, force_terminal=False, file=io.StringIO()
    )
    console.print(view, width=80)
    text = console.export_text(styles=False)
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def check_snapshot(name: str, text: str) -> None:
    assert text.strip(), "nothing was rendered"
    path = SNAPSHOTS / name
    if os.environ.get("SPECC_UPDATE_SNAPSHOTS") == "1" or not path.exists():
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    expected = path.read_text(encoding="utf-8")
    assert text == expected, (
        f"the view differs from {path}; if the change is intended, rerun with "
        "SPECC_UPDATE_SNAPSHOTS=1 and review the diff"
    )


def explain(*argv: str) -> int:
    """`specc explain ARGV` through the command's entry point; `--debug` makes a user
    error raise (as it would print), so a test can check its type and words."""
    return cli.main(["--debug", "explain", *argv])


def explain_out(capsys, *argv: str) -> str:
    assert explain(*argv) == 0
    return capsys.readouterr().out


SMALL = """
model branches {
    input  x : sequence[3]
    a      = x -> dense(units=4)
    b      = x -> dense(units=5)
    c      = x -> dense(units=4, bias=false)
    j      = (a, b) -> concat
    s      = (a, c) -> add
    output y = (j, s) -> concat -> dense(units=2)
}

model birnn {
    input  x : sequence[5]
    fwd    = x -> rnn(hidden=6)
    bwd    = x -> rnn(hidden=6, reverse=true)
    output last = (fwd, bwd) -> concat -> rnn(hidden=7, return=last) -> dense(units=1)
}
"""


# ----- parameter counts and shapes ------------------------------------------------


def test_char_rnn_counts_with_vocab():
    report = report_for(load_spec("char_rnn.spec"), {"vocab": 65})
    assert params_by_node(report) == {
        "embedding": 2080,  # E: 65*32
        "rnn": 20608,  # W_xh 32*128 + W_hh 128*128 + b 128
        "batchnorm": 256,  # gamma, beta: 2*128 (+256 running statistics, not trainable)
        "leaky_relu": 0,
        "dense": 8385,  # W 128*65 + b 65
        "next": 0,
    }
    # 2080 + 20608 + 256 + 8385 = 31329 trainable; running_mean + running_var = 256
    assert report.trainable == 31329
    assert report.non_trainable == 256
    shapes = {n.name: n.shape.dims for n in report.nodes}
    assert shapes["rnn"] == ("B", "T", 128)
    assert shapes["next"] == ("B", "T", 65)
    assert report.nodes[2].params == {"gamma": (128,), "beta": (128,)}
    assert report.nodes[2].state == {"running_mean": (128,), "running_var": (128,)}


def test_char_rnn_counts_stay_formulas_without_vocab():
    report = report_for(load_spec("char_rnn.spec"))
    # embedding 32·vocab; dense 128·vocab + vocab = 129·vocab; rest 20608 + 256 = 20864
    assert report.trainable.text() == "161·vocab + 20,864"
    assert report.trainable.value is None
    assert report.unbound == ["vocab"]
    assert params_by_node(report)["rnn"] == 20608


def test_tagger_counts():
    report = report_for(load_spec("tagger.spec"), {"vocab": 100, "labels": 17})
    assert params_by_node(report) == {
        "e": 6400,  # E: 100*64
        "fwd": 8256,  # 64*64 + 64*64 + 64
        "bwd": 8256,  # reverse=true has the same parameters
        "concat": 0,
        "batchnorm": 256,  # 2*128 (the concat is 64+64 = 128 wide)
        "dense": 2193,  # 128*17 + 17
        "tags": 0,
    }
    # 6400 + 8256 + 8256 + 256 + 2193 = 25361
    assert report.trainable == 25361
    assert {n.name: n.shape.dims for n in report.nodes}["concat"] == ("B", "T", 128)
    # sgd with momentum keeps one array per parameter
    assert optimizer_arrays(report.task) == 1


def test_adder_counts_and_return_last():
    report = report_for(load_spec("adding.spec"))
    # rnn: W_xh 2*64 + W_hh 64*64 + b 64 = 4288; dense 64*1 + 1 = 65; total 4353
    assert params_by_node(report) == {"rnn": 4288, "sum": 65}
    assert report.trainable == 4353
    assert report.nodes[0].shape.dims == ("B", 64)  # return=last drops time
    assert report.nodes[1].shape.dims == ("B", 1)


def test_small_graph_with_concat_add_reverse_and_return_last():
    program = specc.loads(SMALL)
    report = report_for(program, model="branches")
    assert params_by_node(report) == {
        "a": 16,  # 3*4 + 4
        "b": 20,  # 3*5 + 5
        "c": 12,  # 3*4, bias=false
        "j": 0,
        "s": 0,
        "concat": 0,
        "y": 28,  # concat of j (4+5=9) and s (4) is 13 wide: 13*2 + 2
    }
    assert report.trainable == 76  # 16 + 20 + 12 + 28
    shapes = {n.name: n.shape.dims for n in report.nodes}
    assert shapes["j"] == ("B", "T", 9)
    assert shapes["s"] == ("B", "T", 4)
    assert shapes["concat"] == ("B", "T", 13)

    report = report_for(program, model="birnn")
    assert params_by_node(report) == {
        "fwd": 72,  # 5*6 + 6*6 + 6
        "bwd": 72,  # the same: reverse changes the order, not the parameters
        "concat": 0,
        "rnn": 140,  # 12*7 + 7*7 + 7
        "last": 8,  # 7*1 + 1
    }
    shapes = {n.name: n.shape.dims for n in report.nodes}
    assert shapes["rnn"] == ("B", 7)
    assert "h_{t+1}" in report.model.node("bwd").equation()


# ----- accounting ---------------------------------------------------------------


def test_char_rnn_accounting():
    report = report_for(load_spec("char_rnn.spec"), {"vocab": 65})
    assert report.task.name == "python_docs"  # batch 32, seq_len 64, adam
    assert report.optimizer_scalars() == 2 * 31329  # adam: 2 arrays per parameter
    # multiply-adds per step: rnn 32*128 + 128*128 = 20480; dense 128*65 = 8320
    assert report.macs_token == 28800
    assert report.macs_sequence == 0
    # one batch: B*T*28800 = 32*64*28800
    assert report.macs_batch() == 58_982_400
    # scalars kept per token: embedding 32; rnn 128 out + 128 derivative;
    # batchnorm 128 + 128 x̂; leaky_relu 128 + 128 mask; dense 65; softmax 65 = 930
    assert report.activation_scalars() == 32 * 64 * 930


def test_adder_accounting_per_sequence_and_data_length():
    report = report_for(load_spec("adding.spec"))
    # T comes from adding(length=150); rnn per step 2*64 + 64*64 = 4224;
    # dense on (B, 64) once per sequence: 64
    assert report.batch_values == {"B": 32, "T": 150}
    assert report.macs_token == 4224 and report.macs_sequence == 64
    assert report.macs_batch() == 32 * (150 * 4224 + 64)
    # rnn out B*64, kept 2*B*T*64 (derivatives and the states of return=last); dense B*1
    assert report.activation_scalars() == 32 * 64 + 2 * 32 * 150 * 64 + 32


def test_optimizer_arrays_per_optimizer():
    spec = SMALL.split("model birnn")[0] + (
        "model reg {\n input x : sequence[2]\n output y = x -> rnn(hidden=3, return=last)"
        " -> dense(units=1)\n}\n"
        + "".join(
            f"task t_{i} : regress {{\n model = reg\n data = adding(length=5)\n"
            f" optimizer = {opt}\n}}\n"
            for i, opt in enumerate(
                ["adam(lr=0.1)", "sgd(lr=0.1)", "sgd(lr=0.1, momentum=0.5)", "adagrad(lr=0.1)"]
            )
        )
    )
    program = specc.loads(spec)
    assert [optimizer_arrays(t) for t in program.ir.tasks] == [2, 0, 1, 1]


def test_count_polynomials():
    v = Count.symbol("vocab")
    assert (v * 32 + v * 129 + 20864).text() == "161·vocab + 20,864"
    assert Count.of_dim("vocab + 64") == v + 64
    assert (Count.symbol("T") * Count.symbol("B") * 3).text() == "3·B·T"
    assert (v * 2 + 1).subs({"vocab": 10}) == 21
    assert Count(0).text() == "0"


# ----- the text view ------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "sizes", "snapshot"),
    [
        ("char_rnn.spec", None, "explain_char_rnn.txt"),
        ("char_rnn.spec", {"vocab": 65}, "explain_char_rnn_vocab65.txt"),
        ("tagger.spec", None, "explain_tagger.txt"),
        ("adding.spec", None, "explain_adding.txt"),
    ],
)
def test_text_view_snapshot(spec, sizes, snapshot):
    text = render(views.text_view([report_for(load_spec(spec), sizes)]))
    assert max(len(line) for line in text.splitlines()) <= 80
    check_snapshot(snapshot, text)


@pytest.mark.parametrize(
    ("spec", "steps", "snapshot"),
    [
        ("char_rnn.spec", 3, "explain_char_rnn_unroll3.txt"),
        ("tagger.spec", 4, "explain_tagger_unroll4.txt"),
        ("adding.spec", 150, "explain_adding_unroll150.txt"),
    ],
)
def test_unroll_snapshot(spec, steps, snapshot):
    text = render(views.unroll_view([report_for(load_spec(spec))], steps))
    assert max(len(line) for line in text.splitlines()) <= 80
    check_snapshot(snapshot, text)


def test_text_view_content():
    text = render(views.text_view([report_for(load_spec("tagger.spec"))]))
    assert "words" in text and "input : tokens" in text and "(B, T)" in text
    assert "concat ← fwd, bwd" in text  # multi-input nodes say where inputs come from
    assert "rnn(hidden=64, reverse=true) ← e" in text  # input not the row above
    assert "dense(units=labels)" in text
    assert "129·labels" in text  # a count that depends on an unbound size is a formula
    assert "needs labels" in text  # memory waits for the size
    assert "y = x·W + b" in text  # equations


def test_cli_text_fits_80_columns(capsys):
    for spec in ("char_rnn.spec", "adding.spec", "tagger.spec"):
        out = explain_out(capsys, str(SPECS / spec))
        assert max(len(line.rstrip()) for line in out.splitlines()) <= 80
    out = explain_out(capsys, str(SPECS / "char_rnn.spec"), "--sizes", "vocab=65")
    assert "31,329" in out and "122.4 KiB" in out  # 31329 * 4 bytes


# ----- unroll -------------------------------------------------------------------


def test_unroll_three_steps(capsys):
    out = explain_out(capsys, str(SPECS / "char_rnn.spec"), "--unroll", "3")
    for t in (1, 2, 3):
        assert f"x_{t}" in out and f"h_{t}" in out and f"y_{t}" in out
    assert "h_0 = 0" in out and "W_hh" in out and "W_xh" in out
    assert "x_4" not in out


def test_unroll_reverse_and_last():
    program = specc.loads(SMALL)
    model = program.bound_model("birnn", {})
    fwd = "\n".join(unroll_lines(model, model.node("fwd"), 3))
    assert "h_0 = 0 ─W_hh→ h_1 ─W_hh→ h_2 ─W_hh→ h_3" in fwd
    bwd = "\n".join(unroll_lines(model, model.node("bwd"), 3))
    assert "h_1 ←W_hh─ h_2 ←W_hh─ h_3 ←W_hh─ h_4 = 0" in bwd
    last = unroll_lines(model, model.node("rnn"), 3)
    assert "y_" not in last[0] and last[0].strip() == "y"  # only the returned state
    assert last[0].index("y") == last[2].index("h_3") + 1  # above h_3's centre


def test_unroll_long_sequences_are_elided():
    program = load_spec("adding.spec")
    model = program.bound_model(None, {})
    lines = unroll_lines(model, model.node("rnn"), 1000)
    assert all(len(line) <= 80 for line in lines)
    assert "…" in lines[2] and "h_1000" in lines[2] and "h_1 " in lines[2]


def test_unroll_without_rnn_is_a_user_error(tmp_path):
    spec = write_spec_and_data(
        tmp_path, "model mlp {\n input x : vector[3]\n output y = x -> dense(units=2)\n}\n"
    )
    with pytest.raises(OptionError, match="no rnn"):
        explain(str(spec), "--unroll", "3")
    with pytest.raises(OptionError):
        explain(str(SPECS / "char_rnn.spec"), "--unroll", "0")


# ----- exports ------------------------------------------------------------------


def test_json_matches_the_contract(capsys):
    out = explain_out(
        capsys, str(SPECS / "char_rnn.spec"), "--format", "json", "--sizes", "vocab=65"
    )
    doc = json.loads(out)
    assert list(doc) == ["models"]
    (model,) = doc["models"]
    assert {"name", "sizes", "nodes", "params"} <= set(model)
    assert model["name"] == "char_rnn" and model["sizes"] == {"vocab": 65}
    assert model["params"] == 31329
    names = [n["name"] for n in model["nodes"]]
    assert "chars" not in names  # inputs are not nodes
    for node in model["nodes"]:
        assert {"name", "op", "inputs", "shape", "params", "attrs"} <= set(node)
        assert node["shape"][0] == "B"
        assert all(isinstance(d, int) or d in ("B", "T") for d in node["shape"])
        assert type(node["params"]) is int
    rnn = model["nodes"][names.index("rnn")]
    assert rnn == {
        **rnn,
        "op": "rnn",
        "inputs": ["embedding"],
        "shape": ["B", "T", 128],
        "params": 20608,
    }
    assert rnn["attrs"]["hidden"] == 128 and rnn["attrs"]["activation"] == "tanh"


def test_json_with_unbound_sizes(capsys):
    doc = json.loads(explain_out(capsys, str(SPECS / "char_rnn.spec"), "--format", "json"))
    (model,) = doc["models"]
    nodes = {n["name"]: n for n in model["nodes"]}
    assert model["params"] is None and model["sizes"] == {}
    assert nodes["dense"]["params"] is None and nodes["dense"]["shape"] == ["B", "T", "vocab"]
    assert nodes["rnn"]["params"] == 20608


def _mermaid_ids(text: str) -> tuple[set[str], list[tuple[str, str]]]:
    declared, edges = set(), []
    for line in text.splitlines()[1:]:
        line = line.strip()
        if line.startswith(("subgraph", "direction")) or line == "end":
            continue
        edge = re.fullmatch(r"(\w+) --> (\w+)", line)
        if edge:
            edges.append((edge[1], edge[2]))
            continue
        # every label is quoted, inside (["..."]), ["..."] or [["..."]]
        node = re.fullmatch(r'(\w+)(\(\[|\[\[|\[)"([^"]*)"(\]\)|\]\]|\])', line)
        assert node, f"unexpected mermaid line: {line!r}"
        declared.add(node[1])
    return declared, edges


def test_mermaid_structure():
    program = specc.loads(SMALL)
    reports = [report_for(program, model=m) for m in program.models]
    text = to_mermaid(reports)
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    assert sum(line.strip().startswith("subgraph ") for line in lines) == 2
    assert sum(line.strip() == "end" for line in lines) == 2
    declared, edges = _mermaid_ids(text)
    assert all(a in declared and b in declared for a, b in edges)
    # branches: 1 input, 7 nodes, 10 edges (x->a,b,c; a,b->j; a,c->s; j,s->concat; ->y)
    # birnn: 1 input, 5 nodes, 6 edges (x->fwd,bwd; fwd,bwd->concat; ->rnn; ->last)
    assert len(declared) == 14 and len(edges) == 16
    assert '"concat<br/>(B, T, 13)"' in text  # parentheses safely inside quotes


def test_mermaid_escapes_quotes_and_brackets():
    from specc.explain.export import _mermaid_label

    assert _mermaid_label(['say "hi" <b>']) == '"say #quot;hi#quot; #lt;b#gt;"'


def _dot_check(text: str) -> None:
    assert text.count("{") == text.count("}")
    assert text.startswith("digraph ")
    declared = set(re.findall(r'^\s*("[^"]+") \[', text, flags=re.M))
    edges = re.findall(r'^\s*("[^"]+") -> ("[^"]+");', text, flags=re.M)
    assert edges
    for a, b in edges:
        assert a in declared and b in declared


@pytest.mark.parametrize("spec", ["char_rnn.spec", "tagger.spec", "adding.spec"])
def test_dot_output(spec):
    text = to_dot([report_for(load_spec(spec))])
    _dot_check(text)
    if shutil.which("dot"):
        done = subprocess.run(
            ["dot", "-Tsvg"], input=text, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert "<svg" in done.stdout


def test_dot_from_the_command(capsys):
    out = explain_out(capsys, str(SPECS / "char_rnn.spec"), "--format", "dot")
    _dot_check(out)
    assert '"char_rnn.chars" -> "char_rnn.embedding";' in out


def test_dot_for_several_models():
    program = specc.loads(SMALL)
    text = to_dot([report_for(program, model=m) for m in program.models])
    _dot_check(text)
    assert text.count("subgraph cluster_") == 2
    assert '"branches.a" -> "branches.j";' in text and '"branches.b" -> "branches.j";' in text


def test_svg(tmp_path, capsys):
    out = tmp_path / "graph.svg"
    explain_out(capsys, str(SPECS / "char_rnn.spec"), "--svg", str(out))
    assert out.read_text(encoding="utf-8").startswith("<svg")


def test_model_json_for_several_models():
    program = specc.loads(SMALL)
    docs = [model_json(report_for(program, model=m)) for m in program.models]
    assert [d["params"] for d in docs] == [76, 292]  # 16+20+12+28; 72+72+140+8


# ----- options ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("vocab=abc", "whole number"),
        ("vocab", "NAME=N"),
        ("foo=3", "unknown size 'foo'"),
        ("vocab=0", "whole number"),
        ("vocab=65,vocab=66", "twice"),
        ("=3", "NAME=N"),
        ("", "empty"),
    ],
)
def test_bad_sizes_are_user_errors(value, message):
    with pytest.raises(OptionError, match=message):
        explain(str(SPECS / "char_rnn.spec"), "--sizes", value)


def test_parse_sizes():
    assert cmd.parse_sizes("vocab=65, labels=12") == {"vocab": 65, "labels": 12}
    assert cmd.parse_sizes(None) == {}


def test_unknown_model_and_task_are_user_errors():
    with pytest.raises(OptionError, match="did you mean 'char_rnn'"):
        explain(str(SPECS / "char_rnn.spec"), "--model", "char_rn")
    with pytest.raises(OptionError, match="no task named 'nope'"):
        explain(str(SPECS / "char_rnn.spec"), "--task", "nope")
    with pytest.raises(SpecError):
        explain(str(SPECS / "missing.spec"))


def test_spec_without_models_names_the_file(capsys, tmp_path):
    from specc.cli import main

    spec = tmp_path / "empty.spec"
    spec.write_text("# nothing here yet\n")
    assert main(["explain", str(spec)]) == 1
    err = capsys.readouterr().err
    assert err == f"{spec}: error: defines no model\n"
    assert "<spec>" not in err


def test_model_option_picks_one(capsys, tmp_path):
    spec = write_spec_and_data(tmp_path, SMALL)
    out = explain_out(capsys, str(spec))
    assert "model branches" in out and "model birnn" in out  # every model by default
    out = explain_out(capsys, str(spec), "--model", "birnn")
    assert "model branches" not in out and "model birnn" in out


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit):
        explain("--help")
    out = capsys.readouterr().out
    for option in ("--model", "--task", "--sizes", "--unroll", "--format", "--svg", "FILE|CKPT"):
        assert option in out


def test_task_binds_sizes_from_data(capsys):
    program = specc.load(SPECS / "tagger.spec")
    sizes = task_sizes(program, program.task("ud_english"))
    v, labels = sizes["vocab"], sizes["labels"]
    doc = json.loads(
        explain_out(capsys, str(SPECS / "tagger.spec"), "--task", "ud_english", "--format", "json")
    )
    (model,) = doc["models"]
    assert model["sizes"] == {"vocab": v, "labels": labels}
    # 64·vocab + 2·8256 + 256 + 129·labels
    assert model["params"] == 64 * v + 2 * 8256 + 256 + 129 * labels
    # --sizes overrides what the data says
    doc = json.loads(
        explain_out(
            capsys,
            str(SPECS / "tagger.spec"),
            *("--task", "ud_english", "--sizes", "labels=3", "--format", "json"),
        )
    )
    assert doc["models"][0]["sizes"]["labels"] == 3


# ----- checkpoints --------------------------------------------------------------


def test_checkpoint(tmp_path, capsys):
    program = specc.load(SPECS / "char_rnn.spec")
    net = program.build("char_rnn", sizes={"vocab": 65}, seed=0)
    net.state["batchnorm.running_var"][...] = np.linspace(0.5, 2.0, 128)
    net.state["batchnorm.running_mean"][...] = 0.25
    path = tmp_path / "x.npz"
    save_checkpoint(
        path,
        Checkpoint(
            model=net.model,
            task=program.task(),
            params={k: v.copy() for k, v in net.params.items()},
            state={k: v.copy() for k, v in net.state.items()},
            step=7,
            total_steps=10,
            metrics={"val": {"loss": 1.25}},
        ),
    )
    out = explain_out(capsys, str(path))
    assert "31,329" in out and "step" in out and "7" in out and "1.25" in out
    norm = float(np.linalg.norm(net.params["rnn.W_hh"]))
    assert f"{norm:.4g}" in out
    assert re.search(r"batchnorm\s+0\.25\s+1\.25\s+0\.5\s+2", out)  # mean, var mean/min/max
    assert max(len(line.rstrip()) for line in out.splitlines()) <= 80
    doc = json.loads(explain_out(capsys, str(path), "--format", "json"))
    assert doc["models"][0]["params"] == 31329
    assert doc["checkpoint"]["step"] == 7
    assert doc["checkpoint"]["param_norms"]["rnn.W_hh"] == pytest.approx(norm)
    with pytest.raises(OptionError):
        explain(str(path), "--sizes", "vocab=3")
    with pytest.raises(SpecError):
        explain(str(tmp_path / "missing.npz"))


WIDE = """
model wide {
    input  w : tokens
    oh     = w -> one_hot
    e      = w -> embedding(dim=vocab)
    alias  = e
    j      = (oh, alias) -> concat -> rnn(hidden=labels) -> dropout(p=0.5)
    output out = j -> dense(units=labels) -> softmax
}
"""


def test_unbound_formulas_never_crash_and_fit(capsys, tmp_path):
    spec = write_spec_and_data(tmp_path, WIDE)
    out = explain_out(capsys, str(spec))
    assert max(len(line.rstrip()) for line in out.splitlines()) <= 80
    assert "vocab·vocab" in out  # embedding(dim=vocab): vocab*vocab
    out = explain_out(capsys, str(spec), "--unroll", "2")
    assert "(vocab + vocab)×labels" in out  # W_xh reads the concat of one_hot and embedding
    doc = json.loads(explain_out(capsys, str(spec), "--format", "json"))
    nodes = {n["name"]: n for n in doc["models"][0]["nodes"]}
    assert nodes["concat"]["shape"] == ["B", "T", "vocab + vocab"]
    assert nodes["rnn"]["params"] is None and nodes["alias"]["params"] == 0
    # with sizes: rnn W_xh (5+5)*3, W_hh 3*3, b 3 = 42
    doc = json.loads(
        explain_out(capsys, str(spec), "--format", "json", "--sizes", "vocab=5,labels=3")
    )
    nodes = {n["name"]: n for n in doc["models"][0]["nodes"]}
    assert nodes["rnn"]["params"] == 42 and nodes["e"]["params"] == 25  # E: 5*5
