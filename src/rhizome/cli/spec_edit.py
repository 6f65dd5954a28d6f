"""Pure spec editing: spec files, patches and diffs (no store access).

Every change to the spec is a JSON merge patch (RFC 7386) of the stored
spec's JSON form, validated afterwards by `parse_spec`: an object merges into
the object it replaces, any other value replaces, and null removes the field
(so it takes its default again). `spec patch` assignments are a shorthand::

    timing.failover_delay=2               {"timing": {"failover_delay": 2}}
    keepers.pg1.priority=5                {"keepers": {"pg1": {"priority": 5}}}
    pg_parameters.work_mem=64MB           {"pg_parameters": {"work_mem": "64MB"}}
    'pg_parameters."pg_stat_statements.max"=5000'   (quote a key with dots)
    initial_master=null                   removes initial_master (its default: none)

A value is read as JSON when it is valid JSON (numbers, true, false, null,
"quoted strings", arrays, objects), otherwise as a plain string.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from rhizome.cli.errors import UsageError
from rhizome.spec import ClusterSpec, parse_spec

SPEC_FILE_FORMATS = {".json": "JSON", ".toml": "TOML"}
STANDARD_INPUT = "-"


def load_spec_file(path: str, standard_input: TextIO | None = None) -> dict[str, Any]:
    """The object in a JSON or TOML spec file (chosen by extension; "-" reads JSON on stdin)."""
    if path == STANDARD_INPUT and standard_input is not None:
        return parse_spec_text(standard_input.read(), "JSON", "standard input")
    file_format = SPEC_FILE_FORMATS.get(Path(path).suffix.lower())
    if file_format is None:
        raise UsageError(
            f"cannot tell the format of {path}: name it *.json or *.toml (or give - for JSON "
            "on standard input)"
        )
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
        raise UsageError(f"cannot read the spec file {path}: {reason}") from error
    return parse_spec_text(text, file_format, path)


def parse_spec_text(text: str, file_format: str, source: str) -> dict[str, Any]:
    """The object in a JSON or TOML text."""
    try:
        data = tomllib.loads(text) if file_format == "TOML" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"{source} is not valid {file_format}: {error}") from error
    if not isinstance(data, dict):
        raise UsageError(f"{source} must hold a {file_format} object with the spec's fields")
    return data


def split_assignment(text: str) -> tuple[list[str], str]:
    """The path segments and the value text of `path.to.field=value`."""
    segments: list[str] = []
    current = ""
    quoted = False
    for index, character in enumerate(text):
        if quoted:
            quoted = character != '"'
            current += character if quoted else ""
        elif character == '"':
            quoted = True
        elif character in ".=":
            segments.append(current)
            current = ""
            if character == "=":
                check_segments(text, segments)
                return segments, text[index + 1 :]
        else:
            current += character
    problem = "has an unclosed quote" if quoted else "has no '='"
    raise UsageError(f"the assignment {text!r} {problem}; write FIELD.PATH=VALUE")


def check_segments(text: str, segments: Sequence[str]) -> None:
    if any(segment == "" for segment in segments):
        raise UsageError(
            f"the assignment {text!r} has an empty field name; write FIELD.PATH=VALUE, "
            "e.g. timing.failover_delay=2"
        )


def parse_value(text: str) -> Any:
    """JSON when the text is valid JSON, otherwise the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def assignments_patch(assignments: Sequence[str]) -> dict[str, Any]:
    """The merge patch that `path=value` assignments stand for."""
    patch: dict[str, Any] = {}
    for assignment in assignments:
        segments, value_text = split_assignment(assignment)
        parent = patch
        for depth, segment in enumerate(segments[:-1]):
            child = parent.setdefault(segment, {})
            if not isinstance(child, dict):
                prefix = ".".join(segments[: depth + 1])
                raise UsageError(f"{assignment!r} sets a field inside {prefix}, assigned before")
            parent = child
        if segments[-1] in parent:
            raise UsageError(f"{assignment!r} assigns {'.'.join(segments)} a second time")
        parent[segments[-1]] = parse_value(value_text)
    return patch


def parse_merge_patch(text: str) -> dict[str, Any]:
    """The JSON object given to `--merge`."""
    try:
        patch = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"--merge needs a JSON object: {error}") from error
    if not isinstance(patch, dict):
        raise UsageError('--merge needs a JSON object, e.g. {"timing": {"failover_delay": 2}}')
    return patch


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: the target with the patch applied (neither argument is changed)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def patched_spec(spec: ClusterSpec, *patches: dict[str, Any]) -> ClusterSpec:
    """The spec with `patches` applied in order, validated (SpecError lists every problem)."""
    data: Any = spec.model_dump(mode="json")
    for patch in patches:
        data = merge_patch(data, patch)
    return parse_spec(data)


def spec_text(spec: ClusterSpec) -> str:
    """The spec as indented JSON with sorted keys, defaults included."""
    return json.dumps(spec.model_dump(mode="json"), indent=2, sort_keys=True)


def spec_diff(old: ClusterSpec, new: ClusterSpec, old_label: str, new_label: str) -> str:
    """A unified diff of the two specs' JSON forms; empty when they are equal."""
    if old == new:
        return ""
    lines = difflib.unified_diff(
        spec_text(old).splitlines(),
        spec_text(new).splitlines(),
        fromfile=old_label,
        tofile=new_label,
        lineterm="",
    )
    return "\n".join(lines)
