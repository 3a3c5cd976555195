"""Alembic environment for the nas results database.

`nas.store.migrate` always hands a connection in through ``config.attributes["connection"]``,
already inside a transaction that holds the database's write lock; nothing here opens its own.
"""

from alembic import context

from nas.store.schema import VERSION_TABLE, Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run nas migrations through nas.store.upgrade(url), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    # SQLite cannot ALTER most things in place; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
