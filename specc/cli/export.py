"""`specc export`: a checkpoint (or a spec's untrained model) as an ONNX file.

The library does the work (`specc.export.onnx`); this module picks the
network, the options and the output path, and turns every problem into a
one-line error (exit status 1) before anything is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from specc.errors import OptionError
from specc.ir.ops import SIZE_SYMBOLS, NodeBase
from specc.ir.spec import Model

NAME = "export"

DESCRIPTION = """\
Write a trained model's inference graph as ONNX, for onnxruntime (Python, C++,
C#, Java, the browser) or for viewing in Netron.

The graph is what specc evaluates with: batchnorm uses its running
statistics and dropout is off. Batch and time axes are dynamic. Token inputs
take int64 ids; the vocabularies and labels are stored in the model's
metadata (specc.vocab, specc.labels, as JSON lists in id order). A tag
checkpoint's graph also takes `lengths` (int64, one per row) for padded
batches, masked exactly as specc masks them.

Given a spec file instead, exports model --model with its initial weights
(sizes from --sizes, weights from --seed). Needs the onnx extra:
pip install 'specc[onnx]'."""

EPILOG = """\
examples:
  specc export runs/corpus_pos.npz
  specc export runs/python_docs.npz -o char_rnn.onnx --dtype float64
  specc export specs/tagger.spec --model tagger --sizes vocab=100,labels=17"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `specc export` and its options."""
    p = sub.add_parser(
        NAME,
        help="write a checkpoint's model as ONNX (needs the onnx extra)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "file",
        metavar="CKPT|FILE.spec",
        help="a checkpoint written by `specc run`, or a spec file with --model",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE.onnx", help="where to write (default: CKPT with .onnx)"
    )
    p.add_argument("--opset", type=int, metavar="N", help="ONNX opset, 13 to 21 (default 17)")
    p.add_argument(
        "--dtype",
        default="float32",
        metavar="float32|float64",
        help="the float type of weights and computation (default float32)",
    )
    p.add_argument("--model", metavar="M", help="a spec file's model to export untrained")
    p.add_argument("--sizes", metavar="NAME=N,...", help="sizes of a spec's model: vocab, labels")
    p.add_argument(
        "--seed", type=int, metavar="S", help="a spec's initial weights (default: its task's)"
    )
    p.add_argument(
        "--lengths",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="take a `lengths` input for padded batches (default: for tag tasks)",
    )
    p.add_argument(
        "--state",
        action="store_true",
        help="take every recurrent layer's initial state as inputs (NODE.h0, NODE.c0) "
        "and return its final one (NODE.hn, NODE.cn), to step a character model one "
        "call at a time carrying the state",
    )


def run(args: argparse.Namespace) -> int:
    """Export as the options ask; prints where the file went."""
    from specc.cli.explain import is_checkpoint
    from specc.export import require_onnx
    from specc.fileio import check_writable

    require_onnx()
    from specc.export.onnx import DEFAULT_OPSET, OnnxOptions, to_onnx, write_onnx

    if is_checkpoint(args.file):
        source = _from_checkpoint(args)
        default_out = Path(args.file).with_suffix(".onnx")
    else:
        source = _from_spec(args)
        default_out = Path(args.file).with_name(f"{source['net'].model.name}.onnx")
    net, task = source.pop("net"), source["task"]
    lengths = args.lengths if args.lengths is not None else task is not None and task.kind == "tag"
    options = OnnxOptions(
        opset=DEFAULT_OPSET if args.opset is None else args.opset,
        dtype=args.dtype,
        lengths=lengths,
        state=args.state,
    )
    out = Path(args.output) if args.output else default_out
    check_writable(out)  # before the work, like every writer
    proto = to_onnx(net, options, **source)
    write_onnx(out, proto)
    inputs = ", ".join(i.name for i in proto.graph.input)
    print(f"wrote {out} (opset {options.opset}, {options.dtype}; inputs {inputs})")
    return 0


def _from_checkpoint(args: argparse.Namespace) -> dict:
    from specc.train.checkpoint import load_checkpoint

    if args.model or args.sizes or args.seed is not None:
        raise OptionError(
            "--model, --sizes and --seed apply to a spec file; a checkpoint holds its "
            "model, sizes and weights"
        )
    ckpt = load_checkpoint(args.file)
    return {
        "net": ckpt.network(),
        "task": ckpt.task,
        "vocab": ckpt.vocab,
        "labels": ckpt.labels,
        "chars": ckpt.chars,
        "trained_steps": ckpt.step,
    }


def _from_spec(args: argparse.Namespace) -> dict:
    import specc
    from specc.cli.explain import parse_sizes

    if args.model is None:
        raise OptionError(
            f"{args.file} is not a checkpoint (.npz); export a checkpoint written by "
            "`specc run`, or a spec's untrained model with --model M --sizes vocab=N,..."
        )
    program = specc.load(args.file)
    model = program.model(args.model)
    sizes = parse_sizes(args.sizes)
    used = {d for n in model.nodes for d in _dims(model, n) if d in SIZE_SYMBOLS}
    missing = sorted(used - set(sizes))
    if missing:
        raise OptionError(
            f"model '{model.name}' needs its sizes: give --sizes "
            + ",".join(f"{d}=N" for d in missing)
        )
    task = next((t for t in program.ir.tasks if t.model == model.name), None)
    seed = args.seed if args.seed is not None else (task.seed if task else 0)
    net = program.build(model.name, sizes, seed=seed)
    return {"net": net, "task": task, "vocab": None, "labels": None, "trained_steps": 0}


def _dims(model: Model, node: NodeBase) -> list:
    """Every dimension of the node's output and parameters (symbols not yet bound)."""
    dims = list(node.shape.dims) if node.shape is not None else []
    for shape in model.param_shapes(node).values():
        dims.extend(shape)
    return dims
