"""Search by any part of any name, answered from an index.

SQLite: an FTS5 table with the trigram tokenizer (SQLite 3.34 or later) holding every folded
name of every city — the city's own, its alternate names and its search names — kept in step
by triggers, so that `folded LIKE '%san%'` on it reads the index. Each name's rowid is its
row's id times three plus its table (0 city, 1 alternate name, 2 search name), so a trigger
finds its row by rowid.

PostgreSQL: `pg_trgm` GIN indexes on the three folded columns, which answer `LIKE '%san%'`
on the tables themselves (a prefix, `LIKE 'sa%'`, reads the columns' ordinary indexes).

On SQLite a later migration that rebuilds one of the three tables (most AlterFields do) drops
its triggers: cities/apps.py creates the missing ones after every migrate (`SQLITE_TRIGGERS`
below create only what is missing), and tests/test_search_index.py checks they are there.
"""

from django.db import migrations

INDEX = "cities_name_index"

# (table, column holding the folded name, column holding the city, offset of its rowids)
SOURCES = [
    ("cities_city", "folded_name", "id", 0),
    ("cities_alternatename", "folded", "city_id", 1),
    ("cities_searchname", "folded", "city_id", 2),
]


def sqlite_triggers(table, folded, city, offset):
    """The triggers that keep the names of `table` in the index (created only if missing)."""
    row = f"{INDEX}(rowid, folded, city_id)"
    insert = f"INSERT INTO {row} VALUES (new.id * 3 + {offset}, new.{folded}, new.{city});"
    delete = f"DELETE FROM {INDEX} WHERE rowid = old.id * 3 + {offset};"
    watched = ", ".join(dict.fromkeys(["id", folded, city]))
    events = {
        "insert": ("INSERT", insert),
        "update": (f"UPDATE OF {watched}", f"{delete} {insert}"),
        "delete": ("DELETE", delete),
    }
    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_name_index_{name} AFTER {event} ON {table} "
        f"BEGIN {body} END"
        for name, (event, body) in events.items()
    ]


SQLITE_TRIGGERS = [sql for source in SOURCES for sql in sqlite_triggers(*source)]

POSTGRES_INDEXES = [
    (f"{table}_{folded}_trgm", table, folded) for table, folded, _city, _offset in SOURCES
]


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute(
            f"CREATE VIRTUAL TABLE {INDEX} USING fts5(folded, city_id UNINDEXED, "
            "tokenize = 'trigram')"
        )
        for table, folded, city, offset in SOURCES:
            schema_editor.execute(
                f"INSERT INTO {INDEX}(rowid, folded, city_id) "
                f"SELECT id * 3 + {offset}, {folded}, {city} FROM {table}"
            )
        for sql in SQLITE_TRIGGERS:
            schema_editor.execute(sql)
    elif vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, table, folded in POSTGRES_INDEXES:
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({folded} gin_trgm_ops)"
            )


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        for table, _folded, _city, _offset in SOURCES:
            for event in ("insert", "update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_name_index_{event}")
        schema_editor.execute(f"DROP TABLE IF EXISTS {INDEX}")
    elif vendor == "postgresql":
        # The extension stays: something else may use it.
        for name, _table, _folded in POSTGRES_INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("cities", "0006_source_kind_default"),
    ]

    operations = [
        migrations.RunPython(create, drop),
    ]
