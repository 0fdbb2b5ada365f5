"""Notification channels: one module each, all behind ``base.Notifier``."""
