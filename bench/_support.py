"""What the benchmarks share: the data file, a production-like Django, the atlas built once."""

import os
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "twin-cities-wikipedia.csv"


def add_database_arguments(parser, default_db):
    """--db, --database-url, --reuse and --data, as bench_api and bench_pages take them."""
    parser.add_argument("--db", default=default_db)
    parser.add_argument("--database-url", help="use this database instead of a SQLite file")
    parser.add_argument("--reuse", action="store_true", help="keep an already imported database")
    parser.add_argument("--data", default=str(DATA), help="CSV to import")


def remove_sqlite(path):
    """Delete a SQLite file with its write-ahead log, so the next run starts empty."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def setup_django(database_url, **environ):
    """DEBUG off, as in production, so no query log slows or bloats what is measured."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(40))
    os.environ["ALLOWED_HOSTS"] = "testserver"
    # One process measures itself: an in-process cache is what it needs (no Redis).
    os.environ.setdefault("SINGLE_PROCESS", "true")
    os.environ.update(environ)
    os.environ["DJANGO_SETTINGS_MODULE"] = "cityDiplomacy.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def configure(args, **environ):
    """Django on --database-url, or on the --db SQLite file (emptied unless --reuse)."""
    if args.database_url:
        url = args.database_url
        if url.startswith(("postgres://", "postgresql://")):
            fresh_postgres(url, keep=args.reuse)
    else:
        if not args.reuse:
            remove_sqlite(args.db)
        url = f"sqlite:///{args.db}"
    setup_django(url, **environ)


def fresh_postgres(url, keep=False):
    """Create the PostgreSQL database of `url`, emptied first unless `keep` (--reuse)."""
    import dj_database_url
    import psycopg
    from psycopg import sql

    config = dj_database_url.parse(url)
    server = {
        "host": config["HOST"] or None,
        "port": config["PORT"] or None,
        "user": config["USER"] or None,
        "password": config["PASSWORD"] or None,
    }
    name = config["NAME"]
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if exists and not keep:
            connection.execute(
                sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name))
            )
            exists = None
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def build(args, model):
    """Migrate, load the seed fixture and import --data; with --reuse, keep a filled database.

    `model` is what must already hold rows for the database to count as filled.
    """
    from django.core.management import call_command, get_commands

    if args.reuse and model.objects.exists():
        print(
            f"Reusing {model.objects.count():,} {model._meta.verbose_name_plural} "
            "already in the database."
        )
        return
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    seed = ROOT / "fixtures" / "seed.json"
    if seed.exists():
        call_command("loaddata", str(seed), verbosity=0)
    if "import_ties" in get_commands() and Path(args.data).exists():
        call_command("import_ties", args.data, "--skip-bad-rows", verbosity=0)
    else:
        print("import_ties or the data file is missing: measuring on the seed data only.")
    print(f"Database built in {time.perf_counter() - started:.1f} s.")
