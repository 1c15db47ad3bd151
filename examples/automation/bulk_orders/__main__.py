"""``python -m bulk_orders``."""

import sys

from bulk_orders.cli import main

sys.exit(main())
