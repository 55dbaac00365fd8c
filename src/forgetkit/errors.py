"""The errors a user can act on.

Every error whose message alone says what was wrong, where and what to do derives from
``UserError``; the command line shows those as one line with exit code 2. Anything else is a
bug and keeps its traceback. ``UserError`` is a ``ValueError`` so that library callers who
catch ``ValueError`` keep working.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input, bad option or an output that cannot be written: the user can fix it."""


class UnknownNameError(UserError, KeyError):
    """A name that no registry entry has (a method, a loss term, a metric...)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class OutputExistsError(UserError, FileExistsError):
    """The output path exists and the user did not ask to replace it."""


class MissingInputError(UserError, FileNotFoundError):
    """An input file or folder the user named is not there."""


class ForgetkitWarning(UserWarning):
    """Something the user should know that does not stop the work (an answer cut to
    ``max_length``, a skipped incomplete checkpoint); commands print it as one line."""


class DeprecatedOptionWarning(ForgetkitWarning):
    """An option was given under a name that will go away."""
