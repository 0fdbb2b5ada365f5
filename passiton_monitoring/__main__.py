"""``python -m passiton_monitoring``: the same as the ``passiton-monitoring`` console script."""

import sys

from passiton_monitoring.cli import main

sys.exit(main())
