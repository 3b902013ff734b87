"""``python -m tui.cli``: the same as ``balance-tui``."""

import sys

from tui.cli import main

sys.exit(main())
