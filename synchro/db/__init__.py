"""synchro.db."""
