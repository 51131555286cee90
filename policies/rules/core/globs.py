"""Do two wildcard patterns share a string? (An IAM resource ARN against an ARN format, an S3 key pattern
against a notification filter.)

Patterns are compiled to tokens: a literal character, `ANY` (`*`: any run of characters), `SEGMENT` (a
`${Variable}` of an ARN format: any run without `:`), `ONE` (`?`: one character). The search walks pairs of
positions; two stars never need to consume the same character, so each step either lets a star match nothing or
lets it absorb one character of the other side.
"""

from __future__ import annotations

import re
from functools import lru_cache

ANY, SEGMENT, ONE = "\x00", "\x01", "\x02"
_STARS = (ANY, SEGMENT)
_VARIABLE = re.compile(r"\$\{[^}]*\}")


@lru_cache(maxsize=4096)
def wildcard(pattern: str) -> str:
    """Tokens of a pattern written with IAM/S3 wildcards (`*`, `?`)."""
    return pattern.replace("*", ANY).replace("?", ONE)


@lru_cache(maxsize=4096)
def arn_format(raw_arn: str) -> str:
    """Tokens of an ARN format from AWS's IAM database (`arn:${Partition}:sqs:${Region}:${Account}:${QueueName}`)."""
    return _VARIABLE.sub(SEGMENT, raw_arn)


def _absorbs(star: str, char: str) -> bool:
    return star == ANY or char != ":"


@lru_cache(maxsize=16384)
def overlap(left: str, right: str) -> bool:
    """True when some string matches both token patterns."""
    seen: set[tuple[int, int]] = set()
    stack = [(0, 0)]
    while stack:
        i, j = stack.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        a = left[i] if i < len(left) else None
        b = right[j] if j < len(right) else None
        if a is None and b is None:
            return True
        if a in _STARS:
            stack.append((i + 1, j))
            if b is not None and (b in _STARS or b == ONE or _absorbs(a, b)):
                stack.append((i, j + 1))
        elif b in _STARS:
            stack.append((i, j + 1))
            if a is not None and (a == ONE or _absorbs(b, a)):
                stack.append((i + 1, j))
        elif a is not None and b is not None and (a == b or ONE in (a, b)):
            stack.append((i + 1, j + 1))
    return False
