"""Replay backtest of the alert rules: synthetic weeks of PassItOn traffic with seeded incidents,
generated through the real exporter, backfilled into a real Prometheus TSDB with promtool, the
recording rules evaluated in dependency order, the alert rules with their `for` and
`keep_firing_for`, and a report of detection times, pages outside incidents and flaps.

    python -m backtest --days 21          # make backtest
"""
