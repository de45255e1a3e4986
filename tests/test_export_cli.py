"""`specc export` as a user runs it: a trained tagger's checkpoint becomes an ONNX
file that onnxruntime serves with the stored vocabularies, the docs' serving
example runs, and every bad input is one line, exit status 1, and no file.

Needs the onnx extra (skipped without it), except the test that blocks it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import specc
from specc.cli.main import main
from specc.train.checkpoint import load_checkpoint
from specc.train.infer import tag_words

from helpers import REPO, SPECS, checkout_env

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from specc.export.onnx import EMITTERS  # noqa: E402

#: A padded batch: rows of mixed lengths, right-padded with <pad> (id 0).
LENGTHS = np.array([9, 2, 5])


@pytest.fixture(scope="module")
def tagger(tmp_path_factory) -> dict[str, Path]:
    """The shipped pos tagger trained a few steps on each backend: checkpoints whose
    weights, running statistics and vocabularies are not their initial ones."""
    out = {}
    for backend in ("numpy", "reference"):
        folder = tmp_path_factory.mktemp(backend)
        result = specc.load(SPECS / "pos_tagger.spec").train(
            "corpus_pos", steps=3, out_dir=folder, backend=backend
        )
        out[backend] = Path(result.checkpoint)
    return out


def export(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["export", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def padded_batch(vocab: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.random.default_rng(0).integers(2, vocab, (len(LENGTHS), LENGTHS.max()))
    mask = np.arange(LENGTHS.max())[None] < LENGTHS[:, None]
    return np.where(mask, ids, 0), mask


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_tag_checkpoint_exports_its_inference_graph(tagger, tmp_path, capsys, dtype) -> None:
    ckpt = load_checkpoint(tagger["numpy"])
    out = tmp_path / "tagger.onnx"
    status, stdout, _ = export(capsys, str(tagger["numpy"]), "-o", str(out), "--dtype", dtype)
    assert status == 0 and stdout.startswith(f"wrote {out}")
    sess = session(out)
    assert [(i.name, i.shape) for i in sess.get_inputs()] == [
        ("words", ["batch", "time"]),
        ("lengths", ["batch"]),
    ]
    meta = sess.get_modelmeta().custom_metadata_map
    assert json.loads(meta["specc.vocab"]) == list(ckpt.vocab.tokens)
    assert json.loads(meta["specc.labels"]) == list(ckpt.labels.tokens)
    assert meta["specc.kind"] == "tag" and json.loads(meta["specc.trained_steps"]) == 3
    ids, mask = padded_batch(len(ckpt.vocab))
    net = ckpt.network() if dtype == "float32" else ckpt.network().astype(dtype)
    want = net.forward({"words": ids}, mask=mask.astype(dtype))["tags"]
    got = sess.run(None, {"words": ids, "lengths": LENGTHS})[0]
    assert got.dtype == np.dtype(dtype)
    assert np.abs(got - want).max() <= {"float32": 1e-5, "float64": 1e-10}[dtype]
    assert np.abs(ckpt.state["batchnorm.running_mean"]).max() > 0  # trained statistics


def test_checkpoints_from_each_backend_export_the_same_graph(tagger, capsys) -> None:
    graphs = {}
    for backend, path in tagger.items():
        assert export(capsys, str(path))[0] == 0
        model = onnx.load(str(path.with_suffix(".onnx")))
        graphs[backend] = (
            [(n.op_type, list(n.input), list(n.output)) for n in model.graph.node],
            [(t.name, list(t.dims)) for t in model.graph.initializer],
            [i.name for i in model.graph.input],
        )
        ckpt = load_checkpoint(path)
        ids, mask = padded_batch(len(ckpt.vocab))
        want = ckpt.network().forward({"words": ids}, mask=mask.astype("float32"))["tags"]
        got = session(path.with_suffix(".onnx")).run(None, {"words": ids, "lengths": LENGTHS})
        assert np.abs(got[0] - want).max() <= 1e-5, backend
    assert graphs["numpy"] == graphs["reference"]


def test_a_spec_exports_its_untrained_model(tmp_path, capsys) -> None:
    out = tmp_path / "t.onnx"
    args = ["--model", "tagger", "--sizes", "vocab=30,labels=5", "-o", str(out)]
    status, _, _ = export(capsys, str(SPECS / "tagger.spec"), *args)
    assert status == 0
    net = specc.load(SPECS / "tagger.spec").build("tagger", {"vocab": 30, "labels": 5})
    ids, mask = padded_batch(30)
    want = net.forward({"words": ids}, mask=mask.astype("float32"))["tags"]
    got = session(out).run(None, {"words": ids, "lengths": LENGTHS})[0]
    assert np.abs(got - want).max() <= 1e-5


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a user's script in ``cwd``; it must succeed."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=checkout_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def serving_example() -> str:
    """The python block of docs/export.md's serving section."""
    text = (REPO / "docs" / "export.md").read_text(encoding="utf-8")
    section = text[text.index("## Serving it with onnxruntime") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_docs_serving_example_tags_as_specc_does(tagger, tmp_path, capsys) -> None:
    code = serving_example()
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    runs = tmp_path / "specs" / "runs"
    assert export(capsys, str(tagger["numpy"]), "-o", str(runs / "corpus_pos.onnx"))[0] == 0
    done = run_python(code, tmp_path)
    pairs = [token.rsplit("/", 1) for token in done.stdout.split()]
    ckpt = load_checkpoint(tagger["numpy"])
    words = [w for w, _ in pairs]
    assert words == ["The", "kids", "are", "playing", "in", "the", "garden", "."]
    expected = [tags[0][0] for _, tags in tag_words(ckpt.network(), ckpt.vocab, ckpt.labels, words)]
    assert [t for _, t in pairs] == expected


def one_line_failure(capsys, folder: Path, *args: str) -> str:
    """Export fails: status 1, one line on stderr, and no .onnx or temporary file."""
    before = sorted(folder.rglob("*"))
    status, stdout, stderr = export(capsys, *args)
    assert status == 1 and stdout == ""
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert sorted(folder.rglob("*")) == before, "export left a file behind"
    return stderr


def test_bad_inputs_are_one_line_errors_and_leave_no_file(tagger, tmp_path, capsys) -> None:
    ckpt, spec = str(tagger["numpy"]), str(SPECS / "tagger.spec")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir.onnx").mkdir()
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    out = ["-o", str(tmp_path / "o.onnx")]
    cases = {
        "is not a checkpoint": [spec, *out],
        "not a readable .npz checkpoint": [str(tmp_path / "junk.npz"), *out],
        "cannot write": [ckpt, "-o", str(tmp_path / "afile" / "o.onnx")],
        "cannot write ": [ckpt, "-o", str(tmp_path / "adir.onnx")],
        "--opset must be between 13 and 21": [ckpt, "--opset", "99", *out],
        "--dtype must be float32 or float64": [ckpt, "--dtype", "float16", *out],
        "apply to a spec file": [ckpt, "--model", "tagger", *out],
        "needs its sizes: give --sizes labels=N,vocab=N": [spec, "--model", "tagger", *out],
    }
    for message, args in cases.items():
        assert message in one_line_failure(capsys, tmp_path, *args), args


def test_an_op_without_an_emitter_is_refused_by_name(tagger, tmp_path, capsys, monkeypatch):
    monkeypatch.delitem(EMITTERS, "rnn")
    err = one_line_failure(capsys, tmp_path, str(tagger["numpy"]), "-o", str(tmp_path / "o.onnx"))
    assert "cannot export op 'rnn' to ONNX (node 'fwd' of model 'tagger')" in err


def test_without_the_onnx_extra_export_says_what_to_install(tagger, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now fails
    err = one_line_failure(capsys, tmp_path, str(tagger["numpy"]), "-o", str(tmp_path / "o.onnx"))
    assert err == (
        "error: specc export needs the onnx package: pip install 'specc[onnx]' "
        "(or: pip install onnx onnxruntime)\n"
    )


def test_the_best_checkpoint_exports_like_the_last(tagger, capsys, tmp_path) -> None:
    """`specc run` keeps DIR/<task>.best.npz beside the last checkpoint: export reads it,
    and the graph carries the best checkpoint's weights."""
    best = tagger["numpy"].with_name("corpus_pos.best.npz")
    out = tmp_path / "best.onnx"
    status, _, err = export(capsys, str(best), "-o", str(out))
    assert status == 0, err
    table = np.load(best)["e.E"]
    stored = [
        onnx.numpy_helper.to_array(t)
        for t in onnx.load(str(out)).graph.initializer
        if list(t.dims) == list(table.shape)
    ]
    assert any(np.allclose(a, table, rtol=1e-6) for a in stored)


def test_a_carried_char_model_exports_with_its_state_and_steps_like_specc(tmp_path, capsys):
    """`specc export --state`: onnxruntime fed one character per call, carrying the
    states the graph returns, gives the scores specc's own stepping gives."""
    spec = (SPECS / "char_lstm.spec").read_text()
    spec = spec.replace("seq_len", "state     = carry\n    seq_len", 1)
    path = tmp_path / "carried.spec"
    path.write_text(spec)
    program = specc.load(path)
    task = program.task(None)
    result = program.train(task.name, steps=2, out_dir=tmp_path / "runs")
    out = tmp_path / "specs" / "runs" / "python_docs_lstm.onnx"  # where the docs read it
    status, stdout, _ = export(capsys, str(result.checkpoint), "-o", str(out), "--state")
    assert status == 0 and "lstm.h0, lstm.c0" in stdout
    sess = session(out)
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["specc.state"] == "carry"
    net = load_checkpoint(result.checkpoint).network()
    stepper = net.stepper(batch=1)
    state = {k + "0": v for k, v in net.zero_state(1).items()}
    names = [o.name for o in sess.get_outputs()]
    for char in np.random.default_rng(0).integers(0, len(result.prepared.vocab), 12):
        ids = np.array([[char]], dtype=np.int64)
        outs = dict(zip(names, sess.run(None, {"chars": ids, **state}), strict=True))
        state = {k[:-1] + "0": v for k, v in outs.items() if k.endswith("n")}
        want = stepper.scores(ids[0])
        got = np.log(outs[net.model.outputs[0]][:, -1])
        want = want - np.log(np.exp(want - want.max()).sum()) - want.max()
        assert np.abs(got - want).max() < 1e-4
    # the docs' stepping example samples from it
    text = (REPO / "docs" / "export.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text[text.index("## Stepping with") :], re.S)
    done = run_python(code.group(1), tmp_path)
    assert done.stdout.startswith("The ") and len(done.stdout) == len("The ") + 200 + 1
