"""synchro.package."""
