"""Alembic's environment for ctpipe's database, run only through ``ctpipe.db.open_database``.

``open_database`` passes the connection (already holding the migration lock) in
``config.attributes["connection"]``; there is no alembic.ini and no offline (SQL script) mode.
"""

from __future__ import annotations

from alembic import context

from ctpipe.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("ctpipe's migrations run through ctpipe.db.open_database, which passes "
                       "the connection; there is no alembic.ini")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=context.config.attributes["version_table"],
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
