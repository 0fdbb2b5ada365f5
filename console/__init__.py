"""The alert console: server-rendered pages under ``/console/`` of the bridge."""
