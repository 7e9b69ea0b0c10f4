"""Every error biocount raises on purpose, in one place.

Each carries a one-line message that says what is wrong and how to fix it. The CLI turns
them into exit codes in one place (:func:`biocount.cli.main`): input and configuration
errors exit with 2, anything else with 1.
"""

from __future__ import annotations


class BiocountError(Exception):
    """Base class of biocount's errors; exit code 1 (an internal problem)."""

    exit_code = 1


class BiocountInputError(BiocountError):
    """The user's data, options or files are wrong; exit code 2."""

    exit_code = 2


class RegistryError(BiocountInputError):
    """A registry file cannot be read, fails its schema, or cannot be satisfied."""


class PluginError(BiocountInputError):
    """A plugin that the run needs is broken, blocked, disabled or incompatible.

    The message always names the plugin (distribution and version) so users know whom to ask.
    """


class ContractError(BiocountInputError):
    """A :class:`~biocount.ModalityData` violates the data contract.

    ``problems`` holds one sentence per violation; the message joins them.
    """

    def __init__(self, problems: list[str], *, where: str = "modality data") -> None:
        self.problems = list(problems)
        super().__init__(f"{where} breaks the data contract: " + " ".join(self.problems))
