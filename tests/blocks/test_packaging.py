"""Lambda packaging: what goes into a handler's archive, for which platform, and that it is reproducible.

The dependency tests install the project's real runtime pins (handlers/requirements.txt) from the package
index for both architectures. The installed trees are cached in the repository's `.build/deps`, shared by
every test here and by real builds, so only the first run pays for the downloads.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import os
import platform
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pulumi
import pytest

from components.blocks import packaging
from components.blocks.packaging import (
    DependencyInstallError,
    HandlerArchive,
    UnknownHandlerPackageError,
    UnsupportedTargetError,
    build_handler_archive,
    function_code,
)

REPO = Path(__file__).resolve().parents[2]
REAL_REQUIREMENTS = REPO / "handlers" / "requirements.txt"
ELF_MACHINE = {"aarch64": 0xB7, "x86_64": 0x3E}  # e_machine of an ELF header
APP = """\
from aws_lambda_powertools import Logger
from pydantic import BaseModel

from common.log import log

logger = Logger(service="orders")


class Order(BaseModel):
    id: int


def handler(event, context):
    return log(Order.model_validate(event).id)
"""


@pytest.fixture(scope="session")
def shared_deps() -> Path:
    deps = REPO / ".build" / "deps"
    deps.mkdir(parents=True, exist_ok=True)
    return deps


def _write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _make_handlers(root: Path) -> Path:
    """A handlers directory with one package, shared code, the real pins and the junk a checkout collects."""
    shutil.copyfile(REAL_REQUIREMENTS, _write(root / "requirements.txt"))
    _write(root / "orders" / "__init__.py")
    _write(root / "orders" / "app.py", APP)
    _write(root / "orders" / "prompts" / "summary.txt", "Summarise {document}.\n")
    _write(root / "orders" / "tests" / "test_app.py", "def test_app(): ...\n")
    _write(root / "orders" / "test_core.py", "def test_core(): ...\n")
    _write(root / "orders" / "conftest.py")
    _write(root / "orders" / "__pycache__" / "app.cpython-313.pyc", "stale")
    _write(root / "orders" / "core.pyc", "stale")
    _write(root / "orders" / ".DS_Store", "finder")
    _write(root / "common" / "__init__.py")
    _write(root / "common" / "log.py", "def log(event):\n    return event\n")
    return root


def _make_build_dir(build: Path, shared_deps: Path) -> Path:
    """A build directory of its own whose dependency cache is the shared one."""
    build.mkdir(parents=True)
    (build / "deps").symlink_to(shared_deps, target_is_directory=True)
    return build


@pytest.fixture
def handlers(tmp_path: Path) -> Path:
    return _make_handlers(tmp_path / "handlers")


@pytest.fixture
def build_dir(tmp_path: Path, shared_deps: Path) -> Path:
    return _make_build_dir(tmp_path / "build", shared_deps)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, shared_deps: Path) -> tuple[HandlerArchive, Path, Path]:
    """One arm64 archive, with its handlers and build directories, for the tests that only read it."""
    root = tmp_path_factory.mktemp("built")
    handlers_dir, build = _make_handlers(root / "handlers"), _make_build_dir(root / "build", shared_deps)
    return build_handler_archive("orders", handlers_dir=handlers_dir, build_dir=build), handlers_dir, build


def _names(archive: HandlerArchive) -> list[str]:
    with zipfile.ZipFile(archive.path) as zf:
        return zf.namelist()


def _elf_machine(archive: HandlerArchive, name: str) -> int:
    with zipfile.ZipFile(archive.path) as zf:
        header = zf.read(name)[:20]
    assert header[:4] == b"\x7fELF"
    return int.from_bytes(header[18:20], "little")


def test_archive_holds_handler_shared_code_and_aarch64_wheels(built: tuple[HandlerArchive, Path, Path]) -> None:
    archive, _, build_dir = built
    names = _names(archive)

    assert archive.path == build_dir / "archives" / "orders-arm64-py3.13.zip"
    assert {"orders/__init__.py", "orders/app.py", "orders/prompts/summary.txt", "common/log.py"} <= set(names)
    assert {"aws_lambda_powertools/__init__.py", "pydantic/__init__.py"} <= set(names)
    compiled = "pydantic_core/_pydantic_core.cpython-313-aarch64-linux-gnu.so"
    assert compiled in names
    assert _elf_machine(archive, compiled) == ELF_MACHINE["aarch64"]
    assert not [n for n in names if n.endswith(".so") and "aarch64" not in n]

    for name in names:
        parts = name.split("/")
        assert "__pycache__" not in parts and "tests" not in parts, name
        assert not name.endswith((".pyc", ".pyo")), name
        assert not parts[-1].startswith(("test_", ".")) and parts[-1] != "conftest.py", name
        assert parts[0] not in {"boto3", "botocore", "s3transfer", "bin"}, name
        assert not (parts[0].endswith(".dist-info") and parts[-1] in {"RECORD", "INSTALLER", "REQUESTED"}), name


def test_archive_entries_are_normalised(built: tuple[HandlerArchive, Path, Path]) -> None:
    archive = built[0]
    with zipfile.ZipFile(archive.path) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} <= {0o100644, 0o100755}
    assert not [i.filename for i in infos if i.is_dir()]


def test_rebuilding_from_scratch_gives_identical_bytes(handlers: Path, build_dir: Path, tmp_path: Path) -> None:
    first = build_handler_archive("orders", handlers_dir=handlers, build_dir=build_dir)

    # Another checkout of the same code: other mtimes, other permissions, a fresh archive directory.
    other = tmp_path / "elsewhere" / "handlers"
    shutil.copytree(handlers, other)
    for path in other.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
        if path.is_file():
            path.chmod(0o600)
    other_build = tmp_path / "elsewhere" / "build"
    other_build.mkdir()
    (other_build / "deps").symlink_to(build_dir / "deps")
    second = build_handler_archive("orders", handlers_dir=other, build_dir=other_build)

    assert second.sha256 == first.sha256
    assert second.path.read_bytes() == first.path.read_bytes()
    assert first.sha256 == hashlib.sha256(first.path.read_bytes()).hexdigest()
    assert base64.b64decode(first.source_code_hash) == bytes.fromhex(first.sha256)


def test_touching_a_file_changes_nothing_and_editing_it_changes_the_hash(handlers: Path, build_dir: Path) -> None:
    first = build_handler_archive("orders", handlers_dir=handlers, build_dir=build_dir)
    written = first.path.stat().st_mtime_ns

    app = handlers / "orders" / "app.py"
    later = time.time() + 3600
    os.utime(app, (later, later))
    touched = build_handler_archive("orders", handlers_dir=handlers, build_dir=build_dir)
    assert touched == first
    assert touched.path.stat().st_mtime_ns == written  # not rewritten

    app.write_text(app.read_text() + "# changed\n")
    edited = build_handler_archive("orders", handlers_dir=handlers, build_dir=build_dir)
    assert edited.sha256 != first.sha256
    assert edited.source_code_hash != first.source_code_hash

    (handlers / "common" / "log.py").write_text("def log(event):\n    return None\n")
    shared_edit = build_handler_archive("orders", handlers_dir=handlers, build_dir=build_dir)
    assert shared_edit.sha256 != edited.sha256


def test_x86_64_archive_has_x86_64_wheels(handlers: Path, build_dir: Path) -> None:
    arm = build_handler_archive("orders", handlers_dir=handlers, build_dir=build_dir)
    x86 = build_handler_archive("orders", architecture="x86_64", handlers_dir=handlers, build_dir=build_dir)
    names = _names(x86)

    assert x86.path.name == "orders-x86_64-py3.13.zip"
    compiled = "pydantic_core/_pydantic_core.cpython-313-x86_64-linux-gnu.so"
    assert compiled in names
    assert _elf_machine(x86, compiled) == ELF_MACHINE["x86_64"]
    assert not [n for n in names if "aarch64" in n]
    assert x86.sha256 != arm.sha256
    assert arm.path.is_file()  # one archive per architecture, side by side


def test_function_code_gives_consistent_function_arguments(built: tuple[HandlerArchive, Path, Path]) -> None:
    archive, handlers, build_dir = built
    args = function_code("orders", handlers_dir=handlers, build_dir=build_dir)

    assert isinstance(args["code"], pulumi.FileArchive)
    assert args["code"].path == str(archive.path)
    assert args["source_code_hash"] == archive.source_code_hash
    assert args["handler"] == "orders.app.handler"
    assert args["runtime"] == "python3.13"
    assert args["architectures"] == ["arm64"]

    import pulumi_aws as aws

    accepted = inspect.signature(aws.lambda_.FunctionArgs.__init__).parameters
    assert set(args) <= set(accepted)


def test_unknown_package_names_the_directory_looked_in(handlers: Path, build_dir: Path) -> None:
    with pytest.raises(UnknownHandlerPackageError) as raised:
        build_handler_archive("ordres", handlers_dir=handlers, build_dir=build_dir)
    message = str(raised.value)
    assert str(handlers / "ordres") in message
    assert "handler packages in" in message and "orders" in message
    assert not (build_dir / "archives").exists()


def test_package_without_app_module_is_rejected(handlers: Path, build_dir: Path) -> None:
    _write(handlers / "half" / "__init__.py")
    with pytest.raises(UnknownHandlerPackageError, match=r"has no app\.py .*half\.app\.handler"):
        build_handler_archive("half", handlers_dir=handlers, build_dir=build_dir)
    with pytest.raises(UnknownHandlerPackageError):
        build_handler_archive("common", handlers_dir=handlers, build_dir=build_dir)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ({"architecture": "amd64"}, r"architecture 'amd64'; use one of arm64, x86_64"),
        ({"architecture": "aarch64"}, r"architecture 'aarch64'"),
        ({"python_version": "3.9"}, r"Python version '3\.9'; use one of 3\.10, .*3\.13"),
        ({"python_version": "313"}, r"Python version '313'"),
    ],
)
def test_unsupported_target_is_rejected_before_any_work(
    target: dict[str, str], expected: str, handlers: Path, tmp_path: Path
) -> None:
    build = tmp_path / "untouched"
    with pytest.raises(UnsupportedTargetError, match=expected):
        build_handler_archive("orders", handlers_dir=handlers, build_dir=build, **target)  # type: ignore[arg-type]
    assert not build.exists()


def test_pip_failure_shows_its_output_and_the_platform_and_caches_nothing(handlers: Path, tmp_path: Path) -> None:
    (handlers / "requirements.txt").write_text("./no-such-project\n")
    build = tmp_path / "build"
    deps = build / "deps"
    deps.mkdir(parents=True)
    abandoned = deps / ".partial-0123-abandoned"
    abandoned.mkdir()
    os.utime(abandoned, (time.time() - 2 * 3600,) * 2)

    with pytest.raises(DependencyInstallError) as raised:
        build_handler_archive("orders", handlers_dir=handlers, build_dir=build)
    message = str(raised.value)
    assert "no-such-project" in message  # pip's own words
    assert "Lambda arm64 python3.13" in message and "manylinux_2_34_aarch64" in message
    assert list(deps.iterdir()) == []  # neither a half-installed tree nor the abandoned one is left
    assert not (build / "archives").exists()


def _wheel(directory: Path, name: str, requires: tuple[str, ...] = ()) -> None:
    """A minimal pure-Python wheel, so dependency resolution can be exercised without the package index."""
    module = name.lower()
    dist_info = f"{name}-1.0.dist-info"
    metadata = "\n".join(
        ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0", *(f"Requires-Dist: {r}" for r in requires)]
    )
    files = {
        f"{module}/__init__.py": "",
        f"{dist_info}/METADATA": metadata + "\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{path},sha256={_record_hash(text)},{len(text)}" for path, text in files.items()]
    files[f"{dist_info}/RECORD"] = "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n"
    with zipfile.ZipFile(directory / f"{name}-1.0-py3-none-any.whl", "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)


def _record_hash(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


def test_runtime_provided_sdk_is_not_bundled_even_when_a_dependency_pulls_it_in(handlers: Path, tmp_path: Path) -> None:
    wheels = handlers / "wheels"
    wheels.mkdir()
    _wheel(wheels, "needs_sdk", ("boto3",))
    _wheel(wheels, "boto3", ("botocore", "s3transfer"))
    _wheel(wheels, "botocore")
    _wheel(wheels, "s3transfer")
    (handlers / "requirements.txt").write_text("--no-index\n--find-links ./wheels\nneeds_sdk==1.0\n")

    archive = build_handler_archive("orders", handlers_dir=handlers, build_dir=tmp_path / "build")
    tops = {name.split("/")[0] for name in _names(archive)}

    assert {"needs_sdk", "needs_sdk-1.0.dist-info", "orders", "common"} <= tops
    assert not {t for t in tops if t.split("-")[0] in packaging.RUNTIME_PROVIDED}


HOST_ARCHITECTURE = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.mark.skipif(
    sys.platform != "linux"
    or platform.libc_ver()[0] != "glibc"
    or HOST_ARCHITECTURE is None
    or HOST_PYTHON not in {"3.10", "3.11", "3.12", "3.13", "3.14"},
    reason="needs a glibc Linux host whose architecture and Python version Lambda also runs",
)
def test_archive_runs_the_handler_on_a_matching_interpreter(handlers: Path, build_dir: Path, tmp_path: Path) -> None:
    """Built for this machine's platform, the archive alone (no site-packages) imports and runs the handler."""
    assert HOST_ARCHITECTURE is not None
    archive = build_handler_archive(
        "orders",
        architecture=HOST_ARCHITECTURE,
        python_version=HOST_PYTHON,
        handlers_dir=handlers,
        build_dir=build_dir,
    )
    root = tmp_path / "task"
    with zipfile.ZipFile(archive.path) as zf:
        zf.extractall(root)
    program = (
        f"import sys; sys.path.insert(0, {str(root)!r}); "
        "import pydantic_core; from orders.app import handler; "
        "print(handler({'id': '7'}, None), pydantic_core.__file__)"
    )
    # -I and -S: nothing from this environment's site-packages, only what the archive holds.
    run = subprocess.run([sys.executable, "-I", "-S", "-c", program], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    result, loaded_from = run.stdout.split()
    assert result == "7"
    assert loaded_from.startswith(str(root))
