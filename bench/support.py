"""What the benchmarks share: a throwaway PostgreSQL database and Django set up on it."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def recreate_database(admin_url: str, name: str, *, drop_only: bool = False) -> None:
    """Drop ``name`` (closing its connections) and, unless ``drop_only``, create it empty."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            connection.execute(f'CREATE DATABASE "{name}"')


def setup_django(database_url: str) -> None:
    """Set Django up on ``database_url`` with the production settings, and migrate it."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "msp.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


@contextmanager
def throwaway_database(suffix: str):
    """A fresh database for one bench run, migrated, Django set up on it, removed afterwards:
    ``<name>_<suffix>`` on the PostgreSQL of ``DATABASE_URL``, else a SQLite file."""
    url = os.environ.get("DATABASE_URL", "")
    var_dir = tempfile.mkdtemp(prefix=f"{suffix}-")
    os.environ["GROUNDWORK_VAR_DIR"] = var_dir
    admin_url = name = None
    if url.startswith("postgres"):
        name = f"{urlsplit(url).path.lstrip('/') or 'groundwork'}_{suffix}"
        admin_url = with_database(url, "postgres")
        recreate_database(admin_url, name)
        setup_django(with_database(url, name))
    else:
        os.environ["SQLITE_PATH"] = str(Path(var_dir) / "bench.sqlite3")
        os.environ.pop("DATABASE_URL", None)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "msp.settings")
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
    try:
        yield
    finally:
        from django.db import connections

        connections.close_all()
        if admin_url:
            recreate_database(admin_url, name, drop_only=True)
        shutil.rmtree(var_dir, ignore_errors=True)
