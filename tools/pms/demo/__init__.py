"""The embedded demo PMS (SQLite, seeded with sample properties and reservations)."""

from tools.pms.demo.pms import DemoPMS

__all__ = ["DemoPMS"]
