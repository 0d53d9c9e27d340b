"""Tools that agents use, each run as supervised actors."""
