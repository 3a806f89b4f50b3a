"""synchro.platform."""
