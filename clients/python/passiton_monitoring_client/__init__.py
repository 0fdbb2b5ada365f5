"""PassItOn monitoring client: report application signals to the exporter.

    from passiton_monitoring_client import Monitoring

    monitoring = Monitoring("http://exporter:9820", token="...")
    monitoring.payment.failure(...)

Depends on httpx only. The aiohttp middleware (``passiton_monitoring_client.middleware``) needs
the ``aiohttp`` extra: ``pip install 'passiton-monitoring-client[aiohttp]'``.
"""

from passiton_monitoring_client.client import MAX_TEXT, ClientStats, InvalidEvent, Monitoring

__all__ = ["MAX_TEXT", "ClientStats", "InvalidEvent", "Monitoring"]
