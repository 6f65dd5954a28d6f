"""Errors of the typed cluster store."""


class StoreError(Exception):
    """Base class of every error the cluster store raises."""


class StoreDocumentError(StoreError):
    """A document in the store is corrupt, foreign, or of an unknown format.

    The message always names the key, says what is wrong and what to do, so an
    operator can act on it without reading code.
    """

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"store document {key!r} is unusable: {problem}")
