"""`python -m offline preview --stack dev`: see `offline.cli`."""

import atexit
import logging
import sys

from offline.cli import batch_gc, main

batch_gc()
# As the CLI's Python host does for a program's process: a program that failed or timed out leaves futures and
# coroutines unfinished, which asyncio and the interpreter would report at length after the real error (already
# printed by main). Only at exit: nothing the run itself raises is hidden.
logging.getLogger("asyncio").setLevel(logging.CRITICAL)
atexit.register(lambda: setattr(sys, "unraisablehook", lambda unraisable: None))
sys.exit(main())
