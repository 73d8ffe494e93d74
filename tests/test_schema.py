"""schema.sql is the whole schema, and migrations/ is how a database gets it.

Every database (local, in tests, deployed) is built by `wrangler d1 migrations
apply`, which runs migrations/*.sql in name order once each. schema.sql is the
schema those migrations make, for reading and review: these tests hold the two
equal, table by table and column by column, so neither can drift.

D1 is SQLite, so Python's sqlite3 stands in for it here.
"""
import re
import sqlite3
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = sorted((ROOT / "migrations").glob("*.sql"))


def build(*scripts: Path) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    for script in scripts:
        db.executescript(script.read_text())
    return db


def normalized_sql(sql: str | None) -> str:
    """An index's or trigger's SQL without comments, IF NOT EXISTS or layout."""
    text = re.sub(r"--[^\n]*", " ", sql or "")
    text = re.sub(r"\bIF NOT EXISTS\b", " ", text, flags=re.IGNORECASE)
    return re.sub(r"\s+", " ", text).strip().rstrip(";").lower()


def shape(db: sqlite3.Connection) -> dict:
    """Every table's columns (as a set: ALTER TABLE appends where schema.sql may
    place a column anywhere), strictness, foreign keys and indexes, and every
    trigger's and view's SQL."""
    out: dict = {}
    strict = {row[1]: row[5] for row in db.execute("PRAGMA table_list") if row[0] == "main"}
    for kind, name, sql in db.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name != 'd1_migrations'"
    ):
        if kind == "table":
            cols = {r[1]: (r[2].upper(), r[3], r[4], r[5]) for r in db.execute(f'PRAGMA table_info("{name}")')}
            fks = sorted(tuple(r[2:]) for r in db.execute(f'PRAGMA foreign_key_list("{name}")'))
            out[("table", name)] = (cols, strict.get(name), fks)
        elif kind == "index":
            cols = [r[2] for r in db.execute(f'PRAGMA index_info("{name}")')]
            out[("index", name)] = (cols, normalized_sql(sql))
        else:
            out[(kind, name)] = normalized_sql(sql)
    return out


def test_there_is_a_first_migration_and_names_sort_in_order():
    names = [m.name for m in MIGRATIONS]
    assert names and names[0].startswith("0001_"), names
    numbers = [n.split("_", 1)[0] for n in names]
    assert all(len(n) == 4 and n.isdigit() for n in numbers), names
    assert len(set(numbers)) == len(numbers), f"two migrations share a number: {names}"


def test_the_migrations_make_exactly_schema_sql():
    from_migrations = shape(build(*MIGRATIONS))
    from_schema = shape(build(ROOT / "schema.sql"))
    only_migrations = sorted(set(from_migrations) - set(from_schema))
    only_schema = sorted(set(from_schema) - set(from_migrations))
    assert not only_migrations and not only_schema, f"only in migrations: {only_migrations}; only in schema.sql: {only_schema}"
    for key, value in from_schema.items():
        assert from_migrations[key] == value, f"{key} differs:\nmigrations: {from_migrations[key]}\nschema.sql: {value}"


def test_schema_sql_can_be_applied_twice():
    db = build(ROOT / "schema.sql", ROOT / "schema.sql")
    assert shape(db) == shape(build(ROOT / "schema.sql"))


def test_the_check_sees_a_column_missing_from_a_migration(tmp_path):
    """The comparison can fail: a schema.sql with one more column differs."""
    extra = tmp_path / "schema.sql"
    extra.write_text((ROOT / "schema.sql").read_text() + "\nALTER TABLE users ADD COLUMN nobody_made_this TEXT;\n")
    assert shape(build(*MIGRATIONS)) != shape(build(extra))


def test_a_first_release_database_upgrades_by_the_migrations(tmp_path):
    """A deployment made from the first release's schema.sql (no d1_migrations
    table) applies every migration, 0001 included, and ends at schema.sql."""
    db = build(MIGRATIONS[0])  # what the first release's schema.sql made
    for m in MIGRATIONS:
        db.executescript(m.read_text())
    assert shape(db) == shape(build(ROOT / "schema.sql"))
