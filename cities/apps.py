import importlib

from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate


def keep_name_index_triggers(using="default", **kwargs):
    """On SQLite, a migration that rebuilds a table of names drops its triggers: after every
    migrate, create the ones missing, so the search index never falls out of step."""
    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    index = importlib.import_module("cities.migrations.0007_name_search_index")
    if index.INDEX not in connection.introspection.table_names():
        return
    with connection.cursor() as cursor:
        for sql in index.SQLITE_TRIGGERS:  # CREATE TRIGGER IF NOT EXISTS
            cursor.execute(sql)


class CitiesConfig(AppConfig):
    name = "cities"
    verbose_name = "Places and sources"

    def ready(self):
        post_migrate.connect(keep_name_index_triggers, sender=self)
