"""The components that live in core register through the same hooks that plugins use."""

from __future__ import annotations

from .hookspecs import hookimpl


@hookimpl
def biocount_register_forecasters(register):
    """Core forecasters are added here as they land (naive persistence, the shared LSTM)."""
