"""`python -m offline preview`: what would this stack create, and does the policy pack let it through?

    python -m offline preview --stack dev                       # human report
    python -m offline preview --stack prod --mode update --json # machine-readable report
    python -m offline preview --stack dev --export dev.json --graph dev.mmd

Exit codes: 0 no mandatory violation, 1 at least one, 2 the program, its config or the policy config failed (the
message is the program's own), 130 interrupted. The policy pack process is stopped in every case.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from offline import analyzer, graph, pack_runtime, policy_config
from offline.cost.command import add_parser as add_cost_parser
from offline.export import write_export
from offline.model import ResourceRecord
from offline.report import PreviewResult, json_report, text_report
from offline.sarif import sarif_report
from offline.synth import DEFAULT_ACCOUNT_ID, REPO, Synthesis, SynthesisError, synthesize

EXIT_OK, EXIT_MANDATORY, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_TIMEOUT_SECONDS = 600.0


class PreviewFailed(Exception):
    """The preview could not give a verdict; the message says why, in the words of whatever failed."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m offline", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    preview = commands.add_parser(
        "preview", help="synthesize a stack offline and run the policy pack over it",
        description="Run the Pulumi program under a recording mock monitor and the policy pack over what it "
                    "registers, as `pulumi preview --policy-pack` would, without the Pulumi CLI or AWS.")
    preview.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    preview.add_argument("--mode", choices=("preview", "update"), default="preview",
                         help="preview: provider-computed outputs unknown, as in a preview of a new stack; "
                              "update: realistic ids and ARNs, as after `pulumi up` (default: preview)")
    preview.add_argument("--policy-config", type=Path, metavar="FILE",
                         help="a --policy-pack-config JSON file (default: <policy pack>/config/<stack>.json if "
                              "present, unless the pack is this project's and the program is not)")
    preview.add_argument("--json", action="store_true", help="print a machine-readable report instead")
    preview.add_argument("--export", type=Path, metavar="FILE",
                         help="write the stack as a `pulumi stack export` (version 3) deployment")
    preview.add_argument("--sarif", type=Path, metavar="FILE",
                         help="write the findings as SARIF 2.1.0, for GitHub code scanning")
    preview.add_argument("--graph", type=Path, metavar="FILE",
                         help="write the data flow as a Mermaid flowchart (fenced if FILE ends in .md)")
    preview.add_argument("--account-id", type=_account_id, default=DEFAULT_ACCOUNT_ID,
                         help=f"the AWS account the invokes answer with (default: {DEFAULT_ACCOUNT_ID})")
    preview.add_argument("--project-dir", type=Path, default=REPO,
                         help="directory with Pulumi.yaml and the program (default: this repository)")
    preview.add_argument("--policy-pack", type=Path, default=analyzer.DEFAULT_PACK_DIR, metavar="DIR",
                         help="the policy pack directory (default: policies/)")
    preview.add_argument("--invokes", type=Path, metavar="FILE",
                         help="answers to the program's invokes and stack references (default: "
                              "offline.<stack>.yaml beside Pulumi.yaml, if present)")
    preview.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, metavar="SECONDS",
                         help=f"fail if the whole preview takes longer (default: {DEFAULT_TIMEOUT_SECONDS:g})")
    preview.add_argument("--pack-python", metavar="PYTHON",
                         help="the interpreter to run the pack with (default: as the Pulumi CLI chooses it, from the "
                              "pack's PulumiPolicy.yaml runtime options: its virtualenv, else $PULUMI_PYTHON_CMD or "
                              "python3)")
    preview.set_defaults(handler=run_preview)

    add_cost_parser(commands)  # `cost`: offline/cost/command.py
    return parser


class _TimedOut(BaseException):  # not an Exception: nothing on the way up may catch it as the program's own
    pass


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Turn a run longer than `seconds` (a program or a pack that hangs) into an error, where signals allow it."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _TimedOut

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _deadline(getattr(args, "timeout", 0)):
            return int(args.handler(args))
    except _TimedOut:
        print(f"error: the preview did not finish within {args.timeout:g} s (--timeout): the program or the "
              f"policy pack is waiting for something that never comes", file=sys.stderr)
        return EXIT_FAILED
    except PreviewFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def batch_gc() -> None:
    """Tune CPython's collector for a process that builds one large object graph and then exits.

    With the defaults, full collections re-traverse the growing graph of resources and outputs again and again:
    about 40 % of the CPU time of a 1,500-resource synthesis, and the part that grows faster than the stack. The
    imported modules are never garbage, so they are frozen out of collection, and the young generation is
    collected less often. Only for a process of its own (`python -m offline`, the benchmark): frozen objects are
    never collected, which a long-lived process such as a test run should not accept.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def run_preview(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    config = _policy_config(args.policy_config, _default_policy_config(args))
    synthesis = _synthesize(args)
    # The files describe the program, not the verdict: written first, they exist even if the pack fails.
    if args.export:
        write_export(synthesis, args.export)
    if args.graph:
        _write_graph(synthesis.resources, args.graph)
    try:
        python = args.pack_python or pack_runtime.pack_python(args.policy_pack.resolve())
        analysis = analyzer.analyze(synthesis.resources, project=synthesis.project, stack=synthesis.stack,
                                    mode=synthesis.mode, policy_config=config, pack_dir=args.policy_pack,
                                    python=python)
    except (policy_config.PolicyConfigError, analyzer.PolicyPackError, pack_runtime.PackRuntimeError) as error:
        raise PreviewFailed(str(error)) from error
    result = PreviewResult(synthesis, analysis, time.perf_counter() - started)
    if args.sarif:
        args.sarif.write_text(json.dumps(sarif_report(result, project_dir=args.project_dir), indent=2) + "\n")
    if args.json:
        print(json.dumps(json_report(result), indent=2))
    else:
        print(text_report(result), end="")
    return EXIT_OK if result.passed else EXIT_MANDATORY


def _default_policy_config(args: argparse.Namespace) -> Path | None:
    """The pack's config for the stack: this project's pack keeps configs for this project's stacks only, so a
    foreign program's stack named like one of them does not pick it up."""
    default = args.policy_pack / "config" / f"{args.stack}.json"
    ours = args.policy_pack.resolve() == analyzer.DEFAULT_PACK_DIR.resolve()
    if ours and args.project_dir.resolve() != REPO.resolve():
        return None
    return default


def _policy_config(given: Path | None, default: Path | None) -> dict[str, Any] | None:
    path = given or (default if default is not None and default.is_file() else None)
    if path is None:
        return None
    try:
        return policy_config.load(path)
    except OSError as error:
        raise PreviewFailed(f"policy config {path}: {error.strerror}") from error
    except policy_config.PolicyConfigError as error:
        raise PreviewFailed(str(error)) from error


def _synthesize(args: argparse.Namespace) -> Synthesis:
    try:
        return synthesize(args.stack, args.mode, project_dir=args.project_dir.resolve(), account_id=args.account_id,
                          invokes=args.invokes)
    except SynthesisError as error:
        raise PreviewFailed(str(error)) from error
    except Exception as error:
        # Whatever else the program raises is its own failure too: report it in its words, without a traceback.
        raise PreviewFailed(f"the program failed: {type(error).__name__}: {error}") from error


def _write_graph(resources: Sequence[ResourceRecord], path: Path) -> None:
    chart = graph.mermaid(resources)
    path.write_text(f"```mermaid\n{chart}```\n" if path.suffix == ".md" else chart)


def _account_id(value: str) -> str:
    if not re.fullmatch(r"\d{12}", value):
        raise argparse.ArgumentTypeError(f"an AWS account id is 12 digits, got {value!r}")
    return value
