"""`python -m offline preview --stack dev`: see `offline.cli`."""

import sys

from offline.cli import main

sys.exit(main())
