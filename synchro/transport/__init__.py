"""synchro.transport."""
