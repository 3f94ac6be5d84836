"""What a new password must be: long enough and hard enough to guess (zxcvbn).

One function, :func:`password_problem`, used by the API (``POST /v1/users``) and by
``ecomind users create-admin``. It returns why a password is refused, in words a
person can act on, or ``None``; it never includes the password itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from zxcvbn import zxcvbn  # type: ignore[import-untyped]

from app.data.text import text_problem
from app.settings.knobs import Tuning

__all__ = ["password_problem"]

# zxcvbn's own bound: its matching is super-linear, so it rates the first 72
# characters. A longer password is rated by its start, which keeps "a" * 1000 weak.
ZXCVBN_MAX_LENGTH = 72
_SCORES = ("too guessable", "very guessable", "somewhat guessable", "safely unguessable", "very unguessable")


def password_problem(password: str, user_inputs: Iterable[str] = (), tuning: Tuning | None = None) -> str | None:
    """Why ``password`` is refused, or ``None`` when it is acceptable.

    ``user_inputs`` (email, organisation name) count as guessable words.
    """
    policy = tuning or Tuning.from_env()
    invalid = text_problem(password)
    if invalid:
        return f"the password {invalid}"
    if len(password) < policy.password_min_length:
        return f"the password must have at least {policy.password_min_length} characters"
    words = [part for value in user_inputs for part in value.lower().replace("@", " ").replace(".", " ").split()]
    rating = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=words, max_length=ZXCVBN_MAX_LENGTH)
    score = int(rating["score"])
    if score >= policy.password_min_score:
        return None
    feedback = rating["feedback"]
    reasons = [feedback.get("warning") or "", *feedback.get("suggestions", [])]
    why = " ".join(r.strip() for r in reasons if r and r.strip())
    message = (
        f"the password is too easy to guess (strength {score} of 4, {_SCORES[score]}; "
        f"at least {policy.password_min_score} is required)"
    )
    return f"{message}: {why}" if why else message
