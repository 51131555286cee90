"""Which Python runs a policy pack, resolved the way `pulumi preview --policy-pack DIR` resolves it.

The CLI starts a Python pack through the Python language host's `RunPlugin`, with the `runtime.options` of the
pack's `PulumiPolicy.yaml` (`docs/offline-fidelity.md`, "Starting the policy pack"): with a `virtualenv` option the
pack runs on `<pack dir>/<virtualenv>/bin/python`; without one on `$PULUMI_PYTHON_CMD`, else `python3`, else
`python` from PATH. The CLI does not install a local pack's requirements, so the virtualenv must exist before the
preview (`pulumi install` in the pack directory, or `make policies/venv`, creates it).
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class PackRuntimeError(RuntimeError):
    """The pack's PulumiPolicy.yaml is not usable, or the Python it names does not exist."""


@dataclass(frozen=True)
class PackRuntime:
    name: str
    options: dict[str, Any]

    @property
    def virtualenv(self) -> str | None:
        value = self.options.get("virtualenv")
        return str(value) if value else None


def read_runtime(pack_dir: Path) -> PackRuntime:
    """`runtime:` of PulumiPolicy.yaml, in either of its two forms (a name, or a name with options)."""
    manifest = pack_dir / "PulumiPolicy.yaml"
    try:
        document = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise PackRuntimeError(f"{manifest}: {error.strerror}") from error
    runtime = document.get("runtime")
    if isinstance(runtime, str):
        return PackRuntime(runtime, {})
    if isinstance(runtime, dict) and isinstance(runtime.get("name"), str):
        options = runtime.get("options") or {}
        if not isinstance(options, dict):
            raise PackRuntimeError(f"{manifest}: runtime.options must be a mapping")
        return PackRuntime(runtime["name"], dict(options))
    raise PackRuntimeError(f"{manifest}: runtime must be 'python' or {{name: python, options: {{...}}}}")


def virtualenv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def pack_python(pack_dir: Path) -> str:
    """The interpreter the Pulumi CLI would start `pack_dir` with."""
    runtime = read_runtime(pack_dir)
    if runtime.name != "python":
        raise PackRuntimeError(f"{pack_dir / 'PulumiPolicy.yaml'}: runtime {runtime.name!r}; only python packs "
                               f"run offline")
    if runtime.virtualenv:
        venv = Path(runtime.virtualenv)
        venv = venv if venv.is_absolute() else pack_dir / venv
        python = virtualenv_python(venv)
        if not python.exists():
            raise PackRuntimeError(
                f"the policy pack's virtualenv {venv} (PulumiPolicy.yaml runtime.options.virtualenv) does not exist; "
                f"the Pulumi CLI does not create it either. Create it with `pulumi install` in {pack_dir}, or "
                f"`{Path(sys.executable).name} -m venv {venv} && {python} -m pip install -r "
                f"{pack_dir / 'requirements.txt'}`")
        return str(python)
    for candidate in (os.environ.get("PULUMI_PYTHON_CMD"), "python3", "python"):
        if candidate and (found := shutil.which(candidate)):
            return found
    raise PackRuntimeError("no Python for the policy pack: set PULUMI_PYTHON_CMD or put python3 on PATH")
