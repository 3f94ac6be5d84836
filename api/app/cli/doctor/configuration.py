"""The doctor's configuration checks: the verdicts of the validation ``load_settings`` runs.

Each problem of :func:`app.settings.loading.inspect_settings` is one check, with the
variable, where its value came from and the fix; a problem that is a secret not read is
left to the access checks, which find out why.
"""

from __future__ import annotations

from app.cli.doctor.base import DoctorBase

__all__ = ["ConfigurationChecks"]


class ConfigurationChecks(DoctorBase):
    """Every value against the environment's policy, as the API checks it at start."""

    def configuration(self) -> None:
        reported = 0
        for p in self.insp.problems:
            error = self.insp.errors.get(p.variable)
            if error is not None and p.message == error.message:
                continue  # diagnosed by the access checks, with what only the doctor can find out
            reported += 1
            self.add(
                f"configuration: {p.variable}",
                "fail" if p.severity == "error" else "warn",
                f"{p.message} (from {p.source})",
                p.fix,
            )
        if not reported:
            self.add("configuration", "ok", f"every value as {self.m.name}'s policy requires")
