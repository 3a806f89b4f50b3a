"""The ODBC drivers installed on this machine (the wizard's driver list)."""

from __future__ import annotations


def odbc_drivers() -> list[str]:
    """Their names, as ``DRIVER={...}`` takes them; none without an ODBC driver manager.
    pyodbc is imported here, only when the list is asked for."""
    try:
        import pyodbc
    except ImportError:
        return []
    drivers: list[str] = pyodbc.drivers()
    return drivers
