"""The ``biocount`` logger, following ``scanpy.settings.verbosity`` when scanpy is in use."""

from __future__ import annotations

import logging
import sys

logger = logging.getLogger("biocount")
_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.INFO, 4: logging.DEBUG}


def sync_verbosity() -> logging.Logger:
    """Set the logger's level from scanpy's verbosity (error 0 ... debug 4), if scanpy is imported."""
    sc = sys.modules.get("scanpy")
    if sc is not None:
        verbosity = int(getattr(sc.settings, "verbosity", 1))
        logger.setLevel(_LEVELS.get(verbosity, logging.DEBUG if verbosity > 4 else logging.ERROR))
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("biocount: %(message)s"))
        logger.addHandler(handler)
    return logger
