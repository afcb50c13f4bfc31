// `--db`: a PostgreSQL URL opens the PostgreSQL store, anything else is a SQLite file path.
import { PostgresStore, type PostgresOptions } from "./postgres.js"
import { SqliteStore } from "./sqlite.js"
import type { IngestStore } from "./store.js"

export function isPostgresUrl(db: string): boolean {
    return /^postgres(ql)?:\/\//.test(db)
}

export async function openStore(db: string, o: PostgresOptions = {}): Promise<IngestStore> {
    return isPostgresUrl(db) ? PostgresStore.open(db, o) : SqliteStore.open(db)
}

/** The URL or path with any password masked, fit for a log line. */
export function describeDb(db: string): string {
    if (!isPostgresUrl(db)) return db
    try {
        const u = new URL(db)
        if (u.password) u.password = "***"
        return u.toString()
    } catch {
        return "postgres://(unparsable url)"
    }
}
