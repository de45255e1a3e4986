"""`specc diagnose`: its options, and the measuring of gradient flow or covariate shift.

The measurements are `specc.diagnose.flow`; the pictures are
`specc.diagnose.view`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specc.cli.common import add_backend_options, check_device
from specc.errors import OptionError

if TYPE_CHECKING:
    from specc.diagnose.flow import GradientFlow

NAME = "diagnose"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `specc diagnose` and its options."""
    p = sub.add_parser(
        NAME,
        help="gradient flow through time (why a plain rnn forgets)",
        description="Measure ‖∂L_T/∂h_t‖: how much the loss at the last step depends on the "
        "hidden state at each earlier step t, on a batch of the task's data, at "
        "initialisation and (with --train) after training. FILE may be a checkpoint. "
        "With --shift, measure instead how a layer's input distribution drifts during "
        "training with and without batchnorm. The measurements run in float64 on "
        "--backend (the numbers agree across backends to rounding).",
    )
    p.add_argument("file", metavar="FILE", help="a spec file or a checkpoint (.npz)")
    p.add_argument("--task", metavar="T", help="which task (default: the first)")
    p.add_argument("--rnn", metavar="NODE", help="which rnn node (default: the first)")
    p.add_argument(
        "--train",
        action="store_true",
        help="also train the task (as specc run does) and measure again",
    )
    p.add_argument(
        "--shift",
        action="store_true",
        help="measure internal covariate shift with and without batchnorm",
    )
    p.add_argument(
        "--steps",
        type=int,
        metavar="N",
        help="training steps for --train or --shift (default: the task's)",
    )
    p.add_argument("--seed", type=int, metavar="S", help="override the task's seed")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument(
        "--svg",
        metavar="OUT",
        help="also save the chart as a picture: a log-scale chart of every measurement "
        "with specc[plot] installed (the suffix picks .svg, .png or .pdf), else the "
        "terminal view as SVG",
    )
    p.add_argument("--out", metavar="DIR", help="where --train writes its checkpoint")
    add_backend_options(p)


def run(args: argparse.Namespace) -> int:
    """Measure gradient flow (or, with --shift, covariate shift) and show or print it as JSON."""
    from specc.api import load
    from specc.diagnose.flow import covariate_shift, gradient_flow
    from specc.diagnose.view import flow_chart, shift_view, show, title_view
    from specc.fileio import check_writable
    from specc.train.checkpoint import load_checkpoint
    from specc.train.loop import configure, run_task
    from specc.train.prepare import prepare

    if args.steps is not None and args.steps <= 0:
        raise OptionError(f"--steps must be a positive whole number, got {args.steps}")
    check_device(args)
    backend, device = args.backend, args.device
    if args.svg:
        check_writable(args.svg)  # before measuring (and, with --train, training)
    flows: list[GradientFlow] = []
    doc: dict[str, Any] = {}
    if Path(args.file).suffix == ".npz":
        ckpt = load_checkpoint(args.file)
        task = ckpt.task
        base = Path(ckpt.spec_path).parent if ckpt.spec_path else Path.cwd()
        prepared = prepare(task, base, ckpt.model)
        net = ckpt.network(backend, device).astype("float64")
        flows.append(
            gradient_flow(
                net,
                prepared.batch(0, 0),
                task,
                args.rnn,
                f"after {ckpt.step} training steps (checkpoint)",
            )
        )
        model_name = ckpt.model.name
    else:
        program = load(args.file)
        task = configure(program.task(args.task), None, None, args.seed)
        prepared = prepare(task, program.base_dir, program.model(task.model))
        model = program.bound_model(task.model, prepared.sizes)
        model_name = model.name
        if args.shift:
            steps = args.steps or 200
            every = max(1, steps // 10)
            traces = covariate_shift(
                model, task, prepared, steps, every, task.seed, backend, device
            )
            if args.format == "json":
                sys.stdout.write(
                    json.dumps(
                        {
                            "model": model.name,
                            "task": task.name,
                            "shift": [t.to_json() for t in traces],
                        }
                    )
                    + "\n"
                )
            else:
                show(shift_view(traces), args.svg)
            return 0
        net = program.build(
            task.model, prepared.sizes, task.seed, "float64", backend=backend, device=device
        )
        batch = prepared.batch(0, 0)
        flows.append(gradient_flow(net, batch, task, args.rnn, "at initialisation"))
        if args.train:
            result = run_task(
                program,
                task.name,
                steps=args.steps,
                seed=args.seed,
                out_dir=args.out,
                backend=backend,
                device=device,
            )
            trained = result.net.astype("float64")
            flows.append(
                gradient_flow(
                    trained, batch, task, args.rnn, f"after {result.steps} training steps"
                )
            )
            doc["trained_metrics"] = result.metrics
    node = net.model.node(flows[0].node)
    doc.update(
        {
            "model": model_name,
            "task": task.name,
            "rnn": node.name,
            # an rnn names its activation; a gated cell's functions are its op
            "activation": node.activation.text() if hasattr(node, "activation") else node.op,
            "init": node.init,
            "batch": int(prepared.batch(0, 0).targets.shape[0]),
            **flows[0].to_json(),
        }
    )
    if len(flows) > 1:
        doc["after_training"] = flows[1].to_json()

    def chart():
        return flow_chart(doc, flows)

    if args.format == "json":
        sys.stdout.write(json.dumps(doc) + "\n")
        if args.svg:
            show(title_view(doc, flows), args.svg, quiet=True, chart=chart)
        return 0
    show(title_view(doc, flows), args.svg, chart=chart)
    return 0
