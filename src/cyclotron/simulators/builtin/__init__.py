"""Cyclotron's own condensed-history proton transport (the ``builtin`` engine)."""
