"""The ``passiton-monitoring`` entry point (``cli``) and the ``up`` dev stack (``stack``).

Outside both services: it imports the exporter and the bridge, neither imports it.
"""
