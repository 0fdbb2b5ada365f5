"""The JSON API under ``/api/v1/`` (issue 21): incidents, alerts, silences, settings and on-call
for scripts, authenticated by personal API tokens (``token create``). ``routes.py`` declares
every route once; the router and ``/api/v1/openapi.json`` are both derived from it."""
