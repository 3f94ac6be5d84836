"""An email address has one form everywhere: the API's models, the CLI and the login limits' keys."""

from __future__ import annotations

from pydantic import BaseModel

from app.auth.emails import Email, normalized_email
from app.auth.limits import Keys


class _Body(BaseModel):
    email: Email


def test_an_address_in_any_case_is_one_address_to_the_models_the_cli_and_the_limits() -> None:
    spellings = ("Owner@Acme.io", "OWNER@ACME.IO", " owner@acme.io ")
    forms = {normalized_email(s) for s in spellings} | {_Body(email=s.strip()).email for s in spellings}
    assert forms == {"owner@acme.io"}
    assert {Keys.of("10.0.0.1", form).failures for form in forms} == {Keys.of("10.0.0.1", "owner@acme.io").failures}
