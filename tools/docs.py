"""Regenerate (or, with --check, verify) the generated sections of README.md.

Each section sits between `<!-- NAME:begin -->` and `<!-- NAME:end -->` markers; everything else in the file is
written by hand. `make docs` rewrites them; the test suite runs the check so the README can't drift.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from tools import config_reference

README = Path(__file__).resolve().parent.parent / "README.md"


def _architecture() -> str:
    from offline.graph import readme_block  # imported lazily: it synthesizes the dev stack

    return readme_block("dev")


SECTIONS: dict[str, Callable[[], str]] = {
    "config-reference": config_reference.markdown,
    "architecture": _architecture,
}


def render(text: str, names: list[str]) -> str:
    for name in names:
        pattern = re.compile(rf"(<!-- {name}:begin -->\n)(?:.*?\n)?(<!-- {name}:end -->)", re.DOTALL)
        if not pattern.search(text):
            raise SystemExit(f"README.md has no <!-- {name}:begin --> ... <!-- {name}:end --> markers")
        body = SECTIONS[name]().strip()
        text = pattern.sub(_replacement(body), text)
    return text


def _replacement(body: str) -> Callable[[re.Match[str]], str]:
    return lambda match: f"{match.group(1)}{body}\n{match.group(2)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a generated section is out of date")
    parser.add_argument("sections", nargs="*", default=list(SECTIONS), help=f"any of {', '.join(SECTIONS)}")
    args = parser.parse_args(argv)
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; known: {', '.join(SECTIONS)}")
    current = README.read_text()
    wanted = render(current, args.sections)
    if args.check:
        if wanted != current:
            print("README.md is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    README.write_text(wanted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
