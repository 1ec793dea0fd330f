from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PartnershipsConfig(AppConfig):
    name = "partnerships"
    verbose_name = "Ties, networks and events"

    def ready(self):
        from .readcache import install_version_triggers

        # After every migrate: each table of the atlas moves the version the read cache
        # files pages under (partnerships/readcache.py).
        post_migrate.connect(install_version_triggers, sender=self)
