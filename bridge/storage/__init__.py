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
)
from bridge.storage.postgres import PostgresStorage
from bridge.storage.sqlite import SqliteStorage

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


def open_storage(url: str, *, pool_size: int = 10) -> Storage:
    """The backend a ``DATABASE_URL`` names (not opened yet)."""
    if url.startswith(("postgres://", "postgresql://")):
        return PostgresStorage(url, pool_size=pool_size)
    if url.startswith("sqlite://"):
        return SqliteStorage(url)
    raise ValueError("DATABASE_URL must start with postgresql:// or sqlite:///")
