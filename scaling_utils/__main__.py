"""``python -m scaling_utils``: see :mod:`scaling_utils.cli`."""

import sys

from .cli import main

sys.exit(main())
