"""Packaging: what the caches save, and how big each function's archive is with its own dependencies.

Run: `python -m benchmarks.packaging` from the repository root.

1. Cold build against a build with cached dependencies and a no-op rebuild (the cached tree's digest is checked on
   every build, so that check is in both figures), in a temporary directory: the project's own `.build/` is left
   alone; the cold build downloads wheels (pip's own HTTP cache may serve them).
2. Every handler package's archive, arm64 and x86_64, built with its own set (handlers/requirements/<package>.txt)
   and with the union of all sets (what every archive carried when all functions shared one requirements file):
   zip and unpacked sizes side by side. Uses the project's dependency cache (`.build/deps`), which only grows by the
   trees it lacks.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from components.blocks.packaging import (
    DEFAULT_BUILD_DIR,
    DEFAULT_HANDLERS_DIR,
    LOCK_SUFFIX,
    REQUIREMENTS_DIR,
    SHARED_PACKAGE,
    build_handler_archive,
)

ARCHITECTURES = ("arm64", "x86_64")
UNION = "every_set"  # a set name no handler package has


def _packages() -> list[str]:
    return sorted(p.parent.name for p in DEFAULT_HANDLERS_DIR.glob("*/__init__.py") if p.parent.name != SHARED_PACKAGE)


def _entry_module(package: str) -> str:
    modules = sorted(p.stem for p in (DEFAULT_HANDLERS_DIR / package).glob("*.py") if p.stem != "__init__")
    modules = [m for m in modules if m != "__main__"]
    return "app" if "app" in modules else modules[0]


def _timed(build: Callable[[], object]) -> float:
    started = time.perf_counter()
    build()
    return time.perf_counter() - started


def caches(scratch: Path, package: str) -> None:
    print(f"caches: package {package!r}")
    for architecture in ARCHITECTURES:
        build_dir = scratch / f"build-{architecture}"

        def build(architecture: str = architecture, build_dir: Path = build_dir) -> object:
            return build_handler_archive(
                package, module=_entry_module(package), architecture=architecture, build_dir=build_dir
            )

        cold = _timed(build)
        shutil.rmtree(build_dir / "archives")
        deps_cached = _timed(build)
        unchanged = min(_timed(build) for _ in range(5))
        print(
            f"{architecture:>7}: cold {cold:6.2f}s | dependencies cached {deps_cached:6.2f}s "
            f"({cold / deps_cached:5.1f}x faster) | unchanged {unchanged * 1000:6.1f}ms "
            f"({cold / unchanged:6.0f}x faster than cold, {deps_cached / unchanged:4.0f}x than a re-zip)"
        )


def _union_lock(locks: list[Path]) -> str:
    """One lock holding every requirement of the given locks (with its hashes); the pins agree across them."""
    entries: dict[str, str] = {}
    for lock in locks:
        text = re.sub(r"(?m)^\s*#.*\n?", "", lock.read_text())
        for entry in re.split(r"\n(?=\S)", text.strip()):
            entries.setdefault(entry.split("==", 1)[0].lower(), entry)
    return "\n".join(entries[name] for name in sorted(entries)) + "\n"


def _sizes(path: Path) -> tuple[float, float]:
    with zipfile.ZipFile(path) as zf:
        return path.stat().st_size / 1e6, sum(i.file_size for i in zf.infolist()) / 1e6


def sizes(scratch: Path, packages: list[str]) -> None:
    handlers = scratch / "handlers"
    shutil.copytree(DEFAULT_HANDLERS_DIR, handlers, ignore=shutil.ignore_patterns("__pycache__"))
    locks = handlers / REQUIREMENTS_DIR
    (locks / f"{UNION}{LOCK_SUFFIX}").write_text(_union_lock([locks / f"{p}{LOCK_SUFFIX}" for p in packages]))
    build_dir = scratch / "build-sizes"
    build_dir.mkdir()
    for shared in ("deps", "tools"):
        (DEFAULT_BUILD_DIR / shared).mkdir(parents=True, exist_ok=True)
        (build_dir / shared).symlink_to(DEFAULT_BUILD_DIR / shared, target_is_directory=True)

    print("\narchive sizes, MB (zip / unpacked): every set's dependencies -> the function's own")
    print("| function | architecture | every set | own set | unpacked, every set -> own |")
    print("|---|---|---|---|---|")
    for package in packages:
        for architecture in ARCHITECTURES:
            figures = []
            for dependencies in (UNION, package):
                archive = build_handler_archive(
                    package, module=_entry_module(package), architecture=architecture, handlers_dir=handlers,
                    build_dir=build_dir, dependencies=dependencies,
                )  # fmt: skip
                figures.append(_sizes(archive.path))
                shutil.rmtree(build_dir / "archives")  # both builds write the same archive name
            (zip_all, unpacked_all), (zip_own, unpacked_own) = figures
            print(
                f"| {package} | {architecture} | {zip_all:.2f} | {zip_own:.2f} ({zip_own / zip_all:.0%}) "
                f"| {unpacked_all:.1f} -> {unpacked_own:.1f} ({unpacked_own / unpacked_all:.0%}) |"
            )


def main() -> None:
    packages = _packages()
    with tempfile.TemporaryDirectory(prefix="packaging-bench-") as scratch_name:
        scratch = Path(scratch_name)
        caches(scratch, packages[0])
        sizes(scratch, packages)


if __name__ == "__main__":
    main()
