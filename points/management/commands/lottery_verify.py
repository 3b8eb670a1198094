"""``manage.py lottery_verify <campaign>``: recompute every draw of a lottery from its revealed
seed and check the commitment (SPEC §4.5). Exits non-zero naming each mismatch."""

from django.core.management.base import BaseCommand, CommandError

from points.lottery import lottery_verify
from points.models import LotteryCampaign


class Command(BaseCommand):
    help = "Recompute every draw of a closed lottery from its seed and check the commitment."

    def add_arguments(self, parser):
        parser.add_argument("campaign", type=int, help="The campaign's id.")
        parser.add_argument("--seed", help="Check this seed (hex) instead of the revealed one.")
        parser.add_argument("--quiet", action="store_true", help="Only the verdict.")

    def handle(self, *args, campaign: int, seed: str | None = None, quiet: bool = False,
               **options):
        found = LotteryCampaign.objects.filter(pk=campaign).first()
        if found is None or found.state == LotteryCampaign.State.DRAFT:
            raise CommandError(f"no published lottery {campaign}")
        report = lottery_verify(campaign=found, seed=seed)
        out = self.stdout
        out.write(f"campaign {found.pk} ({found}) state={found.state}")
        out.write(f"commitment {found.commitment}")
        out.write(f"seed       {report.seed or '(not revealed)'}")
        if report.seed:
            out.write("SHA-256(seed) " + ("matches" if report.commitment_matches
                                          else "DOES NOT match") + " the commitment")
        if not quiet:
            for check in report.checks:
                draw = check.draw
                mark = "ok " if check.ok else "BAD"
                out.write(f"{mark} {draw.shopper_ref} #{draw.nonce}: ticket {check.ticket} -> "
                          f"tier {check.tier_position} (recorded tier "
                          f"{draw.drawn_tier.position}, {draw.outcome})")
        if not report.ok:
            for problem in report.problems:
                self.stderr.write(problem)
            raise CommandError(f"{len(report.problems)} problem(s): the draws do not verify")
        out.write(self.style.SUCCESS(f"all {len(report.checks)} draws verify"))
