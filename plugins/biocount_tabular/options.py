from biocount.specs import NoOptions as TabularOptions  # noqa: F401
