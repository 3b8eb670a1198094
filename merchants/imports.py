"""Bringing a merchant's existing members along (SPEC §4.9): CSV import and claims.

The file: a header row naming ``phone`` and/or ``email``, ``balance`` and optionally
``expiry`` (Chinese headers 手机/邮箱/余额/有效期 work too), then one member per row. Balances
are in the merchant's points (major units); an expiry is a date (``YYYY-MM-DD``), the last day
the points are valid.

1. ``member_import_check`` is the dry run: it reads the whole file and names every bad row
   (unparseable, negative or zero balance, a duplicate member, a bad phone or email, an
   unknown column, a past expiry) and writes nothing but the report. A file with any bad row
   is refused whole.
2. ``member_import_start`` queues the import of a checked file; a file already imported by
   the merchant is refused. ``member_import_run`` (a Celery task) posts one ledger transaction
   per batch of rows, from the merchant's issuance into its pending-claims account, each
   recording the file's SHA-256, and inserts that batch's claims with PostgreSQL ``COPY``.
   Each batch commits with its progress, so a crashed run resumes where it stopped.
3. ``claims_collect`` runs when a person signs up or signs in (``merchants.signals``): the
   claims for their verified phone number or email addresses move into their wallet.

The pending-claims account is the merchant's bounded ``claims`` account of its brand points.
Its lots carry a far-future expiry, because one account cannot keep each member's own expiry
apart; the claim's expiry is kept on the claim and given to the points when they are claimed.
Claims not collected by their expiry are moved to the merchant's expired account (breakage)
by ``claims_expire``.
"""

import contextlib
import csv
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from alliance.errors import Conflict, DomainError
from ledger.models import Account, Asset
from ledger.services import (
    Leg,
    account_get_or_create,
    issuance_account,
    sink_account,
    transaction_post,
)

from .models import MemberImport, Merchant, PendingClaim

CLAIMS_KIND = Account.Kind.CLAIMS
# The pending-claims account's lots never expire by themselves (see the module docstring).
CLAIMS_LOT_EXPIRY = datetime(2999, 12, 31, tzinfo=UTC)
BATCH_ROWS = 50_000
MAX_FILE_BYTES = 128 * 1024 * 1024
MAX_ROW_MINOR = 10**12
MAX_REPORTED_ERRORS = 10_000
COLUMN_ALIASES = {
    "phone": "phone", "mobile": "phone", "手机": "phone", "手机号": "phone", "电话": "phone",
    "email": "email", "e-mail": "email", "邮箱": "email", "电子邮件": "email",
    "balance": "balance", "points": "balance", "余额": "balance", "积分": "balance",
    "expiry": "expiry", "expires": "expiry", "有效期": "expiry", "到期日": "expiry",
}
_CN_MOBILE = re.compile(r"^(?:\+?86|0086)?[ -]?(1\d{10})$")
_BALANCE = re.compile(r"^\d+(?:\.\d+)?$")
_DATE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")


class ImportRefused(DomainError):
    code = "import_refused"
    default_message = gettext_lazy("The file cannot be imported.")


class DuplicateImport(Conflict):
    code = "import_duplicate"
    default_message = gettext_lazy("This file has already been imported.")


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    message: str
    value: str = ""


@dataclass
class ImportReport:
    """What the dry run found: counts, the total, and every bad row (row 1 is the header)."""

    sha256: str
    row_count: int = 0
    total: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0

    @property
    def ok(self) -> bool:
        return self.error_count == 0 and self.row_count > 0

    @property
    def bad_rows(self) -> list[int]:
        return sorted({error.row for error in self.errors})

    def add(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)


@dataclass(frozen=True)
class Row:
    number: int
    phone: str | None
    email: str | None
    amount: int
    expires_at: datetime | None


class _PhoneNormaliser:
    """E.164 like the sign-up form (``alliance.adapters.normalize_phone``), fast for the
    common case: a Chinese mobile number's validity depends on its first digits only, so
    phonenumbers is asked once per 7-digit prefix instead of once per row."""

    def __init__(self) -> None:
        self._prefix_valid: dict[str, bool] = {}

    def __call__(self, raw: str) -> str | None:
        match = _CN_MOBILE.match(raw)
        if match:
            national = match.group(1)
            valid = self._prefix_valid.get(national[:7])
            if valid is None:
                valid = self._prefix_valid[national[:7]] = self._slow("+86" + national) is not None
            return "+86" + national if valid else None
        return self._slow(raw)

    @staticmethod
    def _slow(raw: str) -> str | None:
        try:
            parsed = phonenumbers.parse(raw, settings.PHONE_DEFAULT_REGION)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(parsed):
            return None
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _email(raw: str) -> str | None:
    email = raw.strip().lower()
    if "@" not in email:
        return None
    try:
        validate_email(email)
    except ValidationError:
        return None
    return email


def _end_of_day(value: date) -> datetime:
    """Points valid through ``value`` (alliance time) expire at the next midnight."""
    return datetime.combine(value + timedelta(days=1), datetime.min.time(),
                            tzinfo=ZoneInfo(settings.TIME_ZONE))


def _lines(stream) -> Iterator[str]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        yield from text
    finally:
        # Give the stream back unclosed: the dry run stores the upload after reading it.
        with contextlib.suppress(ValueError):
            text.detach()


def _parse(stream, asset: Asset, report: ImportReport, now: datetime) -> Iterator[Row]:
    """Rows of the file, checking each and adding what is wrong to ``report``; only good rows
    are yielded. ``report.sha256`` must be known already (the caller hashed the file)."""
    lines = _lines(stream)
    try:
        yield from _parse_lines(lines, asset, report, now)
    finally:
        lines.close()


def _parse_lines(lines: Iterator[str], asset: Asset, report: ImportReport, now: datetime
                 ) -> Iterator[Row]:
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        report.add(RowError(1, "", _("The file is empty.")))
        return
    except (UnicodeDecodeError, csv.Error):
        report.add(RowError(1, "", _("The file is not UTF-8 CSV.")))
        return
    columns: list[str] = []
    for name in header:
        key = COLUMN_ALIASES.get(name.strip().lower())
        if key is None:
            report.add(RowError(1, name, _("Unknown column “%(name)s”: use phone, email, "
                                           "balance and expiry.") % {"name": name}, name))
        elif key in columns:
            report.add(RowError(1, name, _("The column %(name)s appears twice.")
                                % {"name": key}, name))
        columns.append(key or "")
    if "balance" not in columns:
        report.add(RowError(1, "balance", _("The file needs a balance column.")))
    if "phone" not in columns and "email" not in columns:
        report.add(RowError(1, "phone", _("The file needs a phone or an email column.")))
    if report.error_count:
        return
    checker = _RowChecker(columns, asset, report, now)
    number = 1
    try:
        for values in reader:
            number += 1
            if not values or all(not v.strip() for v in values):
                continue
            row = checker.check(number, values)
            if row is not None:
                yield row
    except (UnicodeDecodeError, csv.Error) as exc:
        report.add(RowError(number + 1, "", _("The file cannot be read from here on: %(error)s")
                            % {"error": exc.__class__.__name__}))


class _RowChecker:
    """Checks one row after another, remembering every member seen (duplicates are looked
    for across the whole file) and what it already worked out (expiry dates, email domains)."""

    def __init__(self, columns: list[str], asset: Asset, report: ImportReport, now: datetime):
        self.width = len(columns)
        self.phone_at = columns.index("phone") if "phone" in columns else None
        self.email_at = columns.index("email") if "email" in columns else None
        self.balance_at = columns.index("balance")
        self.expiry_at = columns.index("expiry") if "expiry" in columns else None
        self.asset = asset
        self.report = report
        self.today = now.astimezone(ZoneInfo(settings.TIME_ZONE)).date()
        self.phone_of = _PhoneNormaliser()
        self.seen: dict[str, int] = {}
        self.expiries: dict[str, object] = {}
        self.domains: dict[str, bool] = {}

    def error(self, number: int, column: str, message: str, value: str = "") -> None:
        self.report.add(RowError(number, column, message, value))

    def check(self, number: int, values: list[str]) -> Row | None:
        errors_before = self.report.error_count
        if len(values) != self.width:
            self.error(number, "", _("The row has %(found)d values for %(expected)d columns "
                                     "(a value in an unknown column?).")
                       % {"found": len(values), "expected": self.width})
            return None
        raw_phone = values[self.phone_at].strip() if self.phone_at is not None else ""
        raw_email = values[self.email_at].strip() if self.email_at is not None else ""
        phone = email = None
        if raw_phone:
            phone = self.phone_of(raw_phone)
            if phone is None:
                self.error(number, "phone", _("Not a valid mobile number."), raw_phone)
        if raw_email:
            email = self.email(raw_email)
            if email is None:
                self.error(number, "email", _("Not a valid email address."), raw_email)
        if not raw_phone and not raw_email:
            self.error(number, "phone", _("Give the member's phone number or email."))
        for identifier, column in ((phone, "phone"), (email, "email")):
            if identifier is None:
                continue
            first = self.seen.setdefault(identifier, number)
            if first != number:
                self.error(number, column, _("Duplicate member: the same as row %(row)d.")
                           % {"row": first}, identifier)
        amount = self.balance(number, values[self.balance_at].strip())
        expires_at = None
        if self.expiry_at is not None and values[self.expiry_at].strip():
            expires_at = self.expiry(number, values[self.expiry_at].strip())
        if self.report.error_count != errors_before or amount is None:
            return None
        return Row(number, phone, email, amount, expires_at)

    def email(self, raw: str) -> str | None:
        email = raw.lower()
        user, at, domain = email.rpartition("@")
        if not at or not user:
            return None
        valid = self.domains.get(domain)
        if valid is None:
            valid = self.domains[domain] = _email(f"x@{domain}") is not None
        return email if valid and _email(f"{user}@example.com") is not None else None

    def balance(self, number: int, raw: str) -> int | None:
        if self.asset.scale == 0 and raw.isascii() and raw.isdigit() and len(raw) <= 13:
            minor = int(raw)  # the common case, without Decimal
        else:
            minor = self._balance_slow(number, raw)
            if minor is None:
                return None
        if minor == 0:
            self.error(number, "balance", _("The balance is zero: leave the row out."), raw)
            return None
        if minor > MAX_ROW_MINOR:
            self.error(number, "balance", _("The balance is implausibly large."), raw)
            return None
        return minor

    def _balance_slow(self, number: int, raw: str) -> int | None:
        if raw.startswith("-"):
            self.error(number, "balance", _("The balance is negative."), raw)
            return None
        if not _BALANCE.match(raw):
            self.error(number, "balance", _("The balance is not a number."), raw)
            return None
        try:
            return self.asset.to_minor(Decimal(raw))
        except (InvalidOperation, ValueError):
            self.error(number, "balance", _("At most %(places)d decimal places.")
                       % {"places": self.asset.scale}, raw)
            return None

    def expiry(self, number: int, raw: str) -> datetime | None:
        found = self.expiries.get(raw)
        if found is None:
            found = self.expiries[raw] = self._expiry_parse(raw)
        if isinstance(found, str):
            self.error(number, "expiry", found, raw)
            return None
        return found  # type: ignore[return-value]

    def _expiry_parse(self, raw: str) -> datetime | str:
        """The expiry instant, or the message saying what is wrong with the date."""
        match = _DATE.match(raw)
        try:
            value = date(*(int(part) for part in match.groups())) if match else None
        except ValueError:
            value = None
        if value is None:
            return _("Not a date (YYYY-MM-DD).")
        if value < self.today:
            return _("The date has passed.")
        if not self.asset.expires:
            return _("Your points never expire: leave the expiry empty.")
        return _end_of_day(value)


def file_sha256(stream) -> str:
    digest = hashlib.sha256()
    stream.seek(0)
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


def brand_asset(merchant: Merchant) -> Asset:
    asset = Asset.objects.filter(issuer=merchant, family=Asset.Family.BRAND).order_by("pk").first()
    if asset is None:
        raise ImportRefused(_("The merchant has no point type to import into."))
    return asset


def claims_account(asset: Asset) -> Account:
    """The merchant's bounded account where imported balances wait for their holders."""
    return account_get_or_create(asset=asset, kind=CLAIMS_KIND, merchant=asset.issuer)


def _already_imported(merchant: Merchant, sha256: str) -> MemberImport | None:
    return (MemberImport.objects.filter(
        merchant=merchant, sha256=sha256,
        status__in=[MemberImport.Status.RUNNING, MemberImport.Status.COMMITTED],
    ).first())


def member_import_check(*, merchant: Merchant, upload, uploaded_by=None
                        ) -> tuple[MemberImport, ImportReport]:
    """The dry run. Reads the whole file, names every bad row, and keeps the file for the
    import only if every row is good. Writes no ledger entry and no claim."""
    if upload.size is not None and upload.size > MAX_FILE_BYTES:
        raise ImportRefused(_("The file is larger than %(mb)d MB.")
                            % {"mb": MAX_FILE_BYTES // (1024 * 1024)})
    asset = brand_asset(merchant)
    sha256 = file_sha256(upload)
    report = ImportReport(sha256=sha256)
    previous = _already_imported(merchant, sha256)
    if previous is not None:
        raise DuplicateImport(
            _("This file was already imported on %(date)s.")
            % {"date": timezone.localtime(previous.created_at).date().isoformat()},
            details={"import": previous.pk, "sha256": sha256},
        )
    for row in _parse(upload, asset, report, timezone.now()):
        report.row_count += 1
        report.total += row.amount
    if report.error_count == 0 and report.row_count == 0:
        report.add(RowError(2, "", _("The file has no members.")))
    member_import = MemberImport(
        merchant=merchant, asset=asset, uploaded_by=uploaded_by,
        filename=(getattr(upload, "name", "") or "members.csv")[-200:], sha256=sha256,
        row_count=report.row_count, total=report.total,
        status=MemberImport.Status.CHECKED if report.ok else MemberImport.Status.FAILED,
    )
    if report.ok:
        upload.seek(0)
        member_import.file.save(f"{sha256}.csv", ContentFile(upload.read()), save=False)
    else:
        member_import.error = _("%(count)d problems in the file.") % {"count": report.error_count}
    member_import.save()
    return member_import, report


@transaction.atomic
def member_import_start(*, member_import: MemberImport) -> MemberImport:
    """Queue the import of a checked file. The same file (same SHA-256) imported before by
    this merchant is refused; the database's unique constraint settles a race."""
    member_import = MemberImport.objects.select_for_update().get(pk=member_import.pk)
    if member_import.status != MemberImport.Status.CHECKED:
        raise ImportRefused(_("This import is not waiting to start (it is “%(status)s”).")
                            % {"status": member_import.get_status_display()},
                            details={"status": member_import.status})
    if _already_imported(member_import.merchant, member_import.sha256) is not None:
        raise DuplicateImport(details={"sha256": member_import.sha256})
    member_import.status = MemberImport.Status.RUNNING
    try:
        with transaction.atomic():
            member_import.save(update_fields=["status"])
    except IntegrityError:
        raise DuplicateImport(details={"sha256": member_import.sha256}) from None
    from .tasks import member_import_run_task

    transaction.on_commit(lambda: member_import_run_task.delay(member_import.pk))
    return member_import


def _copy_text(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    # COPY's text format: escape the backslash and the separators it gives meaning to.
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                .replace("\r", "\\r"))
    return text


_CLAIM_COLUMNS = ("member_import_id", "merchant_id", "row_number", "phone", "email", "amount",
                  "expires_at", "status")


def _copy_claims(member_import: MemberImport, rows: list[Row]) -> None:
    """Insert a batch of claims: one ``COPY`` on PostgreSQL, ``bulk_create`` elsewhere."""
    if connection.vendor != "postgresql":
        PendingClaim.objects.bulk_create(
            [PendingClaim(member_import=member_import, merchant_id=member_import.merchant_id,
                          row_number=r.number, phone=r.phone, email=r.email, amount=r.amount,
                          expires_at=r.expires_at) for r in rows],
            batch_size=1000,
        )
        return
    fixed = f"{member_import.pk}\t{member_import.merchant_id}\t"
    pending = PendingClaim.Status.PENDING.value
    lines = [
        f"{fixed}{r.number}\t{_copy_text(r.phone)}\t{_copy_text(r.email)}\t{r.amount}\t"
        f"{_copy_text(r.expires_at)}\t{pending}\n"
        for r in rows
    ]
    table = PendingClaim._meta.db_table
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg 3: the whole batch in one COPY stream
        with raw.copy(f"COPY {table} ({', '.join(_CLAIM_COLUMNS)}) FROM STDIN") as copy:
            copy.write("".join(lines))


def _post_batch(member_import: MemberImport, batch_number: int, rows: list[Row]) -> int:
    asset = member_import.asset
    total = sum(row.amount for row in rows)
    posted = transaction_post(
        kind="member_import",
        legs=[Leg(issuance_account(asset), -total),
              Leg(claims_account(asset), total, expires_at=CLAIMS_LOT_EXPIRY)],
        client=f"merchant:{member_import.merchant_id}",
        idempotency_key=f"import:{member_import.pk}:batch:{batch_number}",
        metadata={"import": member_import.pk, "file_sha256": member_import.sha256,
                  "batch": batch_number, "rows": len(rows),
                  "first_row": rows[0].number, "last_row": rows[-1].number},
    )
    return posted.transaction_id


def member_import_run(*, member_import_id: int, batch_rows: int = BATCH_ROWS) -> MemberImport:
    """Import a started file, batch by batch (each its own database transaction, holding the
    ledger transaction, the claims and the progress). A rerun resumes after the last
    committed batch; the batches' idempotency keys make a replay post nothing twice."""
    member_import = MemberImport.objects.select_related("asset", "merchant").get(
        pk=member_import_id)
    if member_import.status != MemberImport.Status.RUNNING:
        return member_import  # Idempotent: finished, or never started.
    report = ImportReport(sha256=member_import.sha256)
    with member_import.file.open("rb") as stream:
        if file_sha256(stream) != member_import.sha256:
            return _import_failed(member_import, _("The stored file has changed since it was "
                                                   "checked."))
        rows = _parse(stream, member_import.asset, report, member_import.created_at)
        batch: list[Row] = []
        batch_number = 0
        for row in rows:
            batch.append(row)
            if len(batch) == batch_rows:
                batch_number += 1
                _import_batch(member_import, batch_number, batch)
                batch = []
        if batch:
            batch_number += 1
            _import_batch(member_import, batch_number, batch)
    if report.error_count:
        # The file passed the dry run; an error now means the run was resumed with another
        # file under this name, which the hash check above rules out. Defensive only.
        return _import_failed(member_import, _("The file no longer passes its checks."))
    with transaction.atomic():
        member_import = MemberImport.objects.select_for_update().get(pk=member_import.pk)
        member_import.status = MemberImport.Status.COMMITTED
        member_import.committed_at = timezone.now()
        member_import.save(update_fields=["status", "committed_at"])
    return member_import


def _import_batch(member_import: MemberImport, batch_number: int, rows: list[Row]) -> None:
    with transaction.atomic():
        locked = MemberImport.objects.select_for_update().get(pk=member_import.pk)
        if batch_number <= len(locked.transaction_ids):
            return  # this batch committed before a crash: resume after it
        transaction_id = _post_batch(member_import, batch_number, rows)
        _copy_claims(member_import, rows)
        locked.transaction_ids = [*locked.transaction_ids, transaction_id]
        locked.rows_done += len(rows)
        locked.save(update_fields=["transaction_ids", "rows_done"])
        member_import.transaction_ids = locked.transaction_ids
        member_import.rows_done = locked.rows_done


def _import_failed(member_import: MemberImport, message: str) -> MemberImport:
    MemberImport.objects.filter(pk=member_import.pk).update(
        status=MemberImport.Status.FAILED, error=message)
    member_import.refresh_from_db()
    return member_import


# --- claims ------------------------------------------------------------------------------------


def verified_identifiers(user) -> tuple[list[str], list[str]]:
    """The phone numbers and email addresses ``user`` has verified."""
    from allauth.account.models import EmailAddress

    phones = [user.phone] if user.phone and user.phone_verified else []
    emails = [e.lower() for e in EmailAddress.objects.filter(user=user, verified=True)
              .values_list("email", flat=True)]
    return phones, emails


def claims_collect(*, user, now: datetime | None = None) -> list[PendingClaim]:
    """Move every pending claim for ``user``'s verified phone or emails into their wallets,
    one ledger transaction per claim (keyed by the claim, so a repeat posts nothing). A claim
    past its expiry is expired instead. Returns the claims collected now."""
    now = now or timezone.now()
    phones, emails = verified_identifiers(user)
    if not phones and not emails:
        return []
    match = Q(phone__in=phones) | Q(email__in=emails)
    collected = []
    with transaction.atomic():
        # Locked in primary-key order: two sign-ins of one person never claim twice.
        claims = list(
            PendingClaim.objects.select_for_update(of=("self",))
            .filter(match, status=PendingClaim.Status.PENDING)
            .select_related("member_import__asset").order_by("pk")
        )
        for claim in claims:
            if claim.expires_at is not None and claim.expires_at <= now:
                _claims_expire_group(claim.member_import, [claim], now)
                continue
            _claim_settle(claim, user, now)
            collected.append(claim)
    return collected


def _claim_settle(claim: PendingClaim, user, now: datetime) -> None:
    asset = claim.member_import.asset
    wallet = account_get_or_create(asset=asset, kind=Account.Kind.WALLET, user=user)
    legs = [Leg(claims_account(asset), -claim.amount)]
    expires_at = None
    if asset.expires:
        # The parked lot's far-future expiry must not reach the wallet: the points go back
        # to the issuance and are issued again with the member's own expiry (from the file,
        # or the point type's policy counted from the import).
        expires_at = claim.expires_at or asset.expiry_for(claim.member_import.created_at)
        issuance = issuance_account(asset)
        legs += [Leg(issuance, claim.amount), Leg(issuance, -claim.amount)]
    legs.append(Leg(wallet, claim.amount, expires_at=expires_at))
    posted = transaction_post(
        kind="import_claim", legs=legs, client=f"merchant:{claim.merchant_id}",
        idempotency_key=f"claim:{claim.pk}",
        metadata={"import": claim.member_import_id, "claim": claim.pk},
    )
    claim.status = PendingClaim.Status.CLAIMED
    claim.claimed_by = user
    claim.claimed_at = now
    claim.settled_by_id = posted.transaction_id
    claim.save(update_fields=["status", "claimed_by", "claimed_at", "settled_by"])


def _claims_expire_group(member_import: MemberImport, claims: list[PendingClaim],
                         now: datetime) -> None:
    asset = member_import.asset
    total = sum(claim.amount for claim in claims)
    first = min(claim.pk for claim in claims)
    posted = transaction_post(
        kind="import_claim_expiry",
        legs=[Leg(claims_account(asset), -total),
              Leg(sink_account(asset, Account.Kind.EXPIRED), total)],
        client=f"merchant:{member_import.merchant_id}",
        idempotency_key=f"claim-expiry:{member_import.pk}:{first}:{len(claims)}",
        metadata={"import": member_import.pk, "claims": len(claims)},
    )
    PendingClaim.objects.filter(pk__in=[claim.pk for claim in claims]).update(
        status=PendingClaim.Status.EXPIRED, settled_by_id=posted.transaction_id)


def claims_expire(*, now: datetime | None = None, batch: int = 10_000) -> int:
    """Move unclaimed balances past their expiry to the merchant's expired account
    (breakage), one ledger transaction per import and batch. Safe to rerun."""
    now = now or timezone.now()
    expired = 0
    while True:
        with transaction.atomic():
            claims = list(
                PendingClaim.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(status=PendingClaim.Status.PENDING, expires_at__lte=now)
                .select_related("member_import__asset").order_by("pk")[:batch]
            )
            groups: dict[int, list[PendingClaim]] = {}
            for claim in claims:
                groups.setdefault(claim.member_import_id, []).append(claim)
            for group in groups.values():
                _claims_expire_group(group[0].member_import, group, now)
        expired += len(claims)
        if len(claims) < batch:
            return expired


def claims_pending_total(merchant: Merchant) -> int:
    return (PendingClaim.objects.filter(merchant=merchant, status=PendingClaim.Status.PENDING)
            .aggregate(total=Sum("amount"))["total"] or 0)
