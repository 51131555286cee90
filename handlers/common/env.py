"""Read and validate a handler's configuration from environment variables.

The infrastructure passes configuration only through the environment. A handler reads it once, at cold
start, with these helpers so that a missing or malformed variable fails the function's initialisation with a
message naming the variable, instead of surfacing later as a confusing AWS error.

Example::

    from common.env import read_int, read_str

    queue_url = read_str(os.environ, "QUEUE_URL", pattern=r"https://sqs\\..+", meaning="an SQS queue URL")
    delay = read_int(os.environ, "DELAY_SECONDS", default=300, minimum=0, maximum=900)
"""

from __future__ import annotations

import re
from collections.abc import Mapping


class ConfigurationError(RuntimeError):
    """An environment variable is missing or invalid; the message names the variable."""


def read_str(env: Mapping[str, str], name: str, *, pattern: str | None = None, meaning: str = "a value") -> str:
    """Return the required variable ``name``, stripped, optionally checked against a full-match ``pattern``."""
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set; it must be {meaning}")
    if pattern is not None and re.fullmatch(pattern, value) is None:
        raise ConfigurationError(f"environment variable {name}={value!r} is not {meaning} (expected /{pattern}/)")
    return value


def read_int(env: Mapping[str, str], name: str, *, default: int, minimum: int, maximum: int) -> int:
    """Return the optional integer variable ``name`` (``default`` when unset), bounded to [minimum, maximum]."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {name}={raw!r} is not an integer") from None
    if not minimum <= value <= maximum:
        raise ConfigurationError(f"environment variable {name}={value} is outside [{minimum}, {maximum}]")
    return value
