"""synchro.engine."""
