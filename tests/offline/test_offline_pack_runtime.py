"""Which Python runs a policy pack: resolved from PulumiPolicy.yaml as the Pulumi CLI's Python language host does."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from offline.analyzer import DEFAULT_PACK_DIR
from offline.pack_runtime import PackRuntimeError, pack_python, read_runtime, virtualenv_python


def manifest(directory: Path, text: str) -> Path:
    (directory / "PulumiPolicy.yaml").write_text(text)
    return directory


def test_the_project_pack_runs_in_its_own_virtualenv() -> None:
    runtime = read_runtime(DEFAULT_PACK_DIR)
    assert (runtime.name, runtime.virtualenv) == ("python", "venv")
    assert pack_python(DEFAULT_PACK_DIR) == str(virtualenv_python(DEFAULT_PACK_DIR / "venv"))


def test_a_virtualenv_option_is_relative_to_the_pack(tmp_path: Path) -> None:
    pack = manifest(tmp_path, "runtime:\n  name: python\n  options:\n    virtualenv: env\nversion: 1.0.0\n")
    python = virtualenv_python(tmp_path / "env")
    with pytest.raises(PackRuntimeError, match=r"virtualenv .*env .* does not exist.*pulumi install"):
        pack_python(pack)
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    assert pack_python(pack) == str(python)


def test_without_a_virtualenv_the_pack_runs_on_pulumi_python_cmd(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pack = manifest(tmp_path, "runtime: python\n")
    monkeypatch.setenv("PULUMI_PYTHON_CMD", sys.executable)
    assert pack_python(pack) == sys.executable


@pytest.mark.parametrize(("text", "message"), [
    ("runtime: nodejs\n", "only python packs"),
    ("runtime:\n  options: {}\n", "runtime must be"),
    ("runtime:\n  name: python\n  options: [venv]\n", "options must be a mapping"),
])
def test_a_manifest_it_cannot_use_is_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PackRuntimeError, match=message):
        pack_python(manifest(tmp_path, text))


def test_a_missing_manifest_is_named(tmp_path: Path) -> None:
    with pytest.raises(PackRuntimeError, match=r"PulumiPolicy\.yaml"):
        pack_python(tmp_path)
