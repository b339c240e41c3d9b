"""``python -m controller.cli``: the same as ``thanthien-controller``."""

import sys

from controller.cli import main

sys.exit(main())
