"""The scanpy-style API: ``pp`` (prepare AnnData), ``tl`` (forecast into AnnData), ``pl`` (plots), ``get`` (tables)."""
