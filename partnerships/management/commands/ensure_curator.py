from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError

USERNAME = "curator"
PASSWORD = "curator"


class Command(BaseCommand):
    help = "Make sure a local curator account exists (development only) and say how to log in."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/admin/")

    def handle(self, *args, url, **options):
        if not settings.DEBUG:
            raise CommandError("Refusing to create a known login with DEBUG off (production).")
        user, created = User.objects.get_or_create(
            username=USERNAME, defaults={"is_staff": True, "email": "curator@localhost"}
        )
        if created:
            user.set_password(PASSWORD)
            user.save()
        user.groups.add(Group.objects.get(name="Editor"))
        self.stdout.write(
            f"\nAdmin: {url}\n  user:     {USERNAME}\n  password: {PASSWORD}"
            + ("" if created else "  (unless you changed it)")
            + "\n  (a local development account in the Editor group)\n"
        )
