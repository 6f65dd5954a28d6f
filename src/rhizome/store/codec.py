"""JSON encoding of the typed documents stored under /rhizome/<cluster>/.

Every document carries a `format_version` integer. An agent reads documents of
its own version and older ones (each document type upgrades older data one
version at a time in `upgrade_data`), and refuses newer ones with a message
telling the operator to upgrade the agent.
"""

import json
from typing import Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rhizome.store.errors import StoreDocumentError
from rhizome.store.validation import TOP_LEVEL, describe_validation_error, field_error

CURRENT_FORMAT_VERSION = 1


class StoreModel(BaseModel):
    """Base of every stored model: immutable, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    def with_changes(self, **changes: Any) -> Self:
        """A validated copy with `changes` applied (the original is unchanged)."""
        data = {name: getattr(self, name) for name in type(self).model_fields}
        data.update(changes)
        return type(self).model_validate(data)


AGENT_WRITTEN = ConfigDict(extra="ignore")
"""The config of models only agents write (their documents and the state): a field
that a newer agent added is ignored, so that agents of two versions can work side by
side during a rolling upgrade. What operators write (spec, commands) still refuses
unknown fields: there they are typos."""


class StoreDocument(StoreModel):
    """A top-level document, stored as the value of one key."""

    CURRENT_FORMAT_VERSION: ClassVar[int] = CURRENT_FORMAT_VERSION

    format_version: int = Field(default=CURRENT_FORMAT_VERSION, strict=True)
    """Version of this document's format; a subclass raising it sets a new default."""

    @field_validator("format_version")
    @classmethod
    def _check_format_version(cls, version: int) -> int:
        if version != cls.CURRENT_FORMAT_VERSION:
            field_error(
                f"format_version {version} is not the current {cls.CURRENT_FORMAT_VERSION}",
                "decode stored data with decode_document, which upgrades older formats",
            )
        return version

    @classmethod
    def upgrade_data(cls, data: dict[str, Any], from_version: int) -> dict[str, Any]:
        """Turn data of `from_version` into data of `from_version + 1`.

        Version 1 is the first format, so there is nothing to upgrade yet; a
        document type that introduces version 2 overrides this method.
        """
        raise NotImplementedError(f"{cls.__name__} has no format older than version 1")


DocumentType = TypeVar("DocumentType", bound=StoreDocument)


def encode_document(document: StoreDocument) -> bytes:
    """Compact JSON with sorted keys, UTF-8 encoded."""
    data = document.model_dump(mode="json")
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def decode_document(key: str, raw: bytes, document_type: type[DocumentType]) -> DocumentType:
    """Parse, upgrade and validate the value of `key` as a `document_type`.

    Raises StoreDocumentError naming the key, the problem and the fix.
    """
    data = _parse_object(key, raw)
    version = _format_version(key, data, document_type)
    while version < document_type.CURRENT_FORMAT_VERSION:
        data = document_type.upgrade_data(data, version)
        version += 1
        data["format_version"] = version
    try:
        return document_type.model_validate(data)
    except ValidationError as error:
        raise StoreDocumentError(key, _validation_problem(document_type, error)) from None


def _parse_object(key: str, raw: bytes) -> dict[str, Any]:
    """The JSON object stored in `raw`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise StoreDocumentError(
            key,
            f"the value is not UTF-8 text ({error.reason} at byte {error.start}): "
            "it was not written by rhizome; remove or move the key",
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise StoreDocumentError(
            key,
            f"the value is not valid JSON ({error.msg} at line {error.lineno} column "
            f"{error.colno}): it was truncated or not written by rhizome; remove or move the key",
        ) from None
    if not isinstance(data, dict):
        raise StoreDocumentError(
            key,
            f"the value is a JSON {_json_type_name(data)}, not an object: it was not "
            "written by rhizome; remove or move the key",
        )
    return data


def _format_version(key: str, data: dict[str, Any], document_type: type[StoreDocument]) -> int:
    """The document's format_version, checked against what this agent reads."""
    if "format_version" not in data:
        raise StoreDocumentError(
            key,
            "not a rhizome document (it has no format_version field): written by another "
            "program? remove or move the key",
        )
    version = data["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise StoreDocumentError(
            key,
            f"format_version must be a positive integer, not {version!r}: the document is "
            "corrupt; remove or move the key",
        )
    newest = document_type.CURRENT_FORMAT_VERSION
    if version > newest:
        raise StoreDocumentError(
            key,
            f"written by a newer rhizome (format_version {version}, this agent reads up to "
            f"{newest}); upgrade this agent",
        )
    return version


def _validation_problem(document_type: type[StoreDocument], error: ValidationError) -> str:
    """Every failing field of the document, in one message."""
    problems = describe_validation_error(error)
    fields = "; ".join(
        f"field '{problem.path or TOP_LEVEL}': {problem.problem}" for problem in problems
    )
    return (
        f"it is not a valid {document_type.__name__} document ({fields}); it was edited by "
        "hand or written by an incompatible program: correct those fields or remove the key"
    )


def _json_type_name(value: object) -> str:
    """The JSON name of a decoded value's type."""
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
