"""synchro.gui."""
