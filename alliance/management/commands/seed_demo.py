import json

from django.core.management.base import BaseCommand

from alliance.demo import seed_demo


class Command(BaseCommand):
    help = "Create the demo alliance (idempotent) and print its logins."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the logins as JSON")

    def handle(self, *args, **options):
        report = seed_demo()
        if options["json"]:
            self.stdout.write(json.dumps(report, ensure_ascii=False, indent=2))
            return
        out = self.stdout.write
        out(self.style.SUCCESS("Demo alliance ready. Every password: " +
                               report["admin"]["password"]))
        out("Shoppers (storefront /):")
        for s in report["shoppers"]:
            out(f"  {s['email']:<34} phone {s['phone']}  member {s['member_code']}")
        out("Merchant staff (dashboard /dashboard/):")
        for m in report["merchants"]:
            for s in m["staff"]:
                out(f"  {s['email']:<34} {s['role']} of {m['name']}")
        out("Merchant API keys (Authorization: Api-Key <key>):")
        for m in report["merchants"]:
            if m.get("api_key"):
                out(f"  {m['name']:<20} {m['api_key']}")
        out("Alliance (console /console/):")
        for s in report["staff"]:
            out(f"  {s['email']:<34} alliance staff")
        out(f"  {report['supervisor']['email']:<34} supervisor")
        for s in report["council"]:
            out(f"  {s['email']:<34} council member")
        out(f"  {report['admin']['email']:<34} superuser (/admin/)")
