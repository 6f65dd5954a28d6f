"""Readable validation problems: every failing field named, with the fix.

Pydantic's own errors name a location and a terse message. rhizome turns them
into `FieldProblem`s ("field.path: problem; fix") that both the store codec and
the spec parser show to operators. Validators that check several fields
together report through `raise_problems`, so that each broken rule names its
own field instead of the enclosing model.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from pydantic import ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

RULES_ERROR_TYPE = "rhizome_rules"
TOP_LEVEL = "(top level)"


@dataclass(frozen=True)
class FieldProblem:
    """One problem of one field; `path` is relative to the validated model."""

    path: str
    problem: str
    fix: str

    def render(self) -> str:
        """The operator-facing line: "field.path: problem; fix"."""
        return f"{self.path or TOP_LEVEL}: {self.problem}; {self.fix}"


def problems_error(problems: Sequence[FieldProblem]) -> PydanticCustomError:
    """One pydantic error carrying `problems`; the formatter expands it again."""
    return PydanticCustomError(
        RULES_ERROR_TYPE,
        "\n".join(problem.render() for problem in problems),
        {"problems": tuple(problems)},
    )


def raise_problems(problems: Sequence[FieldProblem]) -> None:
    """Raise the problems as one pydantic error when there are any."""
    if problems:
        raise problems_error(problems)


def field_error(problem: str, fix: str) -> NoReturn:
    """Reject the value under validation (for use in field validators)."""
    raise problems_error([FieldProblem("", problem, fix)])


def join_path(*parts: str | int) -> str:
    """Join location parts as "a.b[2].c"; pydantic's dict-key marker is dropped."""
    text = ""
    for part in parts:
        if part == "[key]" or part == "":
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text = f"{text}.{part}" if text else str(part)
    return text


def describe_validation_error(error: ValidationError) -> list[FieldProblem]:
    """Every problem of a pydantic ValidationError, in order, with absolute paths."""
    problems: list[FieldProblem] = []
    for details in error.errors():
        problems.extend(_problems_of(details))
    return problems


def render_problems(problems: Iterable[FieldProblem]) -> list[str]:
    """The "field.path: problem; fix" lines of `problems`."""
    return [problem.render() for problem in problems]


def _problems_of(details: ErrorDetails) -> list[FieldProblem]:
    location = details["loc"]
    if details["type"] == RULES_ERROR_TYPE:
        context = details.get("ctx") or {}
        nested: tuple[FieldProblem, ...] = context.get("problems", ())
        return [
            FieldProblem(join_path(*location, problem.path), problem.problem, problem.fix)
            for problem in nested
        ]
    return [FieldProblem(join_path(*location), _problem_of(details), _fix_for(details["type"]))]


def _problem_of(details: ErrorDetails) -> str:
    """Pydantic's message, reworded for the common cases and lowercased."""
    if details["type"] == "missing":
        return "is required"
    if details["type"] == "extra_forbidden":
        return "is not a known field"
    message = details["msg"].removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def _fix_for(error_type: str) -> str:
    """A generic fix for pydantic's built-in error types."""
    if error_type == "missing":
        return "add it"
    if error_type == "extra_forbidden":
        return "remove it or correct its spelling"
    if error_type in ("literal_error", "enum"):
        return "use one of those values"
    if error_type.endswith(("_type", "_parsing")):
        return "give a value of that type"
    return "correct the value"
