"""synchro.capture."""
