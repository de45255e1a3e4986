"""Output that cannot be written, through the real entry point (`specc.cli.main`).

Each failure is simulated in-process: a file in place of the output directory,
a file system that refuses to create files (os.open raising EROFS or EACCES),
too little free space (shutil.disk_usage), and a disk that fills part way
through a write (os.write writing half, then raising ENOSPC). Tests run as
root, so permissions alone would not stop a write.

Every case must end with exit 1 and one line on stderr, leave no temporary
file, and leave an earlier checkpoint byte for byte as it was; the up-front
checks must refuse before any data is read or any step is taken.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import specc.train.loop as loop
from specc.cli.main import main
from specc.fileio import OutputError, check_writable, size_rounded_up, write_bytes
from specc.train.checkpoint import checkpoint_nbytes, load_checkpoint

from helpers import SPECS, write_spec_and_data

SPEC = """
model lm {
    input  chars : tokens
    output next  = chars -> embedding(dim=8) -> rnn(hidden=16) -> dense(units=vocab) -> softmax
}
task t : next_char {
    model    = lm
    data     = text("corpus.txt")
    seq_len  = 10
    batch    = 4
    epochs   = 3
    generate = 10
}
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    corpus = "the cat and the hat sat on a mat. " * 12
    return write_spec_and_data(tmp_path, SPEC, {"corpus.txt": corpus})


@pytest.fixture
def steps(monkeypatch) -> list[int]:
    """Counts the training steps taken (the loop's own `train_step`, wrapped)."""
    taken: list[int] = []
    real = loop.train_step

    def counting(net, opt, batch, task, step, last_good=None):
        taken.append(step)
        return real(net, opt, batch, task, step, last_good)

    monkeypatch.setattr(loop, "train_step", counting)
    return taken


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot write "), err
    assert "Traceback" not in err
    return err


def temporaries(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp*")) if folder.is_dir() else []


def path_of(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def refuse_creating(monkeypatch, folder: Path, code: int) -> None:
    """Every file created under `folder` fails with `code`, as on a read-only mount."""
    real = os.open

    def fake(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and str(Path(path).resolve()).startswith(str(folder)):
            raise OSError(code, os.strerror(code), str(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake)


def fill_disk_during(monkeypatch, which: Callable[[str, int], bool]) -> list[str]:
    """The disk fills part way through the writes `which(path, nth)` picks (nth counts
    the writes of that file name from 1): half the first chunk is written, then ENOSPC.
    Returns the temporary files those writes went to."""
    real = os.write
    seen: dict[str, int] = {}
    failing: list[str] = []

    def fake(fd, data):
        path = path_of(fd)
        name = Path(path).name
        if name.startswith(".") and name.endswith(".tmp"):
            if path not in seen:  # the nth temporary of this target (`.NAME.XXXX.tmp`)
                target = name.rsplit(".", 2)[0]
                seen[path] = sum(1 for p in seen if Path(p).name.startswith(target + ".")) + 1
            if which(name, seen[path]):
                if path in failing:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                failing.append(path)
                return real(fd, data[: max(1, len(data) // 2)])
        return real(fd, data)

    monkeypatch.setattr(os, "write", fake)
    return failing


# ----- refused before any work ------------------------------------------------------------


def test_a_file_in_place_of_the_output_directory_is_refused_before_reading_data(
    spec, monkeypatch, capsys
):
    blocker = spec.parent / "taken"
    blocker.write_text("not a directory")

    def no_data(*args, **kwargs):
        raise AssertionError("the data was read before the output place was checked")

    monkeypatch.setattr(loop, "prepare", no_data)
    assert main(["run", str(spec), "--out", str(blocker)]) == 1
    err = one_line_error(capsys)
    assert f"{blocker}/t.npz: {blocker} is a file, not a directory" in err
    assert blocker.read_text() == "not a directory"


@pytest.mark.parametrize(
    "code, words", [(errno.EROFS, "read-only file system"), (errno.EACCES, "permission denied")]
)
def test_a_directory_that_refuses_writes_is_refused_before_training(
    spec, monkeypatch, capsys, steps, code, words
):
    out = spec.parent / "out"
    out.mkdir()
    refuse_creating(monkeypatch, out, code)
    assert main(["run", str(spec), "--out", str(out)]) == 1
    err = one_line_error(capsys)
    assert f"cannot write {out}/t.npz: {words}" in err
    assert steps == [] and list(out.iterdir()) == []


def test_too_little_free_space_is_refused_before_the_first_step(spec, monkeypatch, capsys, steps):
    out = spec.parent / "out"
    real = shutil.disk_usage
    monkeypatch.setattr(
        shutil, "disk_usage", lambda p: real(p)._replace(free=10_000) if p == out else real(p)
    )
    assert main(["run", str(spec), "--out", str(out)]) == 1
    err = one_line_error(capsys)
    assert f"cannot write {out}/t.npz: only 10 KiB free on its device (needs " in err
    assert steps == [] and not out.exists()  # the directory the check made is gone again


def test_the_space_asked_for_covers_the_checkpoint_and_is_close_to_it(spec, monkeypatch):
    out = spec.parent / "out"
    asked: list[int] = []
    real = loop.check_writable

    def recording(path, needs=0):
        asked.append(needs)
        real(path, needs)

    monkeypatch.setattr(loop, "check_writable", recording)
    assert main(["run", str(spec), "--out", str(out)]) == 0
    written = sum(p.stat().st_size for p in out.iterdir())  # last, best and metrics
    assert {p.name for p in out.iterdir()} == {"t.npz", "t.best.npz", "t.json"}
    needs = max(asked)
    assert written <= needs <= 1.2 * written + loop.METRICS_ALLOWANCE + 16 * 1024
    ckpt = load_checkpoint(out / "t.npz")
    assert (out / "t.npz").stat().st_size <= checkpoint_nbytes(ckpt)


# ----- a disk that fills during the run ----------------------------------------------------


def test_a_full_disk_during_the_final_checkpoint_keeps_the_earlier_one(spec, monkeypatch, capsys):
    out = spec.parent / "out"
    assert main(["run", str(spec), "--out", str(out), "--epochs", "1"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    failing = fill_disk_during(monkeypatch, lambda name, nth: name.startswith(".t.npz."))
    assert main(["run", str(spec), "--out", str(out)]) == 1
    err = one_line_error(capsys)
    total = load_checkpoint(out / "t.npz").step * 3  # the earlier run was one epoch
    assert f"cannot write {out}/t.npz: no space left on device (needs " in err
    assert f"stopped at step {total // 3}/{total};" in err  # the first epoch's checkpoint
    # the best checkpoint, saved just before, is named as the latest good one
    assert f"the latest good checkpoint is {out}/t.best.npz (step {total // 3})" in err
    assert load_checkpoint(out / "t.best.npz").step == total // 3
    assert len(failing) == 1  # it did fail part way through a write
    del before["t.best.npz"]
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != "t.best.npz"} == before
    assert temporaries(out) == []


def test_a_full_disk_before_any_save_of_the_run_says_the_earlier_file_is_untouched(
    spec, monkeypatch, capsys
):
    out = spec.parent / "out"
    assert main(["run", str(spec), "--out", str(out), "--epochs", "1"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    fill_disk_during(monkeypatch, lambda name, nth: True)  # every file, from the first
    assert main(["run", str(spec), "--out", str(out)]) == 1
    err = one_line_error(capsys)
    assert f"cannot write {out}/t.best.npz: no space left on device (needs " in err
    assert f"no checkpoint of this run was saved ({out}/t.npz, from before this run, is " in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert temporaries(out) == []


def test_a_full_disk_at_a_periodic_checkpoint_stops_training_there(
    spec, monkeypatch, capsys, steps
):
    out = spec.parent / "out"
    kept: dict[str, bytes] = {}

    def second_checkpoint(name: str, nth: int) -> bool:
        if name.startswith(".t.npz.") and nth == 2 and not kept:
            kept["ckpt"] = (out / "t.npz").read_bytes()  # what the first save wrote
        return name.startswith(".t.npz.") and nth == 2

    fill_disk_during(monkeypatch, second_checkpoint)
    assert main(["run", str(spec), "--out", str(out)]) == 1
    err = one_line_error(capsys)
    first = load_checkpoint(out / "t.npz").step  # the end of epoch 1
    assert f"stopped at step {2 * first}/{3 * first}; " in err
    # the best checkpoint of step 18 was written just before the last one failed
    assert f"the latest good checkpoint is {out}/t.best.npz (step {2 * first})" in err
    assert (out / "t.npz").read_bytes() == kept["ckpt"]
    assert len(steps) == 2 * first  # not one step more after the failure
    assert temporaries(out) == []


def test_a_full_disk_for_the_metrics_names_the_checkpoint_just_saved(spec, monkeypatch, capsys):
    out = spec.parent / "out"
    fill_disk_during(monkeypatch, lambda name, nth: name.startswith(".t.json."))
    assert main(["run", str(spec), "--out", str(out)]) == 1
    err = one_line_error(capsys)
    step = load_checkpoint(out / "t.npz").step
    assert f"cannot write {out}/t.json: no space left on device" in err
    assert f"the latest good checkpoint is {out}/t.npz (step {step})" in err
    assert not (out / "t.json").exists() and temporaries(out) == []


# ----- the other commands that write -------------------------------------------------------


def test_diagnose_svg_under_a_file_is_one_line_before_measuring(tmp_path, monkeypatch, capsys):
    import specc.diagnose.flow as flow

    blocker = tmp_path / "some_file"
    blocker.write_text("")
    monkeypatch.setattr(flow, "gradient_flow", lambda *a: pytest.fail("measured first"))
    argv = ["diagnose", str(SPECS / "adding.spec"), "--svg", str(blocker / "x.svg")]
    assert main(argv) == 1
    assert f"{blocker} is a file, not a directory" in one_line_error(capsys)


def test_explain_svg_on_a_read_only_place_is_one_line(tmp_path, monkeypatch, capsys):
    refuse_creating(monkeypatch, tmp_path, errno.EROFS)
    argv = ["explain", str(SPECS / "char_rnn.spec"), "--svg", str(tmp_path / "g.svg")]
    assert main(argv) == 1
    assert f"cannot write {tmp_path}/g.svg: read-only file system" in one_line_error(capsys)
    assert capsys.readouterr().out == ""  # refused before the explanation was printed


def test_fmt_write_on_a_full_disk_leaves_the_spec_as_it_was(tmp_path, monkeypatch, capsys):
    spec = write_spec_and_data(tmp_path, "model m{input x:tokens output y=x->softmax}")
    before = spec.read_bytes()
    fill_disk_during(monkeypatch, lambda name, nth: True)
    assert main(["fmt", "--write", str(spec)]) == 1
    assert f"cannot write {spec}: no space left on device (needs " in one_line_error(capsys)
    assert spec.read_bytes() == before and temporaries(tmp_path) == []


# ----- the writer itself -------------------------------------------------------------------


def test_a_written_file_gets_ordinary_permissions_and_keeps_a_replaced_files(tmp_path):
    new = tmp_path / "new.txt"
    write_bytes(new, b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert new.stat().st_mode & 0o777 == 0o666 & ~umask
    new.chmod(0o640)
    write_bytes(new, b"y")
    assert new.stat().st_mode & 0o777 == 0o640 and new.read_bytes() == b"y"


def test_a_directory_in_place_of_the_file_is_named(tmp_path):
    (tmp_path / "x.npz").mkdir()
    with pytest.raises(OutputError, match=r"x\.npz: is a directory$"):
        check_writable(tmp_path / "x.npz")


@pytest.mark.parametrize(
    "n, text", [(0, "0 bytes"), (1023, "1023 bytes"), (1025, "2 KiB"), (370 << 10, "370 KiB")]
)
def test_sizes_round_up_so_needs_never_understates(n, text):
    assert size_rounded_up(n) == text
