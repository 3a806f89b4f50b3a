"""Synchro: daily synchronisation of establishment databases with their headquarters."""

__version__ = "0.1.0"
