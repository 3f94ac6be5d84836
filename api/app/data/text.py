"""Text PostgreSQL can store: no NUL character, no lone surrogate.

PostgreSQL's ``text`` cannot hold U+0000, and a lone surrogate (``"\\ud800"``, which
JSON allows) cannot be encoded as UTF-8. Both are refused at the edge with 422,
before they reach a query or a hash.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

__all__ = ["SafeText", "text_problem"]


def text_problem(value: str) -> str | None:
    if "\x00" in value:
        return "must not contain the NUL character (U+0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (it contains a lone surrogate)"
    return None


def _check(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


class _PublishedRule:
    """The NUL rule in the OpenAPI document (a lone surrogate is no valid JSON text to generate)."""

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["pattern"] = NO_NUL
        return schema


# ECMA-262 and Python read it alike: any text without U+0000.
NO_NUL = "^[^\\u0000]*$"
SafeText = Annotated[str, AfterValidator(_check), _PublishedRule()]
