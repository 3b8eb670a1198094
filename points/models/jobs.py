"""Scheduled jobs (SPEC §4.2, §4.6, §4.7): their runs, the daily airdrop's frozen snapshot,
and the notices shoppers are sent (points about to expire).

Written only by ``points.jobs`` (runs), ``points.airdrop`` (airdrops and their shares) and
``points.expiry`` (notices); value itself moves only through the ledger.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["Airdrop", "AirdropShare", "JobRun", "Notification"]


class JobRun(models.Model):
    """One run of a scheduled job for one period (a date, or a year for inflation).

    ``(job, period)`` is unique: a period that is done is never run again, a crashed run is
    resumed on the same row, and two workers started on one period share it (the one that
    holds the run's advisory lock does the work)."""

    class Job(models.TextChoices):
        AIRDROP = "airdrop", _("Daily airdrop")
        EXPIRY = "expiry", _("Point expiry")
        EXPIRY_REMINDER = "expiry_reminder", _("Expiry reminders")
        INFLATION = "inflation", _("Alliance point inflation")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    job = models.CharField(_("job"), max_length=20, choices=Job.choices)
    # "2026-11-22" for daily jobs, "2026" for yearly ones.
    period = models.CharField(_("period"), max_length=10)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.RUNNING
    )
    progress_done = models.BigIntegerField(_("done"), default=0)
    progress_total = models.BigIntegerField(_("to do"), default=0)
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("job run")
        verbose_name_plural = _("job runs")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["job", "period"], name="jobrun_once_per_period"),
            models.CheckConstraint(
                condition=models.Q(progress_done__gte=0) & models.Q(progress_total__gte=0),
                name="jobrun_progress_natural",
            ),
        ]
        indexes = [models.Index(fields=["status", "job"], name="jobrun_status")]

    def __str__(self) -> str:
        return f"{self.job} {self.period} ({self.status})"

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.progress_total:
            return 0
        return min(100, int(100 * self.progress_done / self.progress_total))


class Airdrop(models.Model):
    """One day's airdrop (每日空投): the parameters in force when its snapshot was frozen and
    the SHA-256 of that snapshot, which every chunk transaction records in its metadata.

    The snapshot lists every SV holder in account-id order as ``"<SV wallet public id>
    <SHARED wallet public id> <SV in minor units>\\n"``; the split is a pure function of it
    (``points.allocation``), so anyone holding the published snapshot can recompute it."""

    date = models.DateField(_("date"), unique=True)
    amount = models.BigIntegerField(_("SHARED minted (minor units)"))
    reference_price = models.DecimalField(_("reference price"), max_digits=14,
                                          decimal_places=4)
    # SV minor units removed per SHARED minor unit received: price × SV per CNY, scaled.
    sv_per_shared = models.DecimalField(_("SV per SHARED"), max_digits=24, decimal_places=10)
    holders = models.PositiveIntegerField(_("holders"), default=0)
    total_sv = models.BigIntegerField(_("total SV (minor units)"), default=0)
    snapshot_sha256 = models.CharField(_("snapshot SHA-256"), max_length=64, blank=True)
    chunk_size = models.PositiveIntegerField(_("holders per transaction"))
    chunks = models.PositiveIntegerField(_("transactions"), default=0)
    created_at = models.DateTimeField(_("frozen at"), auto_now_add=True)

    class Meta:
        verbose_name = _("airdrop")
        verbose_name_plural = _("airdrops")
        ordering = ["-date"]

    def __str__(self) -> str:
        return f"airdrop {self.date}"

    def chunk_key(self, chunk: int) -> str:
        return f"airdrop:{self.date.isoformat()}:{chunk}"


class AirdropShare(models.Model):
    """One line of an airdrop's frozen snapshot, with the holder's share of it.

    Written once, set-based, by the statement that freezes the snapshot, from the accounts
    that statement reads; the chunk transactions read it back. No column carries a
    foreign-key constraint: a per-row check would double the cost of freezing a
    million-holder snapshot (the airdrop's was a deferred check of each row at commit, 6 s
    at 1,000,000 holders). The rows are written only in the transaction that creates their
    airdrop, which is never deleted, and the ledger never deletes an account."""

    pk = models.CompositePrimaryKey("airdrop", "seq")
    # The primary key's index starts with this column; no second index.
    airdrop = models.ForeignKey(Airdrop, on_delete=models.PROTECT, related_name="shares",
                                db_constraint=False, db_index=False)
    # Position in the snapshot (account-id order); the tie-break of the largest remainder.
    seq = models.PositiveIntegerField()
    sv_account = models.ForeignKey("ledger.Account", on_delete=models.DO_NOTHING,
                                   db_constraint=False, db_index=False, related_name="+")
    # Empty only inside the freezing transaction, for a holder whose first SV arrived after
    # the wallets were opened; filled before it commits.
    shared_account = models.ForeignKey("ledger.Account", on_delete=models.DO_NOTHING,
                                       null=True, db_constraint=False, db_index=False,
                                       related_name="+")
    sv = models.BigIntegerField(_("SV (minor units)"))
    part = models.BigIntegerField(_("SHARED received (minor units)"))
    cut = models.BigIntegerField(_("SV removed (minor units)"))

    class Meta:
        verbose_name = _("airdrop share")
        verbose_name_plural = _("airdrop shares")

    def __str__(self) -> str:
        return f"{self.airdrop_id}/{self.seq}: {self.part}"


class Notification(models.Model):
    """A notice shown on a shopper's storefront (and, where it matters, mailed): points about
    to expire. ``key`` makes a reminder idempotent: one per user and key."""

    class Kind(models.TextChoices):
        POINTS_EXPIRING = "points_expiring", _("Points about to expire")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="notifications")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=100)
    text = models.TextField(_("text"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)
    emailed_at = models.DateTimeField(_("emailed"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="notification_once_per_key"),
        ]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_unread")]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user_id}"
