"""``python -m fnsearch``: the same as the ``fnsearch`` command."""

import sys

from .cli import main

sys.exit(main())
