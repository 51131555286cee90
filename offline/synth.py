"""Run a Pulumi program offline and return what it registers.

`synthesize("dev")` loads `Pulumi.yaml` and `Pulumi.dev.yaml` (every namespace, `aws:region` included), runs
`__main__.py` under the recording monitor in preview or update mode, and returns the records. `run_program` runs
any callable instead, which is how component tests build a single component.
"""

from __future__ import annotations

import json
import logging
import os
import re
import runpy
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from offline.aws_account import AwsAccount
from offline.invokes import Answers, InvokeAnswerer, InvokeError, load_answers
from offline.model import Mode, ResourceRecord
from offline.monitor import RecordingMonitor
from offline.provider import AwsProviderEmulator
from offline.values import from_wire

REPO = Path(__file__).resolve().parent.parent
_PROJECT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # the Pulumi CLI's rule for project names
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
    secret_keys: tuple[str, ...] = ()
    main: str = ""  # Pulumi.yaml `main`: the program's directory or file, relative to the project
    virtualenv: str = ""  # Pulumi.yaml runtime.options.virtualenv

    @property
    def region(self) -> str:
        return self.config.get("aws:region", DEFAULT_REGION)


def load_stack_files(stack: str, project_dir: Path = REPO) -> StackFiles:
    """Read `Pulumi.yaml` and `Pulumi.<stack>.yaml`, giving config as the CLI hands it to the program: the project's
    config defaults overlaid by the stack's values, structured values as JSON."""
    project_file = project_dir / "Pulumi.yaml"
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not project_file.exists():
        raise SynthesisError(f"no Pulumi.yaml in {project_dir}")
    if not stack_file.exists():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))
        raise SynthesisError(f"no stack file {stack_file.name}; stacks here: {', '.join(known) or 'none'}")
    project_doc = _yaml(project_file)
    project = str(project_doc.get("name") or "")
    if not _PROJECT_NAME.fullmatch(project):
        raise SynthesisError(f"{project_file}: project name {project!r} is not a valid Pulumi project name "
                             f"(letters, digits, '-', '_' and '.'; a template's ${{PROJECT}} must be replaced)")
    runtime = project_doc.get("runtime")
    options = (runtime.get("options") or {}) if isinstance(runtime, dict) else {}
    config, secret_keys = {}, []
    for key, spec in (project_doc.get("config") or {}).items():  # project-level config: defaults or values
        value = spec.get("value", spec.get("default")) if isinstance(spec, dict) else spec
        if value is not None:
            config[_namespaced(key, project)] = _as_config_string(value)
    raw = _yaml(stack_file)
    for key, value in (raw.get("config") or {}).items():
        config[_namespaced(key, project)] = _as_config_string(value)
        if isinstance(value, dict) and set(value) == {"secure"}:
            secret_keys.append(_namespaced(key, project))
    return StackFiles(project=project, stack=stack, config=config, secret_keys=tuple(secret_keys),
                      main=str(project_doc.get("main") or ""), virtualenv=str(options.get("virtualenv") or ""))


def _yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise SynthesisError(f"{path.name}: not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise SynthesisError(f"{path.name}: expected a mapping at the top level")
    return document


def _namespaced(key: str, project: str) -> str:
    return key if ":" in key else f"{project}:{key}"


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
               account_id: str = DEFAULT_ACCOUNT_ID, config_overrides: Mapping[str, Any] | None = None,
               invokes: Path | None = None) -> Synthesis:
    """Run the project's program for `stack` offline, as the Pulumi CLI's Python host runs it.

    The host runs the entry point with `runpy.run_path` from the program's directory (the project directory, or
    Pulumi.yaml's `main`), which puts that directory first on `sys.path`, so the program imports its sibling
    modules. A `virtualenv` runtime option adds that environment's packages (after the offline engine's own, which
    provide pulumi and pulumi_aws). Invokes and stack references are answered from `invokes` or
    `offline.<stack>.yaml` beside Pulumi.yaml (`offline.invokes`). `config_overrides` replaces namespaced keys
    (`"ai-pipelines:owner"`) of the stack file, for mutations in tests.
    """
    files = load_stack_files(stack, project_dir)
    config = dict(files.config)
    for key, value in (config_overrides or {}).items():
        config[key] = _as_config_string(value)
    program_dir, entry = _entry_point(project_dir, files.main)
    answers_file = invokes or project_dir / f"offline.{stack}.yaml"
    try:
        answers = load_answers(answers_file) if invokes or answers_file.exists() else Answers(suggested=answers_file)
    except InvokeError as error:
        raise SynthesisError(str(error)) from error

    def run() -> None:
        with _working_directory(program_dir), _program_path(program_dir, project_dir / files.virtualenv
                                                            if files.virtualenv else None), _quiet_asyncio():
            # The host passes "." (or the file) from the program's directory; the absolute path is the same entry
            # point and keeps the import system from reusing another program's directory in the same process.
            runpy.run_path(str(program_dir / entry), run_name="__main__")

    account = AwsAccount(account_id, config.get("aws:region", DEFAULT_REGION))
    return run_program(run, project=files.project, stack=stack, mode=mode, config=config, account=account,
                       secret_keys=files.secret_keys, answers=answers, program_dir=program_dir)


def _entry_point(project_dir: Path, main: str) -> tuple[Path, str]:
    """(the directory the host runs the program from, the entry point it passes to runpy)."""
    target = (project_dir / main).resolve() if main else project_dir
    if target.is_file():
        return target.parent, target.name
    if not (target / "__main__.py").is_file():
        raise SynthesisError(f"no __main__.py in {target}" + (f" (Pulumi.yaml main: {main})" if main else ""))
    return target, "."


@contextmanager
def _program_path(program_dir: Path, virtualenv: Path | None):  # type: ignore[no-untyped-def]
    """Add a program virtualenv's site-packages after the engine's own; afterwards restore sys.path and forget the
    program's own modules, so that another program run in this process imports its own siblings."""
    saved = list(sys.path)
    # Only modules the program imported are forgotten: one imported before the run (a test's conftest that
    # synthesizes a stack while it is itself being imported) is not the program's and must stay.
    loaded_before = set(sys.modules)
    if virtualenv is not None:
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        for site_packages in sorted(virtualenv.glob(f"lib/{version}/site-packages")):
            sys.path.append(str(site_packages))
    try:
        yield
    finally:
        sys.path[:] = saved
        root = program_dir.resolve()
        for name, module in list(sys.modules.items()):
            if name in loaded_before:
                continue
            file = getattr(module, "__file__", None)
            if file and Path(file).resolve().is_relative_to(root) and "site-packages" not in Path(file).parts:
                del sys.modules[name]


@contextmanager
def _quiet_asyncio():  # type: ignore[no-untyped-def]
    """As the CLI's Python host does: a failed program leaves futures unobserved, which asyncio would log at
    length after the program's own error (pulumi-language-python-exec sets the asyncio logger to CRITICAL)."""
    logger = logging.getLogger("asyncio")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def run_program(program: Callable[[], None], *, project: str, stack: str, mode: Mode = "preview",
                config: Mapping[str, str] | None = None, account: AwsAccount | None = None,
                secret_keys: Sequence[str] = (), answers: Answers | None = None,
                program_dir: Path | None = None) -> Synthesis:
    """Run `program` under the recording monitor and return every registration.

    A failure is a `SynthesisError` with the program's own message and the frames of the program's own files
    (under `program_dir`), as the CLI's Python host shows them.
    """
    account = account or AwsAccount(DEFAULT_ACCOUNT_ID, (config or {}).get("aws:region", DEFAULT_REGION))
    monitor = RecordingMonitor(AwsProviderEmulator(account, mode, InvokeAnswerer(account, answers)))
    runtime_config.set_all_config(dict(config or {}), list(secret_keys))
    settings.ROOT.set(None)
    mocks.set_mocks(monitor.mocks, project=project, stack=stack, preview=(mode == "preview"), monitor=monitor)
    try:
        _sync_await(run_pulumi_func(program))
        outputs = _stack_outputs()
    except pulumi.RunError as error:
        raise SynthesisError(str(error)) from error
    except Exception as error:
        raise SynthesisError(_program_failure(error, program_dir)) from error
    finally:
        settings.SETTINGS.rpc_manager.clear()
        settings.SETTINGS.outputs.clear()
    for record in monitor.records.values():
        if record.type == "pulumi:pulumi:Stack":
            record.outputs = dict(outputs)  # the root stack's outputs are the program's exports
    return Synthesis(project=project, stack=stack, mode=mode, account=account,
                     resources=list(monitor.records.values()), outputs=outputs)


def _program_failure(error: BaseException, program_dir: Path | None, limit: int = 8) -> str:
    """`<Type>: <message>` and the innermost frames of the program's own files (none from the SDK or engine)."""
    message = f"{type(error).__name__}: {error}"
    if program_dir is None:
        return message
    root = program_dir.resolve()

    def in_program(filename: str) -> bool:
        if filename.startswith("<"):  # frozen or generated code: the engine's, not the program's
            return False
        path = Path(filename)
        resolved = (path if path.is_absolute() else root / path).resolve()
        return resolved.is_relative_to(root) and "site-packages" not in resolved.parts

    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if in_program(frame.filename)]
    if not frames:
        return message
    trace = "".join(traceback.format_list(frames[-limit:])).rstrip()
    return f"{message}\n{trace}"


def _stack_outputs() -> dict[str, Any]:
    """`pulumi.export`ed values as the engine records them: resolved, unknown ones as the sentinel, an exported
    resource as its id (custom) or URN (component)."""
    root = settings.get_root_resource()
    exported = getattr(root, "outputs", {}) or {}
    return from_wire(_sync_await(rpc.serialize_properties(dict(exported), {})))


@contextmanager
def _working_directory(path: Path):  # type: ignore[no-untyped-def]
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)
