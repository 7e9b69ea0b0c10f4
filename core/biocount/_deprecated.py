"""Keyword arguments renamed in the Python API: the old spelling works for one release, with a warning."""

from __future__ import annotations

import functools
import warnings
from typing import Any


def renamed(**old_to_new: str):
    """Accept ``old=`` for ``new=`` (a FutureWarning says so); both at once is an error."""

    def wrap(func):
        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any):
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{func.__name__}() got both {old}= and {new}=; {old} is the old name of {new}")
                    warnings.warn(f"{func.__name__}({old}=...) is deprecated; use {new}= (the name biocount uses "
                                  "everywhere: CLI, YAML, bc.run)", FutureWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return call

    return wrap
