"""``smoke``: after a deploy, one harmless test item through each enabled pipeline (``ops.probes``), each result
awaited by polling until a deadline, checked, and the item's traces removed whatever the outcome."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from ops.aws import Clients
from ops.confirm import confirmed
from ops.probes import PROBES, Probe, Result
from ops.stack import StackOutputs

POLL_SECONDS = 10.0
clock: Callable[[], float] = time.monotonic
sleep: Callable[[float], None] = time.sleep


def run(outputs: StackOutputs, clients: Clients, *, pipelines: list[str] | None, timeout: float | None,
        dry_run: bool, yes: bool) -> int:
    chosen = [p for p in outputs.enabled() if not pipelines or p in pipelines]
    if pipelines and set(pipelines) - set(chosen):
        print(f"the stack does not build {', '.join(sorted(set(pipelines) - set(chosen)))}")
        return 2
    token = uuid.uuid4().hex[:12]
    probes: dict[str, Probe] = {}
    for name in chosen:
        kind, default = PROBES[name]
        probes[name] = kind(outputs, clients, token, timeout=timeout or default)
        print(probes[name].plan())
    if dry_run:
        print("dry run: nothing sent")
        return 0
    if not confirmed(f"Send these {len(probes)} test item(s)", yes=yes):
        print("cancelled")
        return 1
    results = {name: attempt(probe) for name, probe in probes.items()}
    for name, result in results.items():
        print(f"{name}: {'PASS' if result.ok else 'FAIL'} {result.detail}")
    return 0 if all(r.ok for r in results.values()) else 1


def attempt(probe: Probe) -> Result:
    try:
        probe.send()
        return wait(probe)
    except Exception as error:
        return Result(False, f"{type(error).__name__}: {error}")
    finally:
        try:
            probe.cleanup()
        except Exception as error:
            print(f"cleanup failed, remove by hand: {type(error).__name__}: {error}")


def wait(probe: Probe) -> Result:
    deadline = clock() + probe.timeout
    while True:
        result = probe.poll()
        if result is not None:
            return result
        left = deadline - clock()
        if left <= 0:
            return Result(False, f"no result within {probe.timeout:.0f} s")
        sleep(min(POLL_SECONDS, left))
