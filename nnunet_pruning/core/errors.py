"""The one exception type users see: a one-line message that says what was wrong and what to do."""

__all__ = ["PruningError"]


class PruningError(ValueError):
    """A misuse of the package. The message is one line: what is wrong, then what to do.

    It subclasses ``ValueError`` so callers that already guard against bad values catch it too.
    """

    def __init__(self, message: str):
        if "\n" in message:
            raise AssertionError("PruningError messages must be one line")
        super().__init__(message)
