"""synchro.config."""
