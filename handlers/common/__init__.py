"""Code shared by the Lambda handlers: configuration from the environment and S3 event helpers.

Each handler's archive holds its own package next to ``common/``, so everything here is imported as
``common.<module>``. Keep it small and free of AWS I/O: a helper belongs here only once two handlers need it.
"""

from common.env import ConfigurationError, read_int, read_str
from common.s3_keys import decode_event_key

__all__ = ["ConfigurationError", "decode_event_key", "read_int", "read_str"]
