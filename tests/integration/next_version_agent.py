"""The agent as its next version would be: today's code plus one migration of the
state store (a column and a table), then the real entry point. The integration test
of updates runs it as "version N+1" (tests/integration/test_update_state.py).

    python -m tests.integration.next_version_agent [the agent's options]
"""

import sqlite3
import sys

import appliance.store as store
from appliance.agent import main


def signed_revisions(db: sqlite3.Connection) -> None:
    """Made up: version N+1 records who signed a revision, and keeps notes."""
    db.execute("ALTER TABLE revisions ADD COLUMN signed_by TEXT")
    db.execute("CREATE TABLE notes (text TEXT NOT NULL)")
    db.execute("INSERT INTO notes VALUES ('migrated by the next version')")


store.MIGRATIONS = [*store.MIGRATIONS, signed_revisions]

if __name__ == "__main__":
    sys.exit(main())
