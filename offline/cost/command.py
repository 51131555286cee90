"""`python -m offline cost --stack dev --profile medium`: the monthly cost of each pipeline of a stack.

    python -m offline cost --stack dev --profile small          # a table per pipeline and a total
    python -m offline cost --stack prod --volume volumes.yaml   # volumes from a file (over --profile's)
    python -m offline cost --stack prod --profile large --json

Exit codes: 0 estimated, 2 the stack, the volume file or the price table could not be used (the message says why).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from offline.cost.estimators import Estimate, estimate
from offline.cost.inventory import Inventory, inventory
from offline.cost.prices import PRICES_FILE, PriceError, PriceTable, load_prices
from offline.cost.reference import reference_json
from offline.cost.report import json_report, text_report
from offline.cost.volumes import PROFILES, VolumeError, Volumes, load_volumes, profile
from offline.synth import REPO, SynthesisError, synthesize

EXIT_OK, EXIT_FAILED = 0, 2


def add_parser(commands: Any) -> None:
    """Register `cost` on the `python -m offline` subcommands."""
    cost = commands.add_parser(
        "cost", help="estimate the monthly AWS cost of each pipeline of a stack",
        description="Synthesize a stack offline and price each pipeline's resources under a volume profile.")
    cost.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    cost.add_argument("--profile", choices=tuple(PROFILES), default="medium",
                      help="built-in monthly volumes (default: medium); with --volume, the values the file leaves out")
    cost.add_argument("--volume", type=Path, metavar="FILE", help="a YAML or JSON file of monthly volumes")
    cost.add_argument("--prices", type=Path, default=PRICES_FILE, metavar="FILE",
                      help=f"the price table (default: {PRICES_FILE.relative_to(REPO)})")
    cost.add_argument("--project-dir", type=Path, default=REPO, help="directory with Pulumi.yaml (default: here)")
    cost.add_argument("--json", action="store_true", help="print the estimate as JSON")
    cost.set_defaults(handler=run_cost)


def run_cost(args: argparse.Namespace) -> int:
    try:
        volumes = load_volumes(args.volume, base=args.profile) if args.volume else profile(args.profile)
        label = f"{args.volume} over {args.profile}" if args.volume else args.profile
        stack = inventory(synthesize(args.stack, "preview", project_dir=args.project_dir.resolve()))
        prices = load_prices(stack.region, args.prices)
        result = estimate(stack, volumes, prices)
        reference = reference_figures(stack, prices)
    except (VolumeError, PriceError, SynthesisError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(json_report(result, prices, label, reference), indent=2))
    else:
        print(text_report(result, prices, label, reference), end="")
    return EXIT_OK


def reference_figures(stack: Inventory, prices: PriceTable) -> dict[str, Any]:
    """This stack's figures at the reference architectures' volumes (the built-in profiles)."""
    estimates = {name: estimate(stack, profile(name), prices) for name in PROFILES}
    events = {name: _total(e, "eventProcessing") for name, e in estimates.items()}
    files = _file_lines(estimates["medium"])
    return reference_json(events, files, prices)


def _total(result: Estimate, pipeline: str) -> float:
    return next((bill.total for bill in result.bills if bill.pipeline == pipeline), 0.0)


def _file_lines(result: Estimate) -> dict[str, float]:
    bill = next((b for b in result.bills if b.pipeline == "fileIngestion"), None)
    if bill is None:
        return {}
    return {"lambda": sum(i.cost for i in bill.lines if i.service == "Lambda"),
            "sqs": sum(i.cost for i in bill.lines if i.service == "SQS"), "total": bill.total}


def estimate_stack(stack: str, volumes: Volumes, *, project_dir: Path = REPO,
                   prices_file: Path = PRICES_FILE) -> tuple[Estimate, PriceTable]:
    """Synthesize `stack` and estimate it: what tests and benchmarks call."""
    inv = inventory(synthesize(stack, "preview", project_dir=project_dir))
    prices = load_prices(inv.region, prices_file)
    return estimate(inv, volumes, prices), prices
