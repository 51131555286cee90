"""``python -m ops``: runbook commands for a deployed stack (see README, "Runbook").

Exit codes: 0 done (or nothing to do); 1 failed, a check failed, or the operator declined; 2 bad arguments or
outputs; 3 refused because the same work is already running (a sync, a move task).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from ops import redrive, replay, resync, smoke, status
from ops.aws import Clients
from ops.queues import QueueMissingError
from ops.stack import PIPELINES, OutputsError, StackOutputs, load_outputs


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    source = common.add_mutually_exclusive_group(required=True)
    source.add_argument("--outputs", metavar="FILE", help="saved `pulumi stack output --json`")
    source.add_argument("--stack", metavar="NAME", help="read the outputs with `pulumi stack output --json --stack`")
    common.add_argument("--profile", help="AWS profile (default: the usual credential chain)")
    common.add_argument("--dry-run", action="store_true", help="show what would be done, change nothing")
    common.add_argument("--yes", action="store_true", help="do it without asking")

    top = argparse.ArgumentParser(prog="python -m ops", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True)
    pipelines = sorted(PIPELINES)

    command = commands.add_parser("redrive", parents=[common], help="move dead-lettered messages back to their source")
    command.add_argument("--pipeline", required=True, choices=pipelines)
    command.add_argument("--lane", help="one lane only, by the queue holding the messages (e.g. changes-dlq)")
    command.add_argument("--sample", type=int, default=5, help="messages to show (at most 10; default 5)")
    command.add_argument("--rate", type=int, help="MaxNumberOfMessagesPerSecond of the move task (default: SQS's)")

    command = commands.add_parser("replay-failures", parents=[common],
                                  help="turn a batch-inference run's failure-lane records into a new corpus")
    command.add_argument("--run", required=True, help="the run id (execution name) whose failures to take")
    command.add_argument("--local", metavar="FILE", help="write the replayable corpus lines here, not to S3")
    command.add_argument("--fix-file", metavar="FILE",
                         help="records that need a fix first (default: <run>-to-fix.jsonl when there are any)")
    command.add_argument("--start-run", nargs="?", const="", metavar="NAME",
                         help="start a run over the new corpus (default name: <run>-replay-<time>)")
    command.add_argument("--keep", action="store_true", help="leave the taken records in the failure lane")
    command.add_argument("--max", type=int, default=10_000, help="most failure-lane messages to read")
    command.add_argument("--text-field", help="corpus text field (default: the sharder's TEXT_FIELD, else text)")
    command.add_argument("--id-field", help="corpus id field (default: the sharder's ID_FIELD, else id)")

    command = commands.add_parser("status", parents=[common], help="what the stack's pipelines are doing now")
    command.add_argument("--pipeline", choices=pipelines, help="one pipeline only")

    command = commands.add_parser("resync", parents=[common], help="start a knowledge-base sync by hand")
    command.add_argument("--knowledge-base-id", help="default: the kbsync worker's KNOWLEDGE_BASE_ID")
    command.add_argument("--data-source-id", help="default: the kbsync worker's DATA_SOURCE_ID")

    command = commands.add_parser("smoke", parents=[common], help="send one harmless item through each pipeline")
    command.add_argument("--pipeline", action="append", choices=pipelines, help="only these (repeatable)")
    command.add_argument("--timeout", type=float, help="seconds to wait per pipeline (default: per pipeline)")
    return top


def main(argv: Sequence[str] | None = None, *, clients: Clients | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        outputs = load_outputs(args.outputs, args.stack)
        return dispatch(args, outputs, clients or Clients(outputs.region, profile=args.profile))
    except (OutputsError, QueueMissingError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"error: AWS refused: {error}", file=sys.stderr)
        return 1


def dispatch(args: argparse.Namespace, outputs: StackOutputs, clients: Clients) -> int:
    if args.command == "redrive":
        outputs.section(args.pipeline)
        return redrive.run(outputs, clients, pipeline=args.pipeline, lane=args.lane, sample=args.sample,
                           dry_run=args.dry_run, yes=args.yes, rate=args.rate)
    if args.command == "replay-failures":
        return replay.run(outputs, clients, replay.Options(
            run_id=args.run, local=args.local, fix_file=args.fix_file, start_run=args.start_run, keep=args.keep,
            limit=args.max, text_field=args.text_field, id_field=args.id_field), dry_run=args.dry_run, yes=args.yes)
    if args.command == "status":
        return status.run(outputs, clients, pipeline=args.pipeline)
    if args.command == "resync":
        return resync.run(outputs, clients, knowledge_base_id=args.knowledge_base_id,
                          data_source_id=args.data_source_id, dry_run=args.dry_run, yes=args.yes)
    return smoke.run(outputs, clients, pipelines=args.pipeline, timeout=args.timeout, dry_run=args.dry_run,
                     yes=args.yes)


if __name__ == "__main__":
    sys.exit(main())
