"""Tasks (任务体系, SPEC §4.4): what a shopper does to earn a reward, and each reward paid.

A task belongs to a merchant (paid in its brand points from its issuance) or to the alliance
(``merchant`` empty; paid in SHARED from the alliance's task budget account). Limits per
shopper per day and per lifetime and the total budget hold under concurrency: completions of
one (task, shopper) queue on their ``TaskProgress`` row, the budget is claimed by one
conditional UPDATE of the task, and ``(task, user, day, seq)`` is unique besides.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["Task", "TaskCompletion", "TaskProgress"]


class Task(models.Model):
    class Kind(models.TextChoices):
        CHECK_IN = "check_in", _("Daily check-in")
        BROWSE = "browse", _("Browse a page")
        VIEW_PRODUCT = "view_product", _("View a product")
        ADD_TO_CART = "add_to_cart", _("Add to cart")
        FIRST_PURCHASE = "first_purchase", _("First purchase")
        PURCHASE = "purchase", _("Purchase")
        REVIEW = "review", _("Write a review")
        SHARE = "share", _("Share")

    # Completed by the purchases a merchant records, never from the storefront.
    BY_PURCHASE = frozenset({Kind.FIRST_PURCHASE, Kind.PURCHASE})

    class Audience(models.TextChoices):
        ALL = "all", _("All shoppers")
        NEW = "new", _("New shoppers")

    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.CASCADE, null=True, blank=True,
        related_name="tasks", verbose_name=_("merchant"),
        help_text=_("Empty for an alliance task, paid in SHARED from the alliance's budget."),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    name_zh = models.CharField(_("name (Chinese)"), max_length=80)
    name_en = models.CharField(_("name (English)"), max_length=80)
    target = models.CharField(
        _("target"), max_length=300, blank=True,
        help_text=_("The page to browse, the product to view or what to share."),
    )
    browse_seconds = models.PositiveIntegerField(
        _("seconds to browse"), default=0,
        help_text=_("Browse tasks: how long the shopper must stay, measured on the server."),
    )
    min_amount = models.DecimalField(
        _("smallest purchase (CNY)"), max_digits=12, decimal_places=2, null=True, blank=True,
        help_text=_("Purchase tasks: purchases below this amount do not count."),
    )
    reward = models.PositiveBigIntegerField(
        _("reward"), help_text=_("In minor units of the asset paid: points, or SHARED fen."),
    )
    daily_limit = models.PositiveIntegerField(
        _("limit per shopper per day"), null=True, blank=True, default=1,
        help_text=_("Empty for no daily limit."),
    )
    lifetime_limit = models.PositiveIntegerField(
        _("limit per shopper"), null=True, blank=True, help_text=_("Empty for no limit."),
    )
    budget = models.PositiveIntegerField(
        _("budget (rewards)"), null=True, blank=True,
        help_text=_("How many rewards this task may pay in all; empty for no budget."),
    )
    budget_used = models.PositiveIntegerField(_("rewards paid"), default=0)
    starts_at = models.DateTimeField(_("starts"), null=True, blank=True)
    ends_at = models.DateTimeField(_("ends"), null=True, blank=True)
    audience = models.CharField(
        _("audience"), max_length=10, choices=Audience.choices, default=Audience.ALL
    )
    audience_days = models.PositiveIntegerField(
        _("new shoppers: joined within (days)"), default=30,
    )
    active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ["merchant_id", "kind", "pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(reward__gt=0), name="task_reward_positive"),
            models.CheckConstraint(condition=models.Q(budget__isnull=True)
                                   | models.Q(budget_used__lte=models.F("budget")),
                                   name="task_budget_not_exceeded"),
            models.CheckConstraint(condition=models.Q(starts_at__isnull=True)
                                   | models.Q(ends_at__isnull=True)
                                   | models.Q(ends_at__gt=models.F("starts_at")),
                                   name="task_schedule_ordered"),
        ]
        indexes = [models.Index(fields=["active", "kind"], name="task_active_kind")]

    def __str__(self) -> str:
        return self.name_en or self.name_zh

    @property
    def by_purchase(self) -> bool:
        return self.kind in self.BY_PURCHASE

    @property
    def target_url(self) -> str:
        """``target`` when it is a web address a page may link to, else empty."""
        return self.target if self.target.startswith(("https://", "http://", "/")) else ""


class TaskProgress(models.Model):
    """One shopper's standing on one task. Its row is the lock that completions of the pair
    queue on, so two parallel completions see each other's result."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="progress")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="task_progress"
    )
    completions = models.PositiveIntegerField(_("completions"), default=0)
    last_completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("task progress")
        verbose_name_plural = _("task progress")
        constraints = [
            models.UniqueConstraint(fields=["task", "user"], name="task_progress_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.task_id}/{self.user_id}: {self.completions}"


class TaskCompletion(models.Model):
    """A reward paid for a task: which day (alliance time) and which of that day's
    completions (``seq``), the ledger transaction that paid it, where it came from."""

    class Source(models.TextChoices):
        STOREFRONT = "storefront", _("Storefront")
        PURCHASE = "purchase", _("Purchase")

    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="completions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="task_completions"
    )
    day = models.DateField(_("day"))
    seq = models.PositiveIntegerField()
    source = models.CharField(max_length=12, choices=Source.choices)
    purchase = models.ForeignKey(
        "points.Purchase", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    idempotency_key = models.CharField(max_length=128)
    transaction = models.OneToOneField(
        "ledger.Transaction", on_delete=models.PROTECT, related_name="task_completion"
    )
    reward = models.PositiveBigIntegerField(_("reward"))
    ip = models.GenericIPAddressField(null=True, blank=True)
    device = models.CharField(max_length=64, blank=True)
    proof = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("task completion")
        verbose_name_plural = _("task completions")
        constraints = [
            # The last word on limits: whatever a bug upstream lets through, one day's n-th
            # completion of a task by a shopper exists once.
            models.UniqueConstraint(fields=["task", "user", "day", "seq"],
                                    name="task_completion_once_per_seq"),
            models.UniqueConstraint(fields=["task", "user", "idempotency_key"],
                                    name="task_completion_idempotency"),
        ]
        indexes = [models.Index(fields=["user", "created_at"], name="task_completion_user")]

    def __str__(self) -> str:
        return f"{self.task_id} by {self.user_id} on {self.day} #{self.seq}"
