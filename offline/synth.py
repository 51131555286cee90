"""Run a Pulumi program offline and return what it registers.

`synthesize("dev")` loads `Pulumi.yaml` and `Pulumi.dev.yaml` (every namespace, `aws:region` included), runs
`__main__.py` under the recording monitor in preview or update mode, and returns the records. `run_program` runs
any callable instead, which is how component tests build a single component.
"""

from __future__ import annotations

import json
import os
import runpy
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from offline.model import UNKNOWN, Mode, ResourceRecord
from offline.monitor import RecordingMonitor
from offline.provider import AwsAccount, AwsProviderEmulator
from offline.values import plain

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"


class SynthesisError(Exception):
    """The program or its config failed; the message is the program's own."""


@dataclass
class Synthesis:
    project: str
    stack: str
    mode: Mode
    account: AwsAccount
    resources: list[ResourceRecord]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[ResourceRecord]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> ResourceRecord:
        """The custom resource with this logical name (a component may share its main resource's name)."""
        matches = [r for r in self.resources if r.name == name and r.custom]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]

    def by_urn(self) -> dict[str, ResourceRecord]:
        return {r.urn: r for r in self.resources}


@dataclass(frozen=True)
class StackFiles:
    project: str
    stack: str
    config: dict[str, str]  # namespaced keys -> values as the language host receives them

    @property
    def region(self) -> str:
        return self.config.get("aws:region", DEFAULT_REGION)


def load_stack_files(stack: str, project_dir: Path = REPO) -> StackFiles:
    """Read `Pulumi.yaml` and `Pulumi.<stack>.yaml`, giving config as the CLI hands it to the program."""
    project_file = project_dir / "Pulumi.yaml"
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))
        raise SynthesisError(f"no stack file {stack_file.name}; stacks here: {', '.join(known) or 'none'}")
    project = yaml.safe_load(project_file.read_text())["name"]
    raw = yaml.safe_load(stack_file.read_text()) or {}
    config = {}
    for key, value in (raw.get("config") or {}).items():
        namespaced = key if ":" in key else f"{project}:{key}"
        config[namespaced] = _as_config_string(value)
    return StackFiles(project=project, stack=stack, config=config)


def _as_config_string(value: Any) -> str:
    # The CLI passes structured values as JSON and scalars as their string form (booleans lower-case).
    if isinstance(value, dict) and set(value) == {"secure"}:
        return "[secret]"  # ciphertext can't be decrypted offline; the program must not need its plaintext
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def synthesize(stack: str, mode: Mode = "preview", *, project_dir: Path = REPO,
               account_id: str = DEFAULT_ACCOUNT_ID, config_overrides: Mapping[str, Any] | None = None) -> Synthesis:
    """Run the project's `__main__.py` for `stack` offline.

    `config_overrides` replaces namespaced keys (`"ai-pipelines:owner"`) of the stack file, for mutations in tests.
    """
    files = load_stack_files(stack, project_dir)
    config = dict(files.config)
    for key, value in (config_overrides or {}).items():
        config[key] = _as_config_string(value)
    program = project_dir / "__main__.py"

    def run() -> None:
        with _working_directory(project_dir):
            runpy.run_path(str(program), run_name="__main__")

    return run_program(run, project=files.project, stack=stack, mode=mode, config=config,
                       account=AwsAccount(account_id, config.get("aws:region", DEFAULT_REGION)))


def run_program(program: Callable[[], None], *, project: str, stack: str, mode: Mode = "preview",
                config: Mapping[str, str] | None = None, account: AwsAccount | None = None) -> Synthesis:
    """Run `program` under the recording monitor and return every registration."""
    account = account or AwsAccount(DEFAULT_ACCOUNT_ID, (config or {}).get("aws:region", DEFAULT_REGION))
    monitor = RecordingMonitor(AwsProviderEmulator(account, mode))
    runtime_config.set_all_config(dict(config or {}), [])
    settings.ROOT.set(None)
    mocks.set_mocks(monitor.mocks, project=project, stack=stack, preview=(mode == "preview"), monitor=monitor)
    try:
        _sync_await(run_pulumi_func(program))
        outputs = _stack_outputs()
    except pulumi.RunError as error:
        raise SynthesisError(str(error)) from error
    finally:
        settings.SETTINGS.rpc_manager.clear()
        settings.SETTINGS.outputs.clear()
    return Synthesis(project=project, stack=stack, mode=mode, account=account,
                     resources=list(monitor.records.values()), outputs=outputs)


def _stack_outputs() -> dict[str, Any]:
    """`pulumi.export`ed values, resolved (unknown ones as the sentinel)."""
    root = settings.get_root_resource()
    exported = getattr(root, "outputs", {}) or {}

    async def resolve(value: Any) -> Any:
        output = pulumi.Output.from_input(value)
        if not await output.is_known():
            return UNKNOWN
        return plain(await output.future())

    return {name: _sync_await(resolve(value)) for name, value in exported.items()}


@contextmanager
def _working_directory(path: Path):  # type: ignore[no-untyped-def]
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)
