import signal
import sys

from backtest.cli import main

# SIGTERM ends a replay as Ctrl-C does: the `finally` blocks stop its Prometheus and remove its
# work directory, instead of leaving a Prometheus running on a deleted TSDB
signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
sys.exit(main())
