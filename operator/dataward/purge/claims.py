"""Which store an archive table belongs to: a registry in the archive database.

A statutory store destroys archive rows by its own statute, time zone and legal hold, and
nothing in a row says which store archived it. Two stores whose archives name one database
and table (a table named as the live one, two namespaces, two clusters or two operator
shards that cannot see each other's stores) would destroy each other's copies early. So
the job, not the operator, records the owner where every such job looks: the table
`dataward_archive_claims` beside the archive table (in its schema, or the login's default
one), one row per archive table, keyed by the table's name. A run claims each of its
archive tables before anything is copied, counted or destroyed, and refuses a table another
store claimed (`claim_refusal`), so only the owner ever touches it.

The engine creates no table and asks no DDL privilege: the database administrator creates
the registry once per schema (`claims_table_ddl`, named in the refusal's message) and grants
the archive login SELECT and INSERT on it. No UPDATE or DELETE: a claim is never moved by a
run; releasing a table (a store renamed or retired) is the administrator's DELETE.

An archive table that holds rows but no claim (archived before claims existed) is claimed
by the first store that runs against it, rows and all: nothing tells whose rows they are,
and refusing every such table would stop every archive at the upgrade. When two stores
already shared one, the rows they mixed stay mixed under the first claimant's statute.
"""

from __future__ import annotations

from collections.abc import Iterable

from dataward.purge.errors import DuplicateKey, PurgeError, grant_statement, missing_privilege
from dataward.purge.sql import Dialect, Session, TableName

CLAIMS_TABLE = "dataward_archive_claims"
# The registry's key: one claim per archive table (the claims' atomicity rests on it).
CLAIM_KEY = "archive_table"


def claims_table_ddl(dialect: Dialect, schema: str | None) -> str:
    """The registry's CREATE TABLE for the administrator. MariaDB table names are case
    sensitive on Linux, so the key compares bytes (ascii_bin), never a case-folding
    collation that would refuse `Orders` for `orders` (or worse, the reverse)."""
    registry = dialect.table(TableName(schema, CLAIMS_TABLE))
    if dialect.engine == "postgresql":
        return (
            f"CREATE TABLE {registry} ({CLAIM_KEY} varchar(64) PRIMARY KEY, "
            "store varchar(320) NOT NULL, claimed_at timestamptz NOT NULL);"
        )
    return (
        f"CREATE TABLE {registry} ({CLAIM_KEY} VARCHAR(64) CHARACTER SET ascii COLLATE "
        "ascii_bin NOT NULL PRIMARY KEY, store VARCHAR(320) NOT NULL, claimed_at "
        "TIMESTAMP(6) NOT NULL) ENGINE=InnoDB;"
    )


def claim_key(dialect: Dialect, table: TableName) -> str:
    """The registry's key of an archive table: its name as the catalogue stores it (the
    registry lives in the table's own schema, so the schema is not part of it)."""
    return dialect.name(table.name)


def claim_refusal(table: str, store: str, owner: str | None) -> PurgeError | None:
    """None when `store` may use archive table `table` (it owns it, or, in a dry run that
    claims nothing, nobody does); else ArchiveClaimed naming the owner, no row values."""
    if owner is None or owner == store:
        return None
    return PurgeError(
        "ArchiveClaimed",
        f"archive table {table} belongs to store {owner} (its claim in {CLAIMS_TABLE}): this "
        "store's statute, time zone and legal hold must not destroy that store's copies, so "
        "nothing was copied to, counted in or destroyed from it, and nothing was deleted "
        "from the live database. Give this store an archive table or database of its own.",
    )


def registry_problem(
    columns: Iterable[str], unique_keys: Iterable[frozenset[str]]
) -> str | None:
    """What is wrong with the registry as the catalogue shows it (None: usable). Without
    the primary key two stores' claims of one table would both succeed."""
    if not {CLAIM_KEY, "store", "claimed_at"} <= {c.lower() for c in columns}:
        return f"has no table {CLAIMS_TABLE} the archive login can use"
    if frozenset({CLAIM_KEY}) not in {frozenset(c.lower() for c in u) for u in unique_keys}:
        return f"has a table {CLAIMS_TABLE} without a primary key on {CLAIM_KEY}"
    return None


def missing_registry(
    dialect: Dialect, database: str, table: TableName, problem: str
) -> PurgeError:
    """ArchiveClaimsMissing: what to create and grant (no credentials: `<login>`)."""
    registry = dialect.table(TableName(table.schema, CLAIMS_TABLE))
    grant = grant_statement(dialect.engine, "SELECT, INSERT", registry, database)
    return PurgeError(
        "ArchiveClaimsMissing",
        f"the archive database {database} {problem}, which records the store each archive "
        f"table belongs to (table {table}); nothing was copied or deleted. Create it once "
        f"beside the archive table: {claims_table_ddl(dialect, table.schema)} {grant} with "
        "<login> the username of the archive's credentials Secret.",
    )


def claim(session: Session, table: TableName, store: str, *, write: bool) -> str | None:
    """Claim archive `table` for `store` (unless `write` is False: a dry run writes
    nothing) and return its owner, committed; None only when unclaimed and not written.

    The INSERT is the claim: the registry's primary key lets one store win a race, the
    loser's INSERT fails (PostgreSQL waits for the winner's commit first) and it reads the
    winner back. Committed before any archive row is read, so a run's copies always land
    in a table the registry already gives to its store."""
    registry = TableName(table.schema, CLAIMS_TABLE)
    columns = [c.name for c in session.columns(registry)]
    problem = registry_problem(columns, session.unique_keys(registry) if columns else ())
    if problem is not None:
        raise missing_registry(session.dialect, session.database_name, table, problem)
    name = session.dialect.table(registry)
    key = claim_key(session.dialect, table)
    if write:
        try:
            session.execute(
                f"INSERT INTO {name} ({CLAIM_KEY}, store, claimed_at) "
                "VALUES (%s, %s, CURRENT_TIMESTAMP)",
                (key, store),
            )
            session.commit()
        except DuplicateKey:
            session.rollback()  # claimed already (by this store or another): read it
        except PurgeError as error:
            session.rollback()
            raise _needs(session, error, "INSERT", registry) from None
    try:
        rows = session.query(f"SELECT store FROM {name} WHERE {CLAIM_KEY} = %s", (key,))
        session.commit()
    except PurgeError as error:
        session.rollback()
        raise _needs(session, error, "SELECT", registry) from None
    return None if not rows else str(rows[0][0])


def claim_all(
    session: Session, tables: Iterable[tuple[TableName, str]], store: str, *, write: bool
) -> None:
    """Claim each archive table for `store` (`claim`; each paired with the name its refusal
    gives it), in order; ArchiveClaimed at the first another store owns, before anything is
    copied to, counted in, read from or destroyed in any of them by the caller."""
    for table, named in tables:
        refused = claim_refusal(named, store, claim(session, table, store, write=write))
        if refused is not None:
            raise refused


def _needs(session: Session, error: PurgeError, privilege: str, registry: TableName) -> PurgeError:
    """A refused statement on the registry as the GRANT that fixes it."""
    if error.category != "PermissionDenied":
        return error
    return missing_privilege(
        session.dialect.engine, session.role, privilege, str(registry), session.database_name
    )
