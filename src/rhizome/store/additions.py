"""Fields added to a stored model after agents of an older version were released.

Every stored model refuses unknown fields (codec.StoreModel), so an older
agent cannot read a document that carries a field it does not know. A model
listing such fields in OPTIONAL_ADDITIONS leaves each of them out of its
encoding while it holds its default: a document that does not use the new
feature is byte for byte what an older agent wrote and reads.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import SerializerFunctionWrapHandler, model_serializer

from rhizome.store.codec import StoreModel


class WithOptionalAdditions(StoreModel):
    """A stored model whose later additions are encoded only when used."""

    OPTIONAL_ADDITIONS: ClassVar[frozenset[str]] = frozenset()
    """Names of the fields added later, each with a default meaning "not used"."""

    @model_serializer(mode="wrap")
    def _leave_out_unused_additions(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if not isinstance(data, dict):
            return data
        fields = type(self).model_fields
        for name in self.OPTIONAL_ADDITIONS:
            if name in data and getattr(self, name) == fields[name].get_default(
                call_default_factory=True
            ):
                del data[name]
        return data
