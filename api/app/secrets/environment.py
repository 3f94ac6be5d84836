"""The model of an environment: every name, period and rule EcoMind derives from one.

Where does a name come from? From here. Given an environment (``development``,
``staging`` or ``production``) and, optionally, a ``SECRETS_PREFIX``, this module
says:

* the variables the app reads, which of them hold secrets, and the secret each one
  defaults to outside development (``DATABASE_URL`` -> ``{prefix}/database``);
* each secret's name, shape and JSON keys, how its value is generated, and the
  rotation function (handler and name) that rotates it;
* the rotation period, how long Secrets Manager gives a rotation (its window), the
  IAM role names, the ECS cluster, task families and log groups, the Kubernetes
  namespace, the CloudFormation stack;
* the policy: whether ``.env`` is read, how example values are judged, the JWT
  minimum, the SSL modes, the password alphabet.

Settings, ``ecomind doctor``, ``secrets provision``, ``secrets rotate``, the rotation
handlers, ``deploy/render.py`` (so every rendered task definition, IAM policy,
Kubernetes manifest and CloudFormation template) and the command blocks of
docs/deployment.md (through ``deploy/render.py ENV --shell``) all read it;
``tests/deploy/test_one_truth.py`` changes a fact here and checks that they follow.

Resource names use the environment's short name, picked once here: ``dev``,
``staging``, ``prod``. ``ENVIRONMENT`` itself keeps the long form.

One job, over 400 lines on purpose: it is the one place each of these facts lives; split by
subject, the facts that derive from one another (a secret's name from the prefix, a role's
from the short name) would be read across modules and could drift.

Standard library only, and no import of the rest of the package: ``deploy/render.py``
loads this file where only Python and the AWS CLI are installed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "API_SECRET_ACTIONS",
    "DATABASE_DEFAULTS",
    "DEFAULT_CACHE_TTL",
    "DEPLOYED",
    "ENVIRONMENTS",
    "EXAMPLE_MARKERS",
    "EXAMPLE_VALUES",
    "JWT_MIN_BYTES",
    "LOCAL_GENERATION",
    "POSTGRES_PORT",
    "PROJECT",
    "RDS_KEYS",
    "RDS_OPTIONAL_KEYS",
    "SECRETS",
    "SECRET_VARIABLES",
    "SSL_MODES",
    "VARIABLES",
    "VARIABLE_NAMES",
    "Environment",
    "EnvironmentModel",
    "Generation",
    "SecretSpec",
    "arn_in_region",
    "arn_is_complete",
    "arn_pattern",
    "arn_region",
    "model",
    "rotation_window",
    "secret_arn",
    "variable",
]

Environment = Literal["development", "staging", "production"]
ENVIRONMENTS: tuple[Environment, ...] = ("development", "staging", "production")
DEPLOYED: tuple[Environment, ...] = ("staging", "production")

PROJECT = "ecomind"
_SHORT: dict[Environment, str] = {"development": "dev", "staging": "staging", "production": "prod"}
_ROTATION_DAYS: dict[Environment, int] = {"staging": 90, "production": 30}
# Secrets Manager's rotation window when RotationRules has no Duration: it closes an hour
# after it opens for a schedule in hours, at the end of the UTC day for a schedule in days
# (rate(N days), a cron firing once a day, AutomaticallyAfterDays), so it lasts at most 24
# hours. Secrets Manager User Guide, "Rotation schedules" (rotate-secrets_schedule.html);
# API reference, RotationRulesType.Duration.
_DEFAULT_WINDOW_HOURS: dict[str, int] = {"hours": 1, "days": 24}


# What the API role may do on each of its secrets, in every region of them
# (deploy/iam/api-task-role.policy.json): read the value at any stage, and read the rotation
# state the doctor checks (DescribeSecret, ListSecretVersionIds). The doctor prints it for a
# secret the role may not read.
API_SECRET_ACTIONS: tuple[str, ...] = (
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
    "secretsmanager:ListSecretVersionIds",
)


# -- variables: the public contract ------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    name: str
    secret: bool  # holds a secret value or a reference to one: masked, scrubbed, never printed
    default: str | None = None  # shown by `config show` when unset
    secret_key: str | None = None  # outside development, unset means the secret of this key
    required: Literal["yes", "no", "production"] = "no"


VARIABLES: tuple[Variable, ...] = (
    Variable("ENVIRONMENT", False, "development"),
    Variable("DATABASE_URL", True, secret_key="database", required="yes"),
    Variable("REDIS_URL", True),
    Variable("JWT_SECRET", True, secret_key="jwt", required="yes"),
    Variable("AWS_REGION", False, required="production"),
    Variable("SECRETS_PREFIX", False),
    Variable("SECRETS_REPLICA_REGIONS", False),
    Variable("SECRETS_CACHE_TTL", False, "300"),
    Variable("ACCESS_TOKEN_EXPIRE_MINUTES", False, "60"),
)
VARIABLE_NAMES: tuple[str, ...] = tuple(v.name for v in VARIABLES)
SECRET_VARIABLES: tuple[str, ...] = tuple(v.name for v in VARIABLES if v.secret)


def variable(name: str) -> Variable:
    for v in VARIABLES:
        if v.name == name:
            return v
    raise KeyError(name)


# Seconds a resolved secret is served before it is fetched again, unless SECRETS_CACHE_TTL says
# otherwise: the store, the settings, the stale threshold (app.settings.knobs) and the alarms
# (deploy/render.py) read it here.
DEFAULT_CACHE_TTL: float = float(variable("SECRETS_CACHE_TTL").default or 0)


# -- secrets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Generation:
    """How Secrets Manager generates a value (GetRandomPassword / GenerateSecretString)."""

    length: int
    exclude_characters: str = ""
    exclude_punctuation: bool = False

    def get_random_password_args(self) -> dict[str, object]:
        args: dict[str, object] = {"PasswordLength": self.length}
        if self.exclude_characters:
            args["ExcludeCharacters"] = self.exclude_characters
        if self.exclude_punctuation:
            args["ExcludePunctuation"] = True
        return args


# Characters that break URLs, libpq conninfo strings or shell quoting.
_PASSWORD = Generation(32, exclude_characters=":/@\"'\\")
_SIGNING_KEY = Generation(64, exclude_punctuation=True)  # about 380 bits

# The fields AWS's RDS rotation writes; rotation changes `password` only.
RDS_KEYS: tuple[str, ...] = ("engine", "host", "port", "dbname", "username", "password")
# Keys the RDS shape may add: masterarn, the master user's secret, for alternating-users rotation.
RDS_OPTIONAL_KEYS: tuple[str, ...] = ("masterarn",)
# PostgreSQL's port where a URL or a database secret gives none (libpq's default).
POSTGRES_PORT = 5432
# What a new database secret holds when provision or CloudFormation is not told otherwise.
DATABASE_DEFAULTS: dict[str, str | int] = {
    "engine": "postgres",
    "port": POSTGRES_PORT,
    "dbname": PROJECT,
    "username": f"{PROJECT}_app",
}


@dataclass(frozen=True)
class SecretSpec:
    key: str  # how code and templates name it: database, jwt (DATABASE_SECRET_NAME...)
    name: str  # the last part of its name in Secrets Manager: {prefix}/{name}
    variable: str  # the variable that reads it
    shape: Literal["rds", "string"]
    description: str  # "{environment}" is filled in
    generation: Generation
    rotation_handler: str  # Lambda handler, in build/rotation-lambda.zip
    rotation_function: str  # function name suffix: ecomind-{short}-{rotation_function}
    json_keys: tuple[str, ...] = ()


SECRETS: tuple[SecretSpec, ...] = (
    SecretSpec(
        "database",
        "database",
        "DATABASE_URL",
        "rds",
        "EcoMind {environment} database credentials (RDS rotation shape)",
        _PASSWORD,
        "app.rotation.postgres.handler",
        "rotate-postgres",
        RDS_KEYS,
    ),
    SecretSpec(
        "jwt",
        "jwt",
        "JWT_SECRET",
        "string",
        "EcoMind {environment} JWT signing secret",
        _SIGNING_KEY,
        "app.rotation.jwt.handler",
        "rotate-jwt",
    ),
)


def secret_spec(key_or_variable: str) -> SecretSpec:
    """The secret named by its key (``database``) or by its variable (``DATABASE_URL``)."""
    for spec in SECRETS:
        if key_or_variable in (spec.key, spec.variable):
            return spec
    raise KeyError(key_or_variable)


def rotation_window(rules: Mapping[str, object]) -> tuple[int, str]:
    """Hours a rotation may take under ``rules`` (DescribeSecret's RotationRules), and where that comes from.

    ``Duration`` ("3h") when set; otherwise Secrets Manager's default for the schedule:
    one hour for a schedule in hours (``rate(4 hours)``, a cron whose hours field is not a
    single hour), a UTC day for a schedule in days, ``AutomaticallyAfterDays`` or none.
    """
    duration = re.fullmatch(r"(\d+)h", str(rules.get("Duration") or ""))
    if duration and int(duration.group(1)) > 0:
        return int(duration.group(1)), f"Duration {duration.group(0)}"
    expression = str(rules.get("ScheduleExpression") or "").strip()
    rate = re.fullmatch(r"rate\(\s*\d+\s+(hour|hours|day|days)\s*\)", expression)
    cron = re.fullmatch(r"cron\((.*)\)", expression)
    hourly = (rate is not None and rate.group(1).startswith("hour")) or (
        cron is not None and len(cron.group(1).split()) == 6 and not cron.group(1).split()[1].isdigit()
    )
    unit = "hours" if hourly else "days"
    return _DEFAULT_WINDOW_HOURS[unit], f"Secrets Manager's default for a schedule in {unit}"


# IAM roles, by job: ECS pulls images and injects secrets (execution), the API task,
# the migration task, and the rotation functions.
ROLES: tuple[str, ...] = ("execution", "api", "migration", "rotation")
# The secrets a role reads, where it reads fewer than all of the environment's: the migration
# task reads the database secret only (deploy/iam/migration-task-role.policy.json).
ROLE_READS: dict[str, tuple[str, ...]] = {"migration": ("database",)}
# ECR repositories (one per image; the tag is the environment's short name).
REPOSITORIES: tuple[str, ...] = (f"{PROJECT}-api", f"{PROJECT}-migration")
TASKS: tuple[str, ...] = ("api", "migration")


# -- policy --------------------------------------------------------------------------------

JWT_MIN_BYTES = 32
# Values from the original note, .env.example and common tutorials. Compared
# case-insensitively, as the whole value or a URL's password.
EXAMPLE_VALUES: frozenset[str] = frozenset(
    v.lower()
    for v in (
        "local_dev_secret_change_in_production",
        "ecomind_dev_pass",
        "REPLACE_WITH_GENERATED_PASSWORD",
        "<generated-by-secrets-manager>",
        "REPLACE_WITH_GENERATED_SECRET",
        "changeme",
        "change-me",
        "change_me",
        "password",
        "secret",
        "postgres",
        "your-secret-key",
        "supersecret",
    )
)
# Fragments that give an example away inside a longer value.
EXAMPLE_MARKERS: tuple[str, ...] = ("replace_with_", "change_in_production", "<generated", "changeme")
# libpq's sslmode values: those production accepts, and the weak ones staging tolerates.
SSL_MODES: dict[str, tuple[str, ...]] = {
    "strong": ("require", "verify-ca", "verify-full"),
    "weak": ("disable", "allow", "prefer"),
}
# `ecomind init` (development only, no AWS): token_urlsafe(n) bytes, URL-safe output.
LOCAL_GENERATION: dict[str, int] = {"REPLACE_WITH_GENERATED_PASSWORD": 24, "REPLACE_WITH_GENERATED_SECRET": 48}


@dataclass(frozen=True)
class EnvironmentModel:
    """One environment's names and rules. Build it with :func:`model`."""

    name: Environment
    prefix: str

    # -- policy ----------------------------------------------------------------------
    @property
    def deployed(self) -> bool:
        return self.name != "development"

    @property
    def reads_dotenv(self) -> bool:
        return not self.deployed

    @property
    def example_severity(self) -> Literal["warning", "error"]:
        return "error" if self.deployed else "warning"

    @property
    def jwt_min_bytes(self) -> int | None:
        return JWT_MIN_BYTES if self.deployed else None

    @property
    def ssl_default(self) -> str | None:
        """The sslmode added to a database URL that has none (None: left as given)."""
        return "require" if self.deployed else None

    @property
    def ssl_accepted(self) -> tuple[str, ...]:
        if self.name == "production":
            return SSL_MODES["strong"]
        return SSL_MODES["strong"] + SSL_MODES["weak"]

    @property
    def region_required(self) -> bool:
        return self.name == "production"

    @property
    def rotation_days(self) -> int | None:
        return _ROTATION_DAYS.get(self.name)

    # -- secrets ---------------------------------------------------------------------
    @property
    def short(self) -> str:
        return _SHORT[self.name]

    @property
    def secrets(self) -> tuple[SecretSpec, ...]:
        return SECRETS

    def secret(self, key_or_variable: str) -> SecretSpec:
        return secret_spec(key_or_variable)

    def secret_name(self, key_or_variable: str) -> str:
        return f"{self.prefix.rstrip('/')}/{self.secret(key_or_variable).name}"

    def default_reference(self, variable_name: str) -> str | None:
        """What an unset variable means here (None: it has no default)."""
        spec = next((v for v in VARIABLES if v.name == variable_name), None)
        if spec is None or spec.secret_key is None or not self.deployed:
            return None
        return "aws-secretsmanager:" + self.secret_name(spec.secret_key)

    def tags(self, key: str, owner: str | None = None) -> dict[str, str]:
        """The tags a secret of this environment carries: the environment and which of the
        model's secrets it is (its kind: what a value must be follows them, whatever the
        secret's name or SECRETS_PREFIX), and its owner."""
        return {"environment": self.name, "kind": self.secret(key).key, "owner": owner or f"{PROJECT}-platform"}

    def description(self, key: str) -> str:
        return self.secret(key).description.format(environment=self.name)

    def secret_arn_pattern(self, region: str, account: str, key: str) -> str:
        """The ARN of a secret as IAM matches it: Secrets Manager appends -XXXXXX."""
        return arn_pattern(secret_arn(region, account, self.secret_name(key)))

    # -- resources -------------------------------------------------------------------
    @property
    def resource_prefix(self) -> str:
        return f"{PROJECT}-{self.short}"

    def role_name(self, role: str) -> str:
        if role not in ROLES:
            raise KeyError(role)
        return f"{self.resource_prefix}-{role}"

    def role_of(self, name: str) -> str | None:
        """Which of the environment's roles ``name`` is (an IAM role's name), if one is."""
        return next((role for role in ROLES if self.role_name(role) == name), None)

    def reads(self, role: str) -> tuple[str, ...]:
        """The keys of the secrets ``role`` reads."""
        return ROLE_READS.get(role, tuple(spec.key for spec in self.secrets))

    def function_name(self, key: str) -> str:
        return f"{self.resource_prefix}-{self.secret(key).rotation_function}"

    def function_arn(self, region: str, account: str, key: str) -> str:
        return f"arn:aws:lambda:{region}:{account}:function:{self.function_name(key)}"

    def family(self, task: str) -> str:
        return f"{self.resource_prefix}-{task}"

    def log_group(self, task: str) -> str:
        return f"/ecs/{self.family(task)}"

    def parameters(self) -> dict[str, str]:
        """Every derived name, as deploy/render.py fills ${NAME} and docs' commands use it."""
        params = {
            "ENVIRONMENT": self.name,
            "ENV_SHORT": self.short,
            "SECRETS_PREFIX": self.prefix,
            "ROTATION_DAYS": str(self.rotation_days or ""),
            "CLUSTER": self.resource_prefix,
            "SERVICE": f"{PROJECT}-api",
            "NAMESPACE": self.resource_prefix,
            "SECRETS_STACK": f"{self.resource_prefix}-secrets",
            "AUDIT_TRAIL": f"{self.resource_prefix}-secrets-audit",
            # The alerts of the secret layer (deploy/cloudformation/alarms.yaml): their stack,
            # the SNS topic they go to, every alarm's name prefix, the rotation-failure rule.
            "ALARMS_STACK": f"{self.resource_prefix}-alarms",
            "ALERTS_TOPIC": f"{self.resource_prefix}-alerts",
            "ALARM_PREFIX": f"{self.resource_prefix}-alarm",
            "ROTATION_FAILURES_RULE": f"{self.resource_prefix}-rotation-failures",
            "KMS_ALIAS": f"alias/{self.resource_prefix}-secrets",
            # The customer key carries this tag = the environment; IAM policies grant
            # kms:Decrypt on keys so tagged, so they can exist before the key does.
            "KMS_KEY_TAG": f"{PROJECT}-secrets",
            "API_SECRET_ACTIONS": json.dumps(list(API_SECRET_ACTIONS)),
            "OWNER": self.tags(SECRETS[0].key)["owner"],
            "PROJECT": PROJECT,
            "K8S_DATABASE_SECRET": f"{PROJECT}-database",
            # Cluster-scoped: one per environment, so two environments can share a cluster.
            "K8S_SECRET_STORE": f"{self.resource_prefix}-secrets-manager",
            "EXTERNAL_SECRETS_ROLE": f"{self.resource_prefix}-external-secrets",
            "JWT_MIN_BYTES": str(JWT_MIN_BYTES),
        }
        for role in ROLES:
            params[f"{role.upper()}_ROLE"] = self.role_name(role)
        for task in TASKS:
            params[f"{task.upper()}_FAMILY"] = self.family(task)
            params[f"{task.upper()}_LOG_GROUP"] = self.log_group(task)
        for repo in REPOSITORIES:
            params[repo.removeprefix(f"{PROJECT}-").upper() + "_REPOSITORY"] = repo
        for spec in SECRETS:
            up = spec.key.upper()
            params[f"{up}_SECRET_NAME"] = self.secret_name(spec.key)
            params[f"{up}_SECRET_KIND"] = self.tags(spec.key)["kind"]
            params[f"{up}_ROTATION_FUNCTION"] = self.function_name(spec.key)
            params[f"{up}_ROTATION_HANDLER"] = spec.rotation_handler
            params[f"{up}_SECRET_LENGTH"] = str(spec.generation.length)
            params[f"{up}_DESCRIPTION"] = self.description(spec.key)
        params["DATABASE_PASSWORD_EXCLUDE"] = self.secret("database").generation.exclude_characters
        params["DATABASE_NAME"] = str(DATABASE_DEFAULTS["dbname"])
        params["DATABASE_USER"] = str(DATABASE_DEFAULTS["username"])
        return params

    def account_parameters(
        self, region: str, account: str, image_tag: str | None = None, replicas: Sequence[str] = ()
    ) -> dict[str, str]:
        """The ARNs and image URIs of this environment in one AWS account, its region and replica regions."""
        registry = f"{account}.dkr.ecr.{region}.amazonaws.com"
        tag = image_tag or self.short
        regions = [region, *[r for r in dict.fromkeys(replicas) if r != region]]
        params = {
            "ECR_REGISTRY": registry,
            "IMAGE_TAG": tag,
            "SECRETS_REPLICA_REGIONS": ",".join(regions[1:]),
            # Reading a secret may happen in any of its regions (failover); writing (rotation)
            # happens in the primary only, and Secrets Manager replicates.
            "SECRETS_VIA_SERVICES": json.dumps([f"secretsmanager.{r}.amazonaws.com" for r in regions]),
            # The keys that decrypt them there: the multi-Region key and its replicas, by the
            # regions of the secrets (the policies narrow them to the environment's tag).
            "SECRETS_KMS_RESOURCES": json.dumps([f"arn:aws:kms:{r}:{account}:key/*" for r in regions]),
            # CloudFormation's ReplicaRegions: each replica encrypted by the replica, in its
            # region, of the stack's multi-Region key (same key id; deploy/cloudformation/kms-replica.yaml).
            "REPLICA_REGIONS_CFN": json.dumps(
                [
                    {
                        "Region": r,
                        "KmsKeyId": {
                            "Fn::Sub": f"arn:${{AWS::Partition}}:kms:{r}:${{AWS::AccountId}}:key/${{SecretsKey}}"
                        },
                    }
                    for r in regions[1:]
                ]
            ),
        }
        read_any = {spec.key: [self.secret_arn_pattern(r, account, spec.key) for r in regions] for spec in SECRETS}
        for spec in SECRETS:
            params[f"{spec.key.upper()}_SECRET_ARNS"] = json.dumps(read_any[spec.key])
        params["ALL_SECRET_ARNS"] = json.dumps([arn for arns in read_any.values() for arn in arns])
        for role in ROLES:
            params[f"{role.upper()}_ROLE_ARN"] = f"arn:aws:iam::{account}:role/{self.role_name(role)}"
        for spec in SECRETS:
            params[f"{spec.key.upper()}_ROTATION_FUNCTION_ARN"] = self.function_arn(region, account, spec.key)
        for repo in REPOSITORIES:
            params[repo.removeprefix(f"{PROJECT}-").upper() + "_IMAGE"] = f"{registry}/{repo}:{tag}"
        return params


# -- ARNs: each built here, once --------------------------------------------------------

# Secrets Manager appends "-" and six random characters to a secret's name in its ARN.
_ARN_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")


def secret_arn(region: str, account: str, name: str) -> str:
    """The ARN of the secret ``name`` without the suffix Secrets Manager appends (a partial ARN)."""
    return f"arn:aws:secretsmanager:{region}:{account}:secret:{name}"


def arn_pattern(arn: str) -> str:
    """A partial secret ARN as IAM matches the secret: any suffix of Secrets Manager's six characters."""
    return f"{arn}-??????"


def arn_is_complete(arn: str) -> bool:
    """Whether a secret ARN ends with Secrets Manager's suffix (copied from the console) or not."""
    return _ARN_SUFFIX.search(arn) is not None


def arn_region(arn: str) -> str:
    """The region an ARN names (a secret's, a KMS key's)."""
    return arn.split(":")[3]


def arn_in_region(arn: str, region: str) -> str:
    """The same ARN in ``region``: a replica's secret, or a multi-Region key's replica, differs by it only."""
    parts = arn.split(":")
    parts[3] = region
    return ":".join(parts)


def default_prefix(environment: Environment) -> str:
    return f"{PROJECT}/{_SHORT[environment]}"


# What Secrets Manager allows in a name, less the trailing slash.
_PREFIX = re.compile(r"^[A-Za-z0-9_+=.@-]+(/[A-Za-z0-9_+=.@-]+)*$")


def model(environment: str, prefix: str | None = None) -> EnvironmentModel:
    """The model of ``environment``; ``prefix`` is SECRETS_PREFIX when set. Raises ValueError."""
    if environment not in ENVIRONMENTS:
        raise ValueError(f"'{environment[:40]}' is not an environment (use one of: {', '.join(ENVIRONMENTS)})")
    env: Environment = environment  # checked just above
    chosen = (prefix or "").strip().rstrip("/") or default_prefix(env)
    if not _PREFIX.match(chosen) or len(chosen) > 400:
        raise ValueError(
            f"SECRETS_PREFIX '{chosen[:60]}' is not a secret name prefix: letters, digits and _+=.@- "
            "separated by /, e.g. team-a/staging"
        )
    return EnvironmentModel(env, chosen)
