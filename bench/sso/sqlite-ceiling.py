#!/usr/bin/env python3
"""The ceiling SQLite sets on refresh-token rotation on this machine.

Every refresh spends a token and stores its successor (RFC 9700 §4.14.2). The hub
groups these writes (src/oidc/refresh_writer.rs) into one transaction per batch:
BEGIN; UPDATE … RETURNING (the same conditional statement); one multi-row INSERT;
COMMIT. This script runs exactly those statements against a database made from the
hub's own migrations (WAL, synchronous=NORMAL, as the hub opens it), from one
thread with nothing else running: no HTTP, no signing, no other connections. It is
the most rotations per second SQLite can commit here, whatever the server around it.

Usage: python3 bench/sso/sqlite-ceiling.py [SECONDS_PER_BATCH_SIZE]   (default 3)
Prints one line per batch size:
  RESULT batch=B rotations=N duration_s=S per_s=R us_per_rotation=U
"""

import glob
import os
import secrets
import sqlite3
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
FAMILIES = 256
FAR = 10**15

# src/oidc/grants.rs LIVE_GRANT, with SQLite's ?1 for the hub's $1.
LIVE_GRANT = (
    "g.revoked_at IS NULL AND g.expires_at > ?1 "
    "AND (g.offline = 1 OR g.session_id IS NULL OR EXISTS (SELECT 1 FROM sessions s "
    "WHERE s.id = g.session_id AND s.ended_at IS NULL AND s.expires_at > ?1))"
)


def main():
    folder = tempfile.mkdtemp(prefix="hms-sqlite-ceiling.")
    db = sqlite3.connect(os.path.join(folder, "hub.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    for path in sorted(glob.glob(os.path.join(ROOT, "migrations", "sqlite", "*.sql"))):
        db.executescript(open(path).read())
    grants = [str(uuid.uuid4()) for _ in range(FAMILIES)]
    db.execute("PRAGMA foreign_keys = OFF")  # grants reference people and clients not made here
    db.execute("BEGIN")
    for g in grants:
        db.execute(
            "INSERT INTO grants (id, client_id, person_id, session_id, scopes, auth_time, acr, amr, "
            "dpop_jkt, offline, created_at, expires_at) VALUES (?, 'c', 'p', NULL, '[]', 0, 'pwd', '[]', NULL, 1, 0, ?)",
            (g, FAR),
        )
    current = {g: secrets.token_hex(32) for g in grants}
    for g, d in current.items():
        db.execute("INSERT INTO refresh_tokens (token_digest, grant_id, created_at, expires_at) VALUES (?, ?, 0, ?)", (d, g, FAR))
    db.execute("COMMIT")
    db.execute("PRAGMA foreign_keys = ON")
    n_total = 0
    for batch in (1, 4, 16, 32):
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < SECONDS:
            family = [grants[(n_total + n + i) % FAMILIES] for i in range(batch)]
            now = int(time.time() * 1000)
            olds = [current[g] for g in family]
            marks = ", ".join(f"?{i + 2}" for i in range(batch))
            db.execute("BEGIN")
            spent = db.execute(
                f"UPDATE refresh_tokens SET used_at = ?1 WHERE used_at IS NULL AND expires_at > ?1 "
                f"AND token_digest IN ({marks}) AND EXISTS (SELECT 1 FROM grants g "
                f"WHERE g.id = refresh_tokens.grant_id AND {LIVE_GRANT}) RETURNING token_digest",
                [now] + olds,
            ).fetchall()
            assert len(spent) == batch, "every token in the batch should be live"
            values = []
            for g in family:
                current[g] = secrets.token_hex(32)
                values += [current[g], g, now, FAR]
            db.execute(
                "INSERT INTO refresh_tokens (token_digest, grant_id, created_at, expires_at) VALUES "
                + ", ".join(["(?, ?, ?, ?)"] * batch),
                values,
            )
            db.execute("COMMIT")
            n += batch
        elapsed = time.perf_counter() - started
        n_total += n
        print(f"RESULT batch={batch} rotations={n} duration_s={elapsed:.3f} per_s={n / elapsed:.0f} "
              f"us_per_rotation={elapsed / n * 1e6:.1f} sqlite={sqlite3.sqlite_version}", flush=True)
    db.close()


if __name__ == "__main__":
    main()
