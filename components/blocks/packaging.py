"""Lambda deployment archives: one reproducible zip per handler package.

A handler package lives in ``handlers/<package>/`` with its entry point in ``app.py`` (``def handler(event,
context)``); shared code in ``handlers/common/`` goes into every archive. Each package has its own runtime
dependencies, the lock ``handlers/requirements/<package>.txt`` (pip-tools' ``pip-compile --generate-hashes``
output; ``dependencies=`` names another set), so a function that never connects to PostgreSQL carries no database
driver. They are installed as binary wheels for Lambda's platform (manylinux for the function's architecture and
Python version), never for the machine that runs the build, by the pip release that
``handlers/requirements/build-tools.txt`` pins, with ``--require-hashes``: pip takes no file whose hash the lock
does not list, so a wheel added to a pinned release later, or a file changed on a mirror, fails the build. The
archive root holds ``<package>/``, ``common/`` and the dependencies, so Lambda imports ``<package>.app.handler``.

The archive is reproducible: entries are sorted, timestamps and permissions fixed, caches, tests and
install-time bookkeeping left out. Unchanged code and dependencies give a byte-identical zip and the same
``source_code_hash``, so ``pulumi up`` leaves untouched functions alone.

Usage::

    import pulumi_aws as aws
    from components.blocks.packaging import function_code

    aws.lambda_.Function("kb-sync", role=role.arn, timeout=60, **function_code("kb_sync"))

Layout of the build directory (``.build/`` at the repository root by default)::

    deps/<key>/                          installed dependencies, one tree per lock + pip + platform + Python
    deps/<key>/.contents.sha256          the tree's digest when installed, compared before every reuse
    tools/pip-<version>-py3-none-any.whl the pinned pip, run from its wheel; its hash is checked before every use
    archives/<package>-<arch>-py<ver>.zip
    archives/<package>-<arch>-py<ver>.zip.json   what the zip was built from, to skip an unchanged rebuild

Why the standard library: the build tools that exist (``build``, ``wheel``, ``pip wheel``) make wheels, not
Lambda's flat zip, and none of them normalises timestamps and permissions; ``zipfile`` and ``hashlib`` do
exactly what is needed in a few lines. pip itself is run as a subprocess, its only supported interface, from its
own wheel (``python pip-<version>.whl/pip``, as pip supports), so the build's pip is the pinned release whatever
pip the virtualenv has, with nothing to install.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path, PurePosixPath
from typing import Final, TypedDict

import pulumi

from components import defaults

__all__ = [
    "DependencyInstallError",
    "FunctionCode",
    "HandlerArchive",
    "PackagingError",
    "UnknownDependencySetError",
    "UnknownHandlerPackageError",
    "UnsupportedTargetError",
    "build_handler_archive",
    "function_code",
]

_log = logging.getLogger(__name__)

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
DEFAULT_HANDLERS_DIR: Final = REPO_ROOT / "handlers"
DEFAULT_BUILD_DIR: Final = REPO_ROOT / ".build"

SHARED_PACKAGE: Final = "common"
# handlers/requirements/<set>.txt is a set's lock. A set's name is an identifier, so none is called build-tools.
REQUIREMENTS_DIR: Final = "requirements"
LOCK_SUFFIX: Final = ".txt"
BUILD_TOOLS_LOCK: Final = "build-tools.txt"
HANDLER_MODULE: Final = "app"
HANDLER_FUNCTION: Final = "handler"

# Lambda's architecture names and the machine names manylinux tags use for them.
_MACHINES: Final = {"arm64": "aarch64", "x86_64": "x86_64"}
# Newest glibc of the Lambda runtime per Python version: Amazon Linux 2 (glibc 2.26) up to python3.11,
# Amazon Linux 2023 (glibc 2.34) from python3.12. A wheel built for a newer glibc would fail to load.
_RUNTIME_GLIBC_MINOR: Final = {"3.10": 26, "3.11": 26, "3.12": 34, "3.13": 34, "3.14": 34}
# Oldest manylinux glibc per machine: manylinux1 (2.5) on x86_64, manylinux2014 (2.17) on aarch64.
_OLDEST_GLIBC_MINOR: Final = {"x86_64": 5, "aarch64": 17}
# Pre-PEP 600 names; some wheels carry only these.
_LEGACY_MANYLINUX: Final = {5: "manylinux1", 12: "manylinux2010", 17: "manylinux2014"}

# The runtime ships these; a bundled copy would only shadow the runtime's and add megabytes.
RUNTIME_PROVIDED: Final = frozenset({"boto3", "botocore", "s3transfer"})

# What never goes into an archive, from handler code or dependencies alike.
_SKIPPED_DIRS: Final = frozenset({"__pycache__", "tests"})
_SKIPPED_SUFFIXES: Final = (".pyc", ".pyo")
# Install-time bookkeeping in *.dist-info: RECORD lists files and hashes of an installation, INSTALLER and
# REQUESTED say how it was installed; Python needs none of them at run time (METADATA stays, for
# importlib.metadata.version()).
_SKIPPED_DIST_INFO: Final = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
# pip --target puts console scripts in bin/, with the build machine's interpreter in their shebang.
_SKIPPED_DEPS_TOP: Final = frozenset({"bin"})

# 1980-01-01 is the earliest time a zip entry can hold.
_ZIP_EPOCH: Final = (1980, 1, 1, 0, 0, 0)
# Deflate output is a function of the input, the level and the zlib build; the level is fixed here and
# the zlib version goes into the build fingerprint.
_COMPRESS_LEVEL: Final = 6
_PIP_TIMEOUT_SECONDS: Final = 900
# A half-finished dependency install older than this was abandoned by a process that died.
_ABANDONED_AFTER_SECONDS: Final = 3600
# Inside an installed tree, a dot file (so never archived): the digest of what the tree held when installed.
_TREE_DIGEST_FILE: Final = ".contents.sha256"
# What of a lock pip reads: a comment is '#' at a line's start or after whitespace (pip's rule).
_COMMENT: Final = re.compile(r"(?:^|\s)#.*$")
_SHA256_HASH: Final = re.compile(r"--hash[=\s]sha256:([0-9a-f]{64})")
_PIP_PIN: Final = re.compile(r"^pip==([\w.+!-]+)", re.MULTILINE)


class PackagingError(Exception):
    """An archive could not be built."""


class UnknownHandlerPackageError(PackagingError, LookupError):
    """The handler package does not exist (or has no ``app.py``)."""


class UnsupportedTargetError(PackagingError, ValueError):
    """The architecture or Python version is not one Lambda runs."""


class DependencyInstallError(PackagingError):
    """pip could not install the runtime dependencies for the target platform (or fetch the pinned pip)."""


class UnknownDependencySetError(PackagingError, LookupError):
    """The dependency set has no lock file."""


@dataclass(frozen=True)
class HandlerArchive:
    """A built deployment archive.

    >>> archive = build_handler_archive("kb_sync")  # doctest: +SKIP
    >>> archive.path.name, archive.handler, archive.runtime  # doctest: +SKIP
    ('kb_sync-arm64-py3.13.zip', 'kb_sync.app.handler', 'python3.13')
    """

    package: str
    path: Path
    sha256: str  # hex digest of the zip file
    source_code_hash: str  # base64 of the same digest: what aws.lambda_.Function(source_code_hash=...) expects
    architecture: str
    python_version: str
    module: str = HANDLER_MODULE  # the entry point's module within the package

    @property
    def handler(self) -> str:
        """The function's handler setting."""
        return f"{self.package}.{self.module}.{HANDLER_FUNCTION}"

    @property
    def runtime(self) -> str:
        """The Lambda runtime the dependencies were built for."""
        return f"python{self.python_version}"


class FunctionCode(TypedDict):
    """Keyword arguments of ``aws.lambda_.Function`` that belong to the code, all consistent with each other."""

    code: pulumi.Archive
    source_code_hash: str
    handler: str
    runtime: str
    architectures: list[str]


def function_code(
    package: str,
    *,
    architecture: str = defaults.LAMBDA_ARCHITECTURE,
    python_version: str = defaults.LAMBDA_PYTHON_VERSION,
    handlers_dir: Path = DEFAULT_HANDLERS_DIR,
    build_dir: Path = DEFAULT_BUILD_DIR,
    module: str = HANDLER_MODULE,
    dependencies: str | None = None,
) -> FunctionCode:
    """Build the package's archive and return the code-related arguments of ``aws.lambda_.Function``.

    The runtime and architecture come along with the archive, so a function can never run code built for
    another platform. A package with several functions gives each its own entry-point module (``module``): they
    share one archive, and each function's handler is ``<package>.<module>.handler``. Its dependencies are the set
    ``handlers/requirements/<dependencies>.txt``, by default the package's own.

    >>> aws.lambda_.Function("worker", role=role.arn, **function_code("kb_sync"))  # doctest: +SKIP
    >>> aws.lambda_.Function("sharder", role=role.arn,
    ...                      **function_code("batch_inference", module="sharder"))  # doctest: +SKIP
    """
    archive = build_handler_archive(
        package,
        module=module,
        architecture=architecture,
        python_version=python_version,
        handlers_dir=handlers_dir,
        build_dir=build_dir,
        dependencies=dependencies,
    )
    return FunctionCode(
        code=pulumi.FileArchive(str(archive.path)),
        source_code_hash=archive.source_code_hash,
        handler=archive.handler,
        runtime=archive.runtime,
        architectures=[archive.architecture],
    )


def build_handler_archive(
    package: str,
    *,
    architecture: str = defaults.LAMBDA_ARCHITECTURE,
    python_version: str = defaults.LAMBDA_PYTHON_VERSION,
    handlers_dir: Path = DEFAULT_HANDLERS_DIR,
    build_dir: Path = DEFAULT_BUILD_DIR,
    module: str = HANDLER_MODULE,
    dependencies: str | None = None,
) -> HandlerArchive:
    """Build (or reuse) the deployment archive of ``handlers_dir/<package>``, whose entry point is ``module``.

    The dependencies are the lock ``handlers_dir/requirements/<dependencies>.txt`` (``dependencies`` defaults to
    ``package``). They are installed once per lock, pip release, platform and Python version and cached under
    ``build_dir/deps``; a cached tree whose files no longer match the digest recorded at install time is installed
    again. The zip is rewritten only when its content changes.

    >>> archive = build_handler_archive("kb_sync", architecture="x86_64")  # doctest: +SKIP
    >>> archive.path  # doctest: +SKIP
    PosixPath('.../.build/archives/kb_sync-x86_64-py3.13.zip')

    Raises:
        UnknownHandlerPackageError: no ``handlers_dir/<package>/<module>.py`` (``app.py`` by default).
        UnsupportedTargetError: an architecture or Python version Lambda does not run.
        UnknownDependencySetError: no lock ``handlers_dir/requirements/<dependencies>.txt``.
        DependencyInstallError: pip failed, for instance on a file whose hash the lock does not list (its output's
            tail and the platform asked for are in the message).
    """
    machine = _machine(architecture)
    platforms = _platform_tags(machine, python_version)
    package_dir = _package_dir(package, handlers_dir, module)
    lock = _lock_file(handlers_dir, package if dependencies is None else dependencies)

    file_hashes: dict[Path, bytes] = {}  # each file is read and hashed once per build
    entries = list(_code_entries(package, package_dir, handlers_dir / SHARED_PACKAGE))
    if _pip_input(lock):
        entries.extend(
            _installed_dependencies(lock, handlers_dir, platforms, architecture, python_version, build_dir, file_hashes)
        )
    entries.sort()
    _reject_duplicates(entries)

    archive_path = build_dir / "archives" / f"{package}-{architecture}-py{python_version}.zip"
    digest = _write_archive(archive_path, entries, _fingerprint(entries, file_hashes))
    return HandlerArchive(
        package=package,
        path=archive_path,
        sha256=digest.hex(),
        source_code_hash=base64.b64encode(digest).decode("ascii"),
        architecture=architecture,
        python_version=python_version,
        module=module,
    )


# --- target platform --------------------------------------------------------------------------------


def _machine(architecture: str) -> str:
    try:
        return _MACHINES[architecture]
    except KeyError:
        raise UnsupportedTargetError(
            f"unsupported Lambda architecture {architecture!r}; use one of {', '.join(sorted(_MACHINES))}"
        ) from None


def _platform_tags(machine: str, python_version: str) -> list[str]:
    """Every manylinux tag whose wheels load on the Lambda runtime, most specific first (pip's preference)."""
    newest = _RUNTIME_GLIBC_MINOR.get(python_version)
    if newest is None:
        raise UnsupportedTargetError(
            f"unsupported Lambda Python version {python_version!r}; use one of {', '.join(_RUNTIME_GLIBC_MINOR)}"
        )
    tags: list[str] = []
    for minor in range(newest, _OLDEST_GLIBC_MINOR[machine] - 1, -1):
        tags.append(f"manylinux_2_{minor}_{machine}")
        if minor in _LEGACY_MANYLINUX:
            tags.append(f"{_LEGACY_MANYLINUX[minor]}_{machine}")
    return tags


def _describe_target(platforms: list[str], architecture: str, python_version: str) -> str:
    oldest, newest = platforms[-1], platforms[0]
    return f"Lambda {architecture} python{python_version} (CPython wheels for {newest} down to {oldest})"


# --- handler code -----------------------------------------------------------------------------------


def _package_dir(package: str, handlers_dir: Path, module: str = HANDLER_MODULE) -> Path:
    package_dir = handlers_dir / package
    valid_name = package.isidentifier() and package != SHARED_PACKAGE and module.isidentifier()
    if valid_name and (package_dir / f"{module}.py").is_file():
        return package_dir
    if valid_name and package_dir.is_dir():
        reason = f"{package_dir} has no {module}.py (the function's handler is {package}.{module}.handler)"
    else:
        reason = f"looked for {package_dir}"
    known = [
        app.parent.name
        for app in sorted(handlers_dir.glob(f"*/{HANDLER_MODULE}.py"))
        if app.parent.name != SHARED_PACKAGE
    ]
    raise UnknownHandlerPackageError(
        f"unknown handler package {package!r}: {reason}; "
        f"handler packages in {handlers_dir}: {', '.join(known) or 'none'}"
    )


def _code_entries(package: str, package_dir: Path, shared_dir: Path) -> Iterator[tuple[str, Path]]:
    yield from _tree_entries(package_dir, PurePosixPath(package))
    if shared_dir.is_dir():
        yield from _tree_entries(shared_dir, PurePosixPath(SHARED_PACKAGE))


# --- dependencies -----------------------------------------------------------------------------------


def _lock_file(handlers_dir: Path, name: str) -> Path:
    lock = handlers_dir / REQUIREMENTS_DIR / f"{name}{LOCK_SUFFIX}"
    if name.isidentifier() and lock.is_file():
        return lock
    known = sorted(p.stem for p in (handlers_dir / REQUIREMENTS_DIR).glob(f"*{LOCK_SUFFIX}") if p.stem.isidentifier())
    raise UnknownDependencySetError(
        f"no dependency lock {lock}: list what the functions import in {lock.with_suffix('.in')} and compile it "
        f"with hashes (the command is in {handlers_dir / 'requirements.txt'}); "
        f"locks in {lock.parent}: {', '.join(known) or 'none'}"
    )


def _pip_input(lock: Path) -> str:
    """What pip reads from the lock (no comments or blank lines): an empty set installs nothing."""
    lines = (_COMMENT.sub("", line).strip() for line in lock.read_text().splitlines())
    return "\n".join(line for line in lines if line)


def _installed_dependencies(
    lock: Path,
    handlers_dir: Path,
    platforms: list[str],
    architecture: str,
    python_version: str,
    build_dir: Path,
    file_hashes: dict[Path, bytes],
) -> list[tuple[str, Path]]:
    """The dependency tree for this lock and target, as archive entries: reused if its files are the ones
    installed, else installed.

    pip installs into a private temporary directory that is renamed into place only when complete (with the
    digest of its files), so an interrupted install never leaves a tree that looks usable, and two concurrent
    builds cannot mix files. The digest covers exactly what goes into an archive; a file edited, added or removed
    since, by hand or by a stray ``pip install --target``, makes the tree be installed again from the lock.
    """
    pip_lock = _build_tools_lock(handlers_dir)
    key_material = json.dumps(
        {
            "requirements": hashlib.sha256(_pip_input(lock).encode()).hexdigest(),
            "pip": hashlib.sha256(_pip_input(pip_lock).encode()).hexdigest(),
            "platforms": platforms,
            "python": python_version,
            "implementation": "cp",
            "runtime_provided": sorted(RUNTIME_PROVIDED),
        },
        sort_keys=True,
    )
    key = hashlib.sha256(key_material.encode()).hexdigest()[:24]
    deps_root = build_dir / "deps"
    final = deps_root / key
    if final.is_dir():
        recorded = final / _TREE_DIGEST_FILE
        expected = recorded.read_text().strip() if recorded.is_file() else None
        entries = list(_dependency_entries(final))
        if expected is not None and _tree_digest(entries, file_hashes) == expected:
            return entries
        _log.warning(
            "dependency cache %s %s; installing %s again", final,
            "has no recorded digest" if expected is None else "no longer matches the digest recorded when installed",
            lock,
        )
        file_hashes.clear()
        _discard(final, deps_root)

    deps_root.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_installs(deps_root)
    pip = _pinned_pip(pip_lock, build_dir / "tools")
    partial = Path(tempfile.mkdtemp(prefix=f".partial-{key}-", dir=deps_root))
    try:
        started = time.monotonic()
        _pip_install(pip, lock, partial, platforms, architecture, python_version)
        _remove_distributions(partial, RUNTIME_PROVIDED)
        (partial / _TREE_DIGEST_FILE).write_text(_tree_digest(list(_dependency_entries(partial)), {}) + "\n")
        partial.chmod(0o755)  # mkdtemp made it private; the finished tree is as readable as any build output
        try:
            partial.rename(final)
        except OSError:
            if not final.is_dir():  # not a concurrent build that finished first
                raise
        _log.info("installed %s for %s in %.1fs", lock, architecture, time.monotonic() - started)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return list(_dependency_entries(final))


def _tree_digest(entries: list[tuple[str, Path]], file_hashes: dict[Path, bytes]) -> str:
    """A digest of the files of a dependency tree that go into an archive: their names, modes and contents."""
    digest = hashlib.sha256()
    for arcname, path in sorted(entries):
        digest.update(f"{arcname}\0{_mode(path):o}\0".encode())
        digest.update(_content_sha256(path, file_hashes))
    return digest.hexdigest()


def _discard(tree: Path, deps_root: Path) -> None:
    """Move a tree out of the way at once (a rename), then delete it."""
    doomed = Path(tempfile.mkdtemp(prefix=".partial-discarded-", dir=deps_root))
    with contextlib.suppress(FileNotFoundError):  # a concurrent build discarded it first
        tree.rename(doomed / tree.name)
    shutil.rmtree(doomed, ignore_errors=True)


def _build_tools_lock(handlers_dir: Path) -> Path:
    lock = handlers_dir / REQUIREMENTS_DIR / BUILD_TOOLS_LOCK
    if not lock.is_file():
        raise UnknownDependencySetError(
            f"no {lock}: it pins, with hashes, the pip release that installs the functions' dependencies"
        )
    return lock


def _pinned_pip(lock: Path, tools_dir: Path) -> Path:
    """The wheel of the pip release the lock pins, fetched once; its hash is checked against the lock on every use.

    Any pip can fetch it: ``pip download --require-hashes`` takes only a file whose hash the lock lists.
    """
    text = lock.read_text()
    pin = _PIP_PIN.search(text)
    allowed = set(_SHA256_HASH.findall(text))
    if pin is None or not allowed:
        raise DependencyInstallError(f"{lock} must pin pip (pip==<version>) with its hashes (--hash=sha256:...)")
    version = pin.group(1)
    for wheel in sorted(tools_dir.glob(f"pip-{version}-*.whl")):
        if _file_sha256(wheel).hex() in allowed:
            return wheel
        _log.warning("%s does not match a hash in %s; fetching it again", wheel, lock)
        wheel.unlink()

    tools_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=tools_dir) as fetching:
        command = [
            sys.executable, "-I", "-m", "pip", "download",
            "--disable-pip-version-check", "--no-input", "--quiet",
            "--no-deps", "--only-binary=:all:", "--require-hashes",
            "--dest", fetching, "--requirement", str(lock),
        ]  # fmt: skip
        result = _run_pip(command, lock.parent, f"fetching pip {version} ({lock})")
        wheels = list(Path(fetching).glob(f"pip-{version}-*.whl"))
        if result.returncode != 0 or len(wheels) != 1 or _file_sha256(wheels[0]).hex() not in allowed:
            raise DependencyInstallError(
                f"could not fetch pip {version} with a hash {lock} lists (exit status {result.returncode}); "
                f"pip said:\n{_tail(result)}"
            )
        wheel = tools_dir / wheels[0].name
        os.replace(wheels[0], wheel)
    return wheel


def _pip_install(
    pip: Path, lock: Path, target: Path, platforms: list[str], architecture: str, python_version: str
) -> None:
    command = [
        sys.executable, "-I", str(pip / "pip"), "install",  # -I: this process's PYTHONPATH and cwd stay out of pip
        "--disable-pip-version-check", "--no-input", "--quiet",
        "--require-hashes",  # every file must match a hash in the lock, even when the lock has none at all
        "--target", str(target),
        "--implementation", "cp",
        "--python-version", python_version,
        "--only-binary=:all:",  # compiling here would build for this machine, not for Lambda
        "--no-compile",  # Lambda compiles on import; shipped .pyc would only be stale noise
        *(f"--platform={tag}" for tag in platforms),
        "--requirement", str(lock),
    ]  # fmt: skip
    target_name = _describe_target(platforms, architecture, python_version)
    result = _run_pip(command, lock.parent, f"installing {lock} for {target_name}")
    if result.returncode != 0:
        raise DependencyInstallError(
            f"pip could not install {lock} for {target_name}, binary wheels only, each matching a hash the lock "
            f"lists (exit status {result.returncode}). A dependency without a wheel for this platform cannot be "
            f"bundled: pin a version that publishes one. A hash mismatch or a missing hash means the lock is stale "
            f"or a file is not the one locked: recompile the lock (the command is in "
            f"{lock.parent.parent / 'requirements.txt'}) and see what changed. pip said:\n{_tail(result)}"
        )


def _run_pip(command: list[str], cwd: Path, doing: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command,
            cwd=cwd,  # relative paths in the lock mean what they say
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_PIP_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DependencyInstallError(f"pip did not finish {doing} within {_PIP_TIMEOUT_SECONDS}s") from None


def _tail(result: subprocess.CompletedProcess[str]) -> str:
    output = (result.stderr.strip() or result.stdout.strip()).splitlines()
    return "\n".join(f"    {line}" for line in output[-20:])


def _remove_distributions(site: Path, names: frozenset[str]) -> None:
    """Delete the files of the named distributions (and their metadata) from an installed tree.

    The files are the ones each distribution's RECORD lists, so nothing else is touched.
    """
    for dist_info in sorted(site.glob("*.dist-info")):
        if _normalize(_distribution_name(dist_info)) not in names:
            continue
        record = dist_info / "RECORD"
        listed = record.read_text().splitlines() if record.is_file() else []
        for line in listed:
            relative = line.split(",", 1)[0]
            path = (site / relative).resolve()
            if path.is_relative_to(site.resolve()) and path.is_file():
                path.unlink()
        shutil.rmtree(dist_info, ignore_errors=True)
    # Packages whose files are all gone leave empty directories (and __pycache__ from nothing); drop them.
    for directory in sorted((p for p in site.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(f.is_file() for f in directory.rglob("*")):
            shutil.rmtree(directory, ignore_errors=True)


def _distribution_name(dist_info: Path) -> str:
    metadata = dist_info / "METADATA"
    if metadata.is_file():
        for line in metadata.read_text(errors="replace").splitlines():
            if line.lower().startswith("name:"):
                return line.split(":", 1)[1].strip()
            if not line:
                break
    return dist_info.name.split("-", 1)[0]


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _remove_abandoned_installs(deps_root: Path) -> None:
    cutoff = time.time() - _ABANDONED_AFTER_SECONDS
    for partial in deps_root.glob(".partial-*"):
        try:
            if partial.stat().st_mtime < cutoff:
                shutil.rmtree(partial, ignore_errors=True)
        except FileNotFoundError:
            pass


def _dependency_entries(deps_dir: Path) -> Iterator[tuple[str, Path]]:
    for arcname, path in _tree_entries(deps_dir, PurePosixPath()):
        parts = PurePosixPath(arcname).parts
        if parts[0] in _SKIPPED_DEPS_TOP:
            continue
        if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] in _SKIPPED_DIST_INFO:
            continue
        yield arcname, path


# --- the archive ------------------------------------------------------------------------------------


def _tree_entries(root: Path, prefix: PurePosixPath) -> Iterator[tuple[str, Path]]:
    """Files under ``root`` that belong in an archive, as (archive name, source path)."""
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in _SKIPPED_DIRS and not d.startswith(".")]
        # String joins, not a PurePosixPath per file: a dependency tree has thousands of files, walked every build.
        relative = PurePosixPath(prefix, Path(directory).relative_to(root).as_posix())
        base = "" if str(relative) == "." else f"{relative}/"
        for name in files:
            if _skipped_file(name):
                continue
            yield base + name, Path(directory, name)


def _skipped_file(name: str) -> bool:
    return (
        name.startswith(".")  # .DS_Store, editor and tool droppings
        or name.endswith(_SKIPPED_SUFFIXES)
        or (name.startswith("test_") and name.endswith(".py"))
        or name == "conftest.py"
    )


def _reject_duplicates(entries: list[tuple[str, Path]]) -> None:
    for (name, first), (next_name, second) in pairwise(entries):
        if name == next_name:
            raise PackagingError(f"{name} would come from both {first} and {second}; rename one of them")


def _mode(path: Path) -> int:
    """0o755 for executables, 0o644 otherwise: readable by Lambda's sandbox user, independent of umask."""
    return 0o755 if path.stat().st_mode & 0o111 else 0o644


def _fingerprint(entries: list[tuple[str, Path]], file_hashes: dict[Path, bytes]) -> str:
    """A digest of everything the zip's bytes depend on, cheaper to compute than the zip itself."""
    digest = hashlib.sha256()
    digest.update(hashlib.sha256(Path(__file__).read_bytes()).digest())  # how archives are made
    digest.update(f"{zlib.ZLIB_RUNTIME_VERSION}\0{_COMPRESS_LEVEL}\0".encode())
    for arcname, path in entries:
        digest.update(f"{arcname}\0{_mode(path):o}\0".encode())
        digest.update(_content_sha256(path, file_hashes))
    return digest.hexdigest()


def _content_sha256(path: Path, file_hashes: dict[Path, bytes]) -> bytes:
    if path not in file_hashes:
        file_hashes[path] = _file_sha256(path)
    return file_hashes[path]


def _file_sha256(path: Path) -> bytes:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").digest()


def _write_archive(path: Path, entries: list[tuple[str, Path]], fingerprint: str) -> bytes:
    """Write the zip unless an identical one is there; return its sha256 digest."""
    sidecar = path.with_name(path.name + ".json")
    if path.is_file() and sidecar.is_file():
        try:
            recorded = json.loads(sidecar.read_text())
        except ValueError:
            recorded = {}
        if recorded.get("fingerprint") == fingerprint:
            digest = _file_sha256(path)
            if digest.hex() == recorded.get("sha256"):
                return digest

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=_COMPRESS_LEVEL) as zf:
            for arcname, source in entries:
                info = zipfile.ZipInfo(arcname, date_time=_ZIP_EPOCH)
                info.create_system = 3  # Unix, so external_attr carries the permissions on every build host
                info.external_attr = (stat.S_IFREG | _mode(source)) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, source.read_bytes(), compresslevel=_COMPRESS_LEVEL)
        digest = _file_sha256(Path(temporary))
        if path.is_file() and _file_sha256(path) == digest:
            os.unlink(temporary)  # same bytes: keep the existing file and its mtime
        else:
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    _atomic_write_text(sidecar, json.dumps({"fingerprint": fingerprint, "sha256": digest.hex()}, indent=2))
    return digest


def _atomic_write_text(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
