"""Storage of alerts, deliveries and bridge state: one interface, PostgreSQL and SQLite."""

from bridge.storage.base import (
    ALERT_TABLES,
    ClaimedDelivery,
    ConfigurationRow,
    FatigueState,
    FlapState,
    NewDelivery,
    NotificationRecord,
    PreferenceRow,
    Storage,
    StorageUnavailable,
    Transaction,
    open_storage,
)

__all__ = [
    "ALERT_TABLES",
    "ClaimedDelivery",
    "ConfigurationRow",
    "FatigueState",
    "FlapState",
    "NewDelivery",
    "NotificationRecord",
    "PreferenceRow",
    "Storage",
    "StorageUnavailable",
    "Transaction",
    "open_storage",
]
