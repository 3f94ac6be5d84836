"""The commit-time guard (.pre-commit-config.yaml, `make hooks`), as `git commit` runs it.

A scratch repository gets our hook configuration, the scanner's baseline and its filters, the
hooks are installed in its .git/hooks as `make hooks` does, and `git commit` runs for real:
a staged .env, .envrc or .pgpass, an AWS access key and a database password (in a URL whatever
its characters, in its query, in a libpq keyword DSN or a password file's line) are each refused
with their reason; a clean commit, placeholders of passwords
included, goes through. The hooks use the tools of this venv (no environment is
built: nothing is fetched), so the whole module takes a few seconds.

The values below are made here at random: this file holds none, so the scanner has nothing to say
about it either.
"""

import json
import os
import re
import secrets
import shutil
import string
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)
CONFIG = REPO / ".pre-commit-config.yaml"
BASELINE = REPO / ".secrets.baseline"
FILTERS = "scripts/secret_filters.py"
DETECTORS = "scripts/secret_detectors.py"
# What the hooks read in a repository: their configuration, the baseline, its detectors and filters,
# ruff's settings.
HOOK_FILES = (".pre-commit-config.yaml", ".secrets.baseline", DETECTORS, FILTERS, "api/pyproject.toml", ".gitignore")
SECRET_FILES_HOOK = "no .env, .envrc, .pgpass, key or secrets/ file"
SECRET_FILES_REASON = "refused: a .env, .envrc or .pgpass file, a private key or a file under secrets/ is staged"
SCAN_HOOK = "detect-secrets (no new secret)"


def aws_access_key_id() -> str:
    return "AKIA" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16))


def password(punctuation: str = "") -> str:
    """A random password; ``punctuation`` goes in it at random places, as a generated one has it."""
    characters = list("Pw" + secrets.token_hex(10))
    for character in punctuation:
        characters.insert(1 + secrets.randbelow(len(characters)), character)
    return "".join(characters)


def database_url(scheme: str = "postgresql", punctuation: str = "", host: str = "db.internal") -> str:
    """A URL with a random password."""
    return f"{scheme}://ecomind_app:{password(punctuation)}@{host}:5432/ecomind"


def url_line(scheme: str, punctuation: str) -> Callable[[], str]:
    return lambda: f"DATABASE_URL={database_url(scheme, punctuation, 'db.prod.internal')}\n"


@dataclass
class Scratch:
    root: Path
    env: dict[str, str]

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["git", *args], cwd=self.root, env=self.env, capture_output=True, text=True, check=False, timeout=120
        )
        if check and result.returncode != 0:
            pytest.fail(f"git {' '.join(args)}: {result.stdout}{result.stderr}")
        return result

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def stage(self, path: str, text: str) -> None:
        file = self.root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
        self.git("add", "--force", path)  # --force: .gitignore alone already keeps a .env out

    def commit(self, message: str) -> subprocess.CompletedProcess[str]:
        return self.git("commit", "--quiet", "-m", message, check=False)

    def drop(self, path: str) -> None:
        self.git("rm", "--quiet", "--cached", "--force", path)
        (self.root / path).unlink()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scratch]:
    home = tmp_path_factory.mktemp("hooks")
    root = home / "repo"
    for name in HOOK_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, root / name)
    # The hooks run the project's tools from .venv, as in a checkout after `make setup`.
    (root / ".venv").symlink_to(VENV, target_is_directory=True)
    gitconfig = home / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Hook Test\n\temail = hooks@ecomind.test\n[init]\n\tdefaultBranch = main\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT")) and k != "SKIP"}
    env |= {
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": str(gitconfig),
        "GIT_CONFIG_NOSYSTEM": "1",
        "PRE_COMMIT_HOME": str(home / "pre-commit-cache"),
    }
    repo = Scratch(root, env)
    repo.git("init", "--quiet")
    (root / ".git" / "info" / "exclude").write_text(".venv\n")
    # What `make hooks` runs.
    installed = subprocess.run(
        [str(VENV / "bin" / "pre-commit"), "install"], cwd=root, env=env, capture_output=True, text=True, check=False
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (root / ".git" / "hooks" / "pre-commit").exists()
    repo.git("add", *HOOK_FILES)
    first = repo.commit("the hooks' own files")
    assert first.returncode == 0, first.stdout + first.stderr
    yield repo


@pytest.mark.parametrize(
    ("path", "content", "hook", "reason"),
    [
        pytest.param(
            ".env",
            lambda: f"DATABASE_URL={database_url()}\nJWT_SECRET={secrets.token_urlsafe(48)}\n",
            SECRET_FILES_HOOK,
            SECRET_FILES_REASON,
            id="dotenv",
        ),
        pytest.param(
            ".envrc",  # direnv's: exported into the shell of whoever enters the directory
            lambda: f"export DATABASE_URL='{database_url()}'\n",
            SECRET_FILES_HOOK,
            SECRET_FILES_REASON,
            id="envrc",
        ),
        pytest.param(
            ".pgpass",  # libpq's password file: HOST:PORT:DB:USER:PASSWORD lines
            lambda: f"db.prod.internal:5432:ecomind:ecomind_app:{password()}\n",
            SECRET_FILES_HOOK,
            SECRET_FILES_REASON,
            id="pgpass",
        ),
        pytest.param(
            "deploy/pgpass.conf",  # its name on Windows
            lambda: f"*:5432:*:ecomind_app:{password()}\n",
            SECRET_FILES_HOOK,
            SECRET_FILES_REASON,
            id="pgpass-conf",
        ),
        pytest.param(
            # Under api/tests/, where the keyword and URL detectors are off (scripts/secret_filters.py):
            # an AWS key is still found there.
            "api/tests/test_fixture.py",
            lambda: f'AWS_ACCESS_KEY_ID = "{aws_access_key_id()}"\n',
            "detect-secrets (no new secret)",
            "Secret Type: AWS Access Key",
            id="aws-key",
        ),
        pytest.param(
            "deploy/app.yaml",
            lambda: f"environment:\n  DATABASE_URL: {database_url()}\n",
            "detect-secrets (no new secret)",
            "Secret Type: Basic Auth Credentials",
            id="database-url",
        ),
        # detect-secrets' own URL detector takes no password with a delimiter of RFC 3986 in it,
        # and its indirect-reference heuristic skipped every line with `x(y)` in it:
        # scripts/secret_detectors.py finds them, whatever the password holds.
        *(
            pytest.param(
                "notes/a.txt",
                url_line(scheme, punctuation),
                "detect-secrets (no new secret)",
                "Secret Type: Database URL Password",
                id=f"{scheme}-{name}",
            )
            for scheme, punctuation, name in (
                ("postgresql", "!", "bang"),
                ("postgres", "+$;", "plus-dollar-semicolon"),
                ("postgresql+psycopg", "()*=", "parentheses-star-equals"),
                ("postgresql", "!#%^&~,'", "more-punctuation"),
                ("redis", "!", "bang"),
                ("rediss", "+;", "plus-semicolon"),
                ("mysql", "!", "bang"),
            )
        ),
        # libpq reads a password from three more places: a URL's query, a keyword DSN, a
        # password file's lines (whatever file they are pasted into).
        pytest.param(
            "notes/query.txt",
            lambda: (
                "DATABASE_URL=postgresql://ecomind_app@db.prod.internal:5432/ecomind"
                f"?sslmode=require&password={password('!+;')}\n"
            ),
            SCAN_HOOK,
            "Secret Type: Database URL Password",
            id="password-in-the-query",
        ),
        pytest.param(
            "deploy/connect.sh",
            lambda: (
                f'psql "host=db.prod.internal port=5432 user=ecomind_app password={password("!")} dbname=ecomind"\n'
            ),
            SCAN_HOOK,
            "Secret Type: PostgreSQL Keyword DSN Password",
            id="keyword-dsn",
        ),
        pytest.param(
            "notes/dsn.txt",
            lambda: f"PGCONN=host=db.prod.internal user=ecomind_app password='{password('!; ')}' dbname=ecomind\n",
            SCAN_HOOK,
            "Secret Type: PostgreSQL Keyword DSN Password",
            id="keyword-dsn-quoted",
        ),
        pytest.param(
            "docs/setup.md",
            lambda: f"    db.prod.internal:5432:ecomind:ecomind_app:{password('!')}\n",
            SCAN_HOOK,
            "Secret Type: PostgreSQL Password File Entry",
            id="pgpass-line",
        ),
        pytest.param(
            "deploy/cache.yaml",
            lambda: "REDIS_URL: " + database_url("redis", "!").replace("ecomind_app:", ":") + "\n",
            "detect-secrets (no new secret)",
            "Secret Type: Database URL Password",
            id="redis-without-user",
        ),
        pytest.param(
            "api/app/unused.py",
            lambda: "import os\n",
            "ruff check",
            "F401",
            id="ruff",
        ),
    ],
)
def test_a_commit_that_stages_a_secret_is_refused_with_its_reason(
    scratch: Scratch, path: str, content: Callable[[], str], hook: str, reason: str
) -> None:
    before = scratch.head()
    scratch.stage(path, content())
    try:
        result = scratch.commit(f"add {path}")
        output = result.stdout + result.stderr
        assert result.returncode != 0, f"the commit of {path} went through:\n{output}"
        failed = [line for line in output.splitlines() if line.endswith("Failed")]
        assert any(line.startswith(hook) for line in failed), output
        assert reason in output, output
        assert scratch.head() == before
    finally:
        scratch.drop(path)


def test_a_clean_commit_goes_through(scratch: Scratch) -> None:
    before = scratch.head()
    # A reference names a secret and holds none; .env.example holds placeholders only.
    shutil.copy2(REPO / ".env.example", scratch.root / ".env.example")
    scratch.git("add", ".env.example")
    scratch.stage("api/app/greeting.py", 'def greeting(name: str) -> str:\n    return f"hello {name}"\n')
    scratch.stage("docs/notes.md", "Set `JWT_SECRET=aws-secretsmanager:ecomind/staging/jwt` in staging.\n")
    # Placeholders, as the docs and compose write them (scripts/secret_filters.py's placeholder rule,
    # detect-secrets' templated values): no password.
    scratch.stage(
        "docs/urls.md",
        "postgresql://USER:PASSWORD@HOST:5432/DB\n"
        "DATABASE_URL=postgresql://ecomind:PASSWORD@localhost:5432/ecomind\n"
        "DATABASE_URL: postgresql://ecomind:${POSTGRES_PASSWORD}@postgres:5432/ecomind\n"
        "ECOMIND_MASTER_URL=postgresql://MASTER_USER:MASTER_PASSWORD@db:5432/postgres\n"
        "REDIS_URL=redis://:{password}@cache:6379/0\n"
        # The same placeholders where libpq also reads a password: a URL's query, a keyword DSN,
        # a password file's line; and what only looks like one.
        "postgresql://ecomind@localhost:5432/ecomind?sslmode=require&password=PASSWORD\n"
        "DATABASE_URL=postgresql://ecomind@postgres:5432/ecomind?password=${POSTGRES_PASSWORD}\n"
        'psql "host=localhost port=5432 user=ecomind password=REPLACE_WITH_GENERATED_PASSWORD dbname=ecomind"\n'
        "host=postgres user=ecomind password=${POSTGRES_PASSWORD} dbname=ecomind\n"
        "*:5432:ecomind:ecomind:REPLACE_WITH_GENERATED_PASSWORD\n"
        "localhost:5432:*:MASTER_USER:MASTER_PASSWORD\n"
        "psycopg.connect(host=host, port=port, user=user, password=password)\n"
        "At 10:20:30:40:50 the hosts fe80:0:0:0:1:2:3:4 and 2001:db8::1 answered.\n",
    )
    result = scratch.commit("a greeting, where the JWT secret lives, and URLs with placeholders")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert scratch.head() != before
    assert "Failed" not in output
    committed = scratch.git("show", "--name-only", "--format=", "HEAD").stdout.split()
    assert sorted(committed) == [".env.example", "api/app/greeting.py", "docs/notes.md", "docs/urls.md"]


@pytest.mark.slow
def test_the_repository_passes_its_own_scan(tmp_path: Path) -> None:
    """Every file of the repository, through the hook's scan: the baseline is the whole allowance."""
    baseline = json.loads(BASELINE.read_text())
    assert baseline["results"] == {}, "the baseline holds findings: exclude them by rule, with a reason"
    assert {"path": f"file://{FILTERS}::is_known_false_positive"} in baseline["filters_used"]
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    files = [name for name in files if (REPO / name).is_file()]
    assert len(files) > 100
    copy = tmp_path / "baseline.json"  # the hook rewrites a baseline it finds stale: never the real one
    shutil.copy2(BASELINE, copy)
    result = subprocess.run(
        [str(VENV / "bin" / "detect-secrets-hook"), "--baseline", str(copy), *files],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert copy.read_text() == BASELINE.read_text(), (
        "the hook rewrote the baseline (a new detect-secrets?): refresh it with"
        " .venv/bin/detect-secrets scan --baseline .secrets.baseline"
    )


def test_no_file_of_the_repository_is_one_the_guard_refuses() -> None:
    hooks = {hook["id"]: hook for repo in yaml.safe_load(CONFIG.read_text())["repos"] for hook in repo["hooks"]}
    guard = hooks["no-secret-files"]
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    refused = [f for f in files if re.search(guard["files"], f) and not re.search(guard["exclude"], f)]
    assert refused == []
    # and it does refuse what it is there for, not the packages named secrets
    for path in (
        ".env",
        "api/.env.production",
        ".envrc",
        "api/.envrc",
        ".pgpass",
        "deploy/.pgpass",
        "config/pgpass.conf",
        "deploy/tls.key",
        "certs/server.pem",
        "secrets/db.json",
    ):
        assert re.search(guard["files"], path) and not re.search(guard["exclude"], path), path
    for path in (
        ".env.example",
        "api/app/secrets/store.py",
        "api/tests/secrets/test_store.py",
        "deploy/x.env",
        "docs/pgpass.md",
        "api/app/pgpass.py",
    ):
        assert not re.search(guard["files"], path) or re.search(guard["exclude"], path), path
