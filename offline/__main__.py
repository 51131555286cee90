"""`python -m offline preview --stack dev`: see `offline.cli`."""

import sys

from offline.cli import batch_gc, main

batch_gc()
sys.exit(main())
