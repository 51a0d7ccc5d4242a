"""The store's schema: SQLite migrations, in order, each run once.

The schema is versioned by `PRAGMA user_version`: migration N (1-based) brings a
database from version N-1 to N. Migrations only ever append; an applied one never
changes, since databases in the field already ran it.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: cards, attempts, their event log and the agent conversation
    """
    CREATE TABLE cards (
        id          TEXT PRIMARY KEY,
        title       TEXT NOT NULL,
        prompt      TEXT NOT NULL,
        repo        TEXT NOT NULL,
        base_ref    TEXT NOT NULL,
        base_commit TEXT NOT NULL,
        network     INTEGER NOT NULL,
        created_at  REAL NOT NULL
    );
    CREATE TABLE attempts (
        id           TEXT PRIMARY KEY,
        card_id      TEXT NOT NULL REFERENCES cards(id),
        n            INTEGER NOT NULL,
        model        TEXT NOT NULL,
        runtime      TEXT NOT NULL,
        branch       TEXT NOT NULL,
        worktree     TEXT NOT NULL,
        container_id TEXT,
        state        TEXT NOT NULL,
        step         TEXT NOT NULL,
        error        TEXT,
        summary      TEXT,
        tokens_in    INTEGER NOT NULL DEFAULT 0,
        tokens_out   INTEGER NOT NULL DEFAULT 0,
        cost_usd     REAL,
        steps        INTEGER NOT NULL DEFAULT 0,
        tool_calls   INTEGER NOT NULL DEFAULT 0,
        created_at   REAL NOT NULL,
        started_at   REAL,
        finished_at  REAL,
        UNIQUE (card_id, n)
    );
    CREATE INDEX attempts_state ON attempts(state, created_at);
    CREATE TABLE events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        attempt_id TEXT NOT NULL REFERENCES attempts(id),
        seq        INTEGER NOT NULL,
        time       REAL NOT NULL,
        kind       TEXT NOT NULL,
        payload    TEXT NOT NULL,
        UNIQUE (attempt_id, seq)
    );
    CREATE TABLE conversation (
        attempt_id TEXT NOT NULL REFERENCES attempts(id),
        idx        INTEGER NOT NULL,
        message    TEXT NOT NULL,
        PRIMARY KEY (attempt_id, idx)
    );
    """,
    # 2: review: the branch to merge into, the tree the agent left, what landed, review comments
    """
    ALTER TABLE cards ADD COLUMN base_branch TEXT;
    ALTER TABLE attempts ADD COLUMN review_tree TEXT;
    ALTER TABLE attempts ADD COLUMN landed_commit TEXT;
    CREATE TABLE comments (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        attempt_id TEXT NOT NULL REFERENCES attempts(id),
        path       TEXT NOT NULL,
        line       INTEGER NOT NULL,
        text       TEXT NOT NULL,
        created_at REAL NOT NULL,
        sent_at    REAL
    );
    """,
    # 3: repository settings and budgets per card, checks per attempt run
    """
    ALTER TABLE cards ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE cards ADD COLUMN budget_tokens INTEGER;
    ALTER TABLE cards ADD COLUMN budget_cost_usd REAL;
    ALTER TABLE attempts ADD COLUMN stop_reason TEXT;
    ALTER TABLE attempts ADD COLUMN run INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE checks (
        attempt_id  TEXT NOT NULL REFERENCES attempts(id),
        run         INTEGER NOT NULL,
        idx         INTEGER NOT NULL,
        name        TEXT NOT NULL,
        command     TEXT NOT NULL,
        status      TEXT NOT NULL,
        exit_code   INTEGER,
        duration    REAL NOT NULL,
        output_tail TEXT NOT NULL,
        finished_at REAL NOT NULL,
        PRIMARY KEY (attempt_id, run, idx)
    );
    """,
    # 4: model gateway: one token per attempt (only its sha256) and the agent it was issued to
    """
    CREATE TABLE gateway_tokens (
        attempt_id   TEXT PRIMARY KEY REFERENCES attempts(id),
        token_sha256 TEXT NOT NULL UNIQUE,
        agent        TEXT NOT NULL,
        created_at   REAL NOT NULL
    );
    """,
    # 5: which agent runs the attempt: kilod's own loop or an agent CLI (kilod.agents)
    """
    ALTER TABLE attempts ADD COLUMN agent TEXT NOT NULL DEFAULT 'builtin';
    """,
    # 6: trust in a repository's settings file (by content hash), and what each card made of that file
    """
    ALTER TABLE cards ADD COLUMN settings_source TEXT;
    CREATE TABLE trusted_settings (
        repo       TEXT NOT NULL,
        file       TEXT NOT NULL,
        sha256     TEXT NOT NULL,
        trusted_at REAL NOT NULL,
        PRIMARY KEY (repo, file, sha256)
    );
    """,
    # 7: input tokens the provider served from its prompt cache (built-in agent; gateway cache reads)
    """
    ALTER TABLE attempts ADD COLUMN tokens_cached INTEGER NOT NULL DEFAULT 0;
    """,
    # 8: the board: archived cards; per-run summaries and time waited in review (not running time)
    """
    ALTER TABLE cards ADD COLUMN archived_at REAL;
    ALTER TABLE attempts ADD COLUMN review_seconds REAL NOT NULL DEFAULT 0;
    ALTER TABLE attempts ADD COLUMN summaries TEXT NOT NULL DEFAULT '[]';
    """,
    # 9: a person's pause request, until the agent reaches a stopping point (it survives kill -9)
    """
    ALTER TABLE attempts ADD COLUMN pause_requested INTEGER NOT NULL DEFAULT 0;
    """,
]
