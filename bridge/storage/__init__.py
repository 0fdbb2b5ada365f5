"""Storage of alerts, deliveries and bridge state: one interface, PostgreSQL and SQLite."""

from bridge.storage.base import (
    ALERT_TABLES,
    AlertState,
    ClaimedDelivery,
    ConfigurationRow,
    FatigueState,
    NewDelivery,
    NewEvents,
    NotificationRecord,
    PreferenceRow,
    Storage,
    StorageUnavailable,
    Transaction,
    open_storage,
)

__all__ = [
    "ALERT_TABLES",
    "AlertState",
    "ClaimedDelivery",
    "ConfigurationRow",
    "FatigueState",
    "NewDelivery",
    "NewEvents",
    "NotificationRecord",
    "PreferenceRow",
    "Storage",
    "StorageUnavailable",
    "Transaction",
    "open_storage",
]
