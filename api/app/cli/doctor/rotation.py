"""The doctor's rotation health checks: on, on schedule, none left unfinished, stages and replicas.

Everything here reads what DescribeSecret and ListSecretVersionIds say of a secret that was
read; when the primary region does not answer, each replica region is asked instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from app.cli.fixes import by_operator, by_rotation_role, secrets_command
from app.secrets.errors import EmulatorFailed, SecretDeleted, SecretNotFound
from app.secrets.refs import AwsRef

if TYPE_CHECKING:
    pass
from app.cli.doctor.base import ROTATION_CHECKS, DoctorBase, denied_by_policy, region_failed

__all__ = ["RotationChecks"]


def span(age: timedelta) -> str:
    """An age as an operator reads it: 2 days 3 h, 5 h 12 min, 40 s."""
    seconds = max(0, int(age.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} day{'s' if days > 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min" if minutes else f"{seconds} s"


class RotationChecks(DoctorBase):
    """Rotation, pending versions, stages, primary region and replicas of each secret read."""

    def rotation(self, variable: str, ref: AwsRef) -> None:
        import botocore.exceptions

        name, pending = f"{variable} rotation", f"{variable} pending version"
        home = ref.region or self.region
        got = self.insp.resolved.get(variable)
        if got is not None and got.region and home and got.region != home and home not in self.down:
            self.down[home] = f"its reads failed over to {got.region}"
        if home in self.down:
            self.primary_down(variable, ref, home)
            return
        try:
            meta = self.client("secretsmanager", ref.region).describe_secret(SecretId=ref.secret_id)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            from app.secrets.aws_errors import translate_error

            error = translate_error(exc, str(ref), self.endpoint or "")
            if isinstance(error, EmulatorFailed):  # no region is down: the emulator failed
                for check in ROTATION_CHECKS:
                    self.add(f"{variable} {check}", "not_checked", f"{error.message} (DescribeSecret)", error.fix)
                return
            if region_failed(exc):
                self.down[home] = f"DescribeSecret: {type(exc).__name__}"
                self.primary_down(variable, ref, home)
                return
            if denied_by_policy(exc):
                self.add(name, "not_checked", f"{ref}: secretsmanager:DescribeSecret denied to this role")
            else:
                self.add(name, "not_checked", f"{ref}: DescribeSecret failed ({type(exc).__name__})")
            # The rotation window and the stages are in what DescribeSecret returns: neither can be judged.
            self.add(pending, "not_checked", f"{ref}: DescribeSecret failed, see above")
            self.add(f"{variable} stages", "not_checked", f"{ref}: DescribeSecret failed, see above")
            return
        versions, unlisted = self.versions(ref)
        self.primary(variable, ref, meta)
        self.stages(variable, ref, meta, None if unlisted else versions)
        self.replication(variable, ref, meta)
        self.schedule(name, ref, meta, versions)
        self.pending(pending, variable, ref, meta, versions, unlisted)

    def primary(self, variable: str, ref: AwsRef, meta: dict[str, Any]) -> None:
        """Said only when the region read holds a replica: reads work there, writes do not."""
        primary, here = meta.get("PrimaryRegion"), ref.region or self.region
        if not primary or primary == here:
            return
        source = "its ARN" if ref.region else "AWS_REGION"
        self.add(
            f"{variable} primary region",
            "warn",
            f"{ref}: {here} (from {source}) holds a replica of the secret, whose primary region is {primary}: "
            f"reads are served here; writes (ecomind secrets set, rotate, provision) go to {primary} only",
            f"export AWS_REGION={primary}   # the primary region; list {here} in SECRETS_REPLICA_REGIONS, where "
            "reads fail over",
        )

    def stages(self, variable: str, ref: AwsRef, meta: dict[str, Any], versions: list[dict[str, Any]] | None) -> None:
        """Each of Secrets Manager's stages on one version at most (an emulator may break that).
        ``versions``: ListSecretVersionIds' answer (with dates), None when it may not be listed."""
        import botocore.exceptions

        name = f"{variable} stages"
        if not self.emulator:
            # Secrets Manager moves a stage, it never copies one: only an emulator leaves one on two versions.
            self.add(name, "ok", f"{ref}: each stage on one version")
            return
        from app.secrets.emulator import stage_repairs

        if versions is None:
            stages, created = dict(meta.get("VersionIdsToStages") or {}), {}
        else:
            stages = {v["VersionId"]: v.get("VersionStages", []) for v in versions}
            created = {v["VersionId"]: v.get("CreatedDate") for v in versions}
        try:
            problems = stage_repairs(self.client("secretsmanager", ref.region), ref.secret_id, stages, created)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            self.add(name, "not_checked", f"{ref}: {type(exc).__name__}")
            return
        if problems:
            said = "; ".join(p[0] for p in problems)
            fix = " && ".join(p[1] for p in problems) + "   # " + "; ".join(p[2] for p in problems)
            self.add(name, "fail", f"{ref}: impossible: {said}", fix)
            return
        self.add(name, "ok", f"{ref}: each stage on one version")

    def unread(self, variable: str, ref: AwsRef) -> None:
        """The secret could not be read (denied, deleted, missing...): its rotation checks did
        not run, and say so (never dropped, never passed)."""
        error = self.insp.errors.get(variable)
        why = "it is scheduled for deletion" if isinstance(error, SecretDeleted) else "it could not be read"
        for check in ROTATION_CHECKS:
            self.add(f"{variable} {check}", "not_checked", f"{ref}: {why} (see {variable} readable)")

    def primary_down(self, variable: str, ref: AwsRef, home: str | None) -> None:
        """The secret's primary region does not answer: what each replica region says instead.

        Rotation and replication status are kept by the primary only, so those checks are
        reported as not run; each region of SECRETS_REPLICA_REGIONS is asked whether it
        holds a replica (DescribeSecret there), which is what reads fail over to."""
        import botocore.exceptions

        from app.secrets.aws import in_region
        from app.secrets.aws_errors import translate_error

        why = f"{home} did not answer ({self.down[home]})"
        again = f"ecomind doctor   # again once {home} answers"
        for check in ROTATION_CHECKS:
            self.add(f"{variable} {check}", "not_checked", f"{ref}: {why}; kept by the primary region", again)
        wanted = self.replica_regions()
        if not wanted:
            detail = f"{ref}: {why}, and SECRETS_REPLICA_REGIONS lists no replica region to read instead"
            self.add(f"{variable} replicas", "fail", detail, again)
            return
        answers: dict[str, str] = {}
        for region in wanted:
            if region in self.down:
                answers[region] = f"did not answer ({self.down[region]})"
                continue
            secret_id = in_region(ref, region).secret_id  # a replica's ARN differs by its region
            try:
                self.client("secretsmanager", region).describe_secret(SecretId=secret_id)
                answers[region] = "holds a replica"
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                if region_failed(exc):
                    self.down[region] = f"DescribeSecret: {type(exc).__name__}"
                    answers[region] = f"did not answer ({type(exc).__name__})"
                elif denied_by_policy(exc):
                    answers[region] = "DescribeSecret denied to this role"
                elif type(translate_error(exc, secret_id, region)) is SecretNotFound:
                    answers[region] = "has no replica"
                else:
                    answers[region] = f"DescribeSecret failed ({type(exc).__name__})"
        served = [r for r, a in answers.items() if a == "holds a replica"]
        detail = f"{ref}: {why}; " + "; ".join(f"{r} {a}" for r, a in answers.items())
        if served:
            detail += f" (reads are served from {served[0]})"
        self.add(f"{variable} replicas", "warn" if served else "fail", detail, again)

    def schedule(self, name: str, ref: AwsRef, meta: dict[str, Any], versions: list[dict[str, Any]]) -> None:
        """Rotation on, at the environment's period, and not overdue."""
        days_policy = self.m.rotation_days or 0
        region = ref.region or self.region
        options, note = f"--environment {self.m.name} --enable-rotation", by_operator(self.m)
        if self.emulator:
            # An endpoint on this machine is an emulator, which runs no rotation function:
            # the fix says which driver it chose and why, never silently. (AWS_ENDPOINT_URL
            # is also how VPC or FIPS endpoints are set: those keep the functions.)
            options += " --rotation-driver local"
            note = "AWS_ENDPOINT_URL is on this machine: an emulator runs no functions; " + note
        enable = secrets_command(f"provision {options}", region, note=note)
        if not meta.get("RotationEnabled"):
            self.add(name, "fail", f"{ref}: rotation is off", enable)
            return
        from app.rotation.schedule import last_rotated, next_rotation
        from app.secrets.environment import rotation_window

        days = int(meta.get("RotationRules", {}).get("AutomaticallyAfterDays") or days_policy)
        last = last_rotated(meta, versions)
        due = next_rotation(meta, last, days_policy)
        if days > days_policy:
            self.add(
                name,
                "fail",
                f"{ref}: rotates every {days} days; {self.m.name} requires {days_policy}",
                enable,
            )
            return
        window, _ = rotation_window(meta.get("RotationRules", {}))
        if isinstance(last, datetime) and due is not None and self.as_of > due + timedelta(hours=window):
            age = (self.as_of - last).days
            self.add(
                name,
                "fail",
                f"{ref}: last rotated {age} days ago, schedule is {days} days (overdue)",
                secrets_command(f"rotate {ref.secret_id} --local", region, note=by_rotation_role(self.m))
                if self.emulator
                else secrets_command(f"rotate {ref.secret_id}", region, note=by_operator(self.m)),
            )
            return
        when = f", last {last:%Y-%m-%d}" if isinstance(last, datetime) else ""
        when += f", next {due:%Y-%m-%d}" if due is not None else ""
        self.add(name, "ok", f"{ref}: every {days} days{when}")

    def replication(self, variable: str, ref: AwsRef, meta: dict[str, Any]) -> None:
        """Each replica region the settings read from (SECRETS_REPLICA_REGIONS), and its state."""
        wanted = self.replica_regions()
        status = {r.get("Region"): r for r in meta.get("ReplicationStatus", [])}
        if not wanted and not status:
            return
        name = f"{variable} replicas"
        missing = [r for r in wanted if r not in status]
        if missing:
            self.add(
                name,
                "fail",
                f"{ref}: not replicated to {', '.join(missing)}, which SECRETS_REPLICA_REGIONS lists",
                secrets_command(
                    f"provision --environment {self.m.name} " + " ".join(f"--replica-region {r}" for r in missing),
                    ref.region or self.region,
                    note=by_operator(self.m),
                ),
            )
            return
        lagging = {r: s for r, s in status.items() if s.get("Status") != "InSync"}
        if lagging:
            region, state = next(iter(lagging.items()))
            self.add(
                name,
                "fail" if state.get("Status") == "Failed" else "warn",
                f"{ref}: the replica in {region} is {state.get('Status')}: {state.get('StatusMessage', '')}",
                secrets_command(f"describe {ref.secret_id}", ref.region or self.region)
                + "   # then, if it failed: aws secretsmanager remove-regions-from-replication "
                f"--secret-id {ref.secret_id} --remove-replica-regions {region}, and provision it again",
            )
            return
        shown = ", ".join(f"{r} (InSync)" for r in status)
        self.add(name, "ok", f"{ref}: replicated to {shown}")

    def versions(self, ref: AwsRef) -> tuple[list[dict[str, Any]], str | None]:
        """The secret's staged versions with their dates (ListSecretVersionIds), or why they could not be listed."""
        import botocore.exceptions

        from app.secrets.aws_errors import error_code

        try:
            answer = self.client("secretsmanager", ref.region).list_secret_version_ids(SecretId=ref.secret_id)
        except botocore.exceptions.ClientError as exc:
            if denied_by_policy(exc):
                return [], "secretsmanager:ListSecretVersionIds denied to this role"
            return [], f"ListSecretVersionIds failed ({error_code(exc) or 'ClientError'})"
        except botocore.exceptions.BotoCoreError as exc:
            return [], f"ListSecretVersionIds failed ({type(exc).__name__})"
        return list(answer.get("Versions", [])), None

    def pending(
        self,
        name: str,
        variable: str,
        ref: AwsRef,
        meta: dict[str, Any],
        versions: list[dict[str, Any]],
        unlisted: str | None,
    ) -> None:
        """A rotation left unfinished: a version AWSPENDING without AWSCURRENT, older than the rotation window.

        Secrets Manager refuses every later RotateSecret while it stays (and, in a single-user
        database rotation stopped after setSecret, only that version's password logs in), so
        the fix resumes it: the local driver reuses the pending version, or discards it when it
        no longer matches AWSCURRENT, and runs the remaining steps.
        """
        from app.rotation.protocol import pending_version
        from app.secrets.environment import rotation_window

        if unlisted is not None:
            self.add(name, "not_checked", f"{ref}: {unlisted}")
            return
        version = pending_version({v["VersionId"]: v.get("VersionStages", []) for v in versions})
        if version is None:
            self.add(name, "ok", f"{ref}: no version is AWSPENDING without AWSCURRENT (no rotation under way)")
            return
        created = next(v.get("CreatedDate") for v in versions if v["VersionId"] == version)
        if not isinstance(created, datetime):
            self.add(name, "not_checked", f"{ref}: version {version} is AWSPENDING; ListSecretVersionIds gave no date")
            return
        hours, why = rotation_window(meta.get("RotationRules", {}))
        age = self.as_of - created
        window = f"the rotation window ({hours} h, {why})"
        if age <= timedelta(hours=hours):
            self.add(name, "ok", f"{ref}: version {version} is AWSPENDING for {span(age)}, within {window}")
            return
        where = by_rotation_role(self.m) + (", where the database is reachable" if variable == "DATABASE_URL" else "")
        resume = secrets_command(
            f"rotate {ref.secret_id} --local", ref.region or self.region, note=f"resumes version {version}; {where}"
        )
        self.add(
            name,
            "fail",
            f"{ref}: version {version} has been AWSPENDING without AWSCURRENT for {span(age)}, longer than "
            f"{window}: a rotation stopped before finishSecret, and Secrets Manager starts no other until it ends",
            resume,
        )
