"""Code shared by the Lambda handlers: configuration from the environment, S3 event helpers, and the one protocol
per concern that every handler follows: `common.claim` (conditional-write claims with an owner and a lease) and
`common.retry` (backoff with full jitter inside a time budget, retryable codes per service).

Each handler's archive holds its own package next to ``common/``, so everything here is imported as
``common.<module>``. Keep it small: a helper belongs here only once two handlers need it, and its AWS I/O goes
through a client the caller passes in.
"""

from common.env import ConfigurationError, read_int, read_str
from common.s3_keys import decode_event_key

__all__ = ["ConfigurationError", "decode_event_key", "read_int", "read_str"]
