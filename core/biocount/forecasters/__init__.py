"""Core's forecasters, one per module: ``naive`` (persistence) and ``lstm`` (the shared model)."""
