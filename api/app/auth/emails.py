"""The one rule for an email address, for the API's models and ``ecomind users create-admin``.

pydantic's ``EmailStr`` (email-validator underneath) refuses special-use and reserved
domains such as ``.test`` and ``.local``: an address the API would refuse at login
must not be accepted by the CLI either. An address is folded to lower case here, once:
the API's models (:data:`Email`), the CLI (:func:`normalized_email`) and the login limits'
keys all see the same form.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, EmailStr, TypeAdapter, ValidationError

__all__ = ["Email", "email_problem", "normalized_email"]


def _folded(address: str) -> str:
    return address.lower()


# pydantic's normalised form (an IDN domain in Unicode, "Name <x@y>" reduced to x@y), lower-cased.
Email = Annotated[EmailStr, AfterValidator(_folded)]
_ADAPTER: TypeAdapter[str] = TypeAdapter(Email)


def email_problem(text: str) -> str | None:
    """Why ``text`` is not an address the API accepts, or None."""
    try:
        _ADAPTER.validate_python(text.strip())
    except ValidationError as exc:
        return str(exc.errors()[0]["msg"])
    return None


def normalized_email(text: str) -> str:
    """The address as the API stores and counts it (:data:`Email`). Raises ValueError when invalid."""
    try:
        return str(_ADAPTER.validate_python(text.strip()))
    except ValidationError as exc:
        raise ValueError(str(exc.errors()[0]["msg"])) from None
