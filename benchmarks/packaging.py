"""How much the packaging caches save: a cold build against a build with cached dependencies and a no-op rebuild.

Run: `python -m benchmarks.packaging` from the repository root. Builds into a temporary directory, so the
project's own `.build/` is left alone; the cold build downloads wheels (pip's own HTTP cache may serve them).
Uses the first handler package with an `app.py`, or a minimal one beside the real requirements if none exists.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from components.blocks.packaging import DEFAULT_HANDLERS_DIR, REQUIREMENTS_FILE, build_handler_archive


def _handlers(scratch: Path) -> tuple[Path, str]:
    packages = sorted(p.parent.name for p in DEFAULT_HANDLERS_DIR.glob("*/app.py") if p.parent.name != "common")
    if packages:
        return DEFAULT_HANDLERS_DIR, packages[0]
    handlers = scratch / "handlers"
    (handlers / "bench").mkdir(parents=True)
    (handlers / "bench" / "app.py").write_text("def handler(event, context):\n    return event\n")
    shutil.copyfile(DEFAULT_HANDLERS_DIR / REQUIREMENTS_FILE, handlers / REQUIREMENTS_FILE)
    return handlers, "bench"


def _timed(build: Callable[[], object]) -> float:
    started = time.perf_counter()
    build()
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="packaging-bench-") as scratch_name:
        scratch = Path(scratch_name)
        handlers, package = _handlers(scratch)
        print(f"package {package!r} from {handlers}")
        for architecture in ("arm64", "x86_64"):
            build_dir = scratch / f"build-{architecture}"

            def build(architecture: str = architecture, build_dir: Path = build_dir) -> object:
                return build_handler_archive(
                    package, architecture=architecture, handlers_dir=handlers, build_dir=build_dir
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


if __name__ == "__main__":
    main()
