"""The question every changing command asks before it acts."""

from __future__ import annotations


def ask(question: str) -> str:
    return input(question)


def confirmed(action: str, *, yes: bool) -> bool:
    """True when the operator agrees to ``action`` (always with ``--yes``); no terminal to answer means no."""
    if yes:
        return True
    try:
        answer = ask(f"{action}? [y/N] ")
    except EOFError:
        print("\nno answer (no terminal?): pass --yes to run without the question")
        return False
    return answer.strip().lower() in ("y", "yes")
