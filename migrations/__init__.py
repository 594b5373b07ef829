"""The schema's history, in Alembic revisions (versions/)."""

from typing import Final

# The revision this code needs the database at: the service checks it at start
# and in /readyz without loading Alembic. A test keeps it equal to the head of
# versions/, so a new migration fails the tests until this names it.
HEAD: Final = "0005"
