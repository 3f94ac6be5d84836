"""What detect-secrets flags in this repository and is no secret, each kind with its reason.

The commit-time scan (.pre-commit-config.yaml) runs `detect-secrets-hook --baseline
.secrets.baseline`; the baseline names `is_known_false_positive` among its filters, so the hook,
`detect-secrets scan --baseline .secrets.baseline` (a refresh) and `detect-secrets audit` all
apply these rules, and the baseline's results stay empty: it holds no finding, real or not.
Each rule is as narrow as the findings it answers (the audit of issue 14); no detector is
switched off for the whole repository.

For a made-up value in new code, prefer marking its line, where a reader sees it:
`... # pragma: allowlist secret`.
"""

# No `from __future__ import annotations`: detect-secrets loads this file as a module it does not
# register in sys.modules, where dataclasses cannot resolve string annotations.
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from detect_secrets.filters.heuristic import is_indirect_reference

__all__ = ["RULES", "Rule", "is_known_false_positive"]


@dataclass(frozen=True)
class Rule:
    why: str
    secret: str = ""  # regex searched in the flagged value
    line: str = ""  # regex searched in the line it stands on
    files: str = ""  # regex searched in the path, relative to the repository's root
    detectors: frozenset[str] = frozenset()  # detect-secrets plugin class names; empty: any
    heuristic: Callable[[str], bool] | None = None  # a detect-secrets heuristic of the line

    def matches(self, filename: str, secret: str, detector: str, line: str) -> bool:
        return (
            (not self.detectors or detector in self.detectors)
            and re.search(self.files, filename.replace("\\", "/")) is not None
            and re.search(self.secret, secret) is not None
            and re.search(self.line, line) is not None
            and (self.heuristic is None or self.heuristic(line))
        )


RULES: tuple[Rule, ...] = (
    Rule(
        "A secret reference (api/app/secrets/refs.py's grammar) names where a secret lives and holds "
        "none: JWT_SECRET=aws-secretsmanager:ecomind/staging/jwt, arn:aws:secretsmanager:..., file:PATH.",
        secret=r"^(aws-secretsmanager:|arn:aws:secretsmanager:|file:)",
    ),
    Rule(
        "Placeholders: USER:PASSWORD and MASTER_USER:MASTER_PASSWORD in docs, fixes and docstrings, "
        ".env.example's REPLACE_WITH_GENERATED_*, "
        "and the example values the policy refuses outside development (environment.py).",
        secret=r"^((?i:password)|MASTER_PASSWORD|REPLACE_WITH_GENERATED_[A-Z]+|ecomind_dev_pass"
        r"|local_dev_secret_change_in_production|changeme)$",
    ),
    Rule(
        "Readiness words, not values: /ready's secrets check says ok or stale (api/app/api/routes/health.py, "
        "docs/operations.md), and ECOMIND_READY_ON_STALE is report or fail (api/app/settings/knobs.py).",
        secret=r"^(ok|stale|report|fail)$",
        line=r"(?i)secret",
    ),
    Rule(
        "An indirect reference names a value and holds none: `password = get_password()`, "
        "`secret: request.headers['key']` (detect-secrets' is_indirect_reference), for the keyword scan "
        "only. The baseline does not list that heuristic as its own filter: there it drops the whole "
        "line before any detector reads it, and a database URL whose password holds ( and ) went through.",
        detectors=frozenset({"KeywordDetector"}),
        heuristic=is_indirect_reference,
    ),
    Rule(
        "Names, not values: the short names of the environment's two secrets (environment.py's "
        "secret_key=) and the keys the ExternalSecret writes them to (k8s secretKey: database.json).",
        secret=r"^(database|jwt)(\.json)?$",
        line=r"(?i)\bsecret_?key\b\s*[=:]",
    ),
    Rule(
        "Names, not values: the rotation protocol's steps (createSecret, setSecret, testSecret, "
        "finishSecret; api/app/rotation/protocol.py) mapped to the methods that run them.",
        secret=r"^(create|set|test|finish)$",
        line=r'"(create|set|test|finish)Secret":',
    ),
    Rule(
        "Prose: a CloudFormation template's Description ('EcoMind ${ENVIRONMENT} secrets: the "
        "database and JWT secrets (generated, ...'), which the keyword scan reads as `secrets: VALUE`.",
        files=r"^deploy/cloudformation/[^/]+\.ya?ml$",
        detectors=frozenset({"KeywordDetector"}),
        secret=r"^\S+(\s+\S+){4,}$",
    ),
    Rule(
        "Tests and benchmarks log in to the services they start themselves on loopback (a PostgreSQL "
        "initdb'd for the run, Redis, moto's Secrets Manager with its dummy keys) with made-up "
        "passwords, URLs and DSNs: the keyword and database-credential detectors (scripts/secret_detectors.py's "
        "among them) are off under api/tests/ and "
        "bench/ only. Every other detector (AWS keys, private keys, tokens, entropy) still runs there.",
        files=r"^(api/tests|bench)/",
        detectors=frozenset(
            {"KeywordDetector", "BasicAuthDetector", "DatabaseUrlDetector", "KeywordDsnDetector", "PgpassLineDetector"}
        ),
    ),
    Rule(
        "The tests' canary (api/tests/conftest.py CANARY): a made-up value they put through error "
        "paths to prove that no secret reaches a log or an output.",
        files=r"^api/tests/",
        secret=r"^canary-",
    ),
)


def is_known_false_positive(filename: str, secret: str, plugin: Any, line: str) -> bool:
    """detect-secrets' custom filter: True drops the finding (called with these argument names)."""
    detector = type(plugin).__name__
    return any(rule.matches(filename, secret, detector, line) for rule in RULES)
