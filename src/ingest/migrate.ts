// `coldtrace migrate`: copies an ingest database from one store to another (SQLite to PostgreSQL
// for a pilot that becomes a fleet; PostgreSQL to SQLite for an offline copy, which is also how
// `coldtrace verify` reads a PostgreSQL database). Every table is copied with its ids, then both
// sides are read back in the same order and their digests compared, table by table.
import { createHash } from "node:crypto"
import { UsageError, runCommand, type Values } from "../cli/args.js"
import { MIGRATE_SPEC } from "../cli/commands.js"
import pg from "pg"
import { PostgresStore, ensurePartitions } from "./store/postgres.js"
import { SqliteStore } from "./store/sqlite.js"
import { describeDb, isPostgresUrl, openStore } from "./store/open.js"
import type { IngestStore } from "./store/store.js"

type Kind = "text" | "bytea" | "bigint" | "integer" | "smallint" | "bool"

interface Table {
    name: string
    /** column name and PostgreSQL type (SQLite stores bool as 0/1) */
    cols: [string, Kind][]
    /** canonical order for copying and digests */
    order: string
    /** identity column whose sequence follows the copied ids on PostgreSQL */
    identity?: string
}

/** In foreign-key order. */
export const TABLES: Table[] = [
    {
        name: "devices",
        cols: [
            ["devid", "text"],
            ["ackkey", "bytea"],
            ["epoch_key", "bytea"],
            ["label", "text"],
            ["created", "text"],
            ["last_epoch", "bigint"],
            ["last_boot", "bigint"],
            ["retired", "text"],
            ["config_hash", "bytea"],
        ],
        order: "devid",
    },
    {
        name: "batches",
        cols: [
            ["id", "bigint"],
            ["devid", "text"],
            ["boot", "bigint"],
            ["epoch", "bigint"],
            ["first_seq", "bigint"],
            ["count", "integer"],
            ["flags", "integer"],
            ["received_at", "text"],
            ["remote", "text"],
            ["outcome", "text"],
        ],
        order: "id",
        identity: "id",
    },
    {
        name: "records",
        cols: [
            ["devid", "text"],
            ["seq", "bigint"],
            ["kind", "smallint"],
            ["bytes", "bytea"],
            ["head", "bytea"],
            ["batch_id", "bigint"],
        ],
        order: "devid, seq",
    },
    {
        name: "segments",
        cols: [
            ["devid", "text"],
            ["start_seq", "bigint"],
            ["prev_head", "bytea"],
            ["batch_id", "bigint"],
            ["gap_first", "bigint"],
            ["gap_last", "bigint"],
            ["status", "text"],
            ["explained_by", "text"],
        ],
        order: "devid, start_seq",
    },
    {
        name: "checkpoints",
        cols: [
            ["id", "bigint"],
            ["devid", "text"],
            ["seq", "bigint"],
            ["head", "bytea"],
            ["boot", "bigint"],
            ["epoch", "bigint"],
            ["status", "integer"],
            ["at", "text"],
        ],
        order: "id",
        identity: "id",
    },
    {
        name: "cosignatures",
        cols: [
            ["checkpoint_id", "bigint"],
            ["devid", "text"],
            ["seq", "bigint"],
            ["head", "bytea"],
            ["witness", "text"],
            ["status", "text"],
            ["at", "bigint"],
            ["sig", "bytea"],
            ["reason", "text"],
        ],
        order: "checkpoint_id, witness",
    },
    {
        name: "readers",
        cols: [
            ["id", "bigint"],
            ["name", "text"],
            ["key_hash", "bytea"],
            ["positions", "bool"],
            ["created", "text"],
        ],
        order: "id",
        identity: "id",
    },
]

const CHUNK = 5000
type Row = unknown[]

/** Reads a table in canonical order, a chunk at a time. */
async function* readRows(store: IngestStore, t: Table): AsyncGenerator<Row[]> {
    const cols = t.cols.map(c => c[0]).join(", ")
    if (store instanceof SqliteStore) {
        let chunk: Row[] = []
        for (const r of store.db.prepare(`SELECT ${cols} FROM ${t.name} ORDER BY ${t.order}`).raw().iterate() as Iterable<Row>) {
            chunk.push(t.cols.map(([, k], i) => (k === "bool" ? r[i] === 1 : r[i])))
            if (chunk.length === CHUNK) {
                yield chunk
                chunk = []
            }
        }
        if (chunk.length) yield chunk
        return
    }
    const pool = (store as PostgresStore).pool
    for (let offset = 0; ; offset += CHUNK) {
        const res = await pool.query({
            text: `SELECT ${cols} FROM ${t.name} ORDER BY ${t.order} LIMIT ${CHUNK} OFFSET ${offset}`,
            rowMode: "array",
        })
        if (res.rows.length) yield res.rows as Row[]
        if (res.rows.length < CHUNK) return
    }
}

async function writeRows(store: IngestStore, t: Table, rows: Row[], receivedAt: Map<number, string>): Promise<void> {
    const names = t.cols.map(c => c[0])
    if (store instanceof SqliteStore) {
        const ins = store.db.prepare(`INSERT INTO ${t.name} (${names.join(", ")}) VALUES (${names.map(() => "?").join(", ")})`)
        store.db.transaction(() => {
            for (const r of rows) ins.run(...r.map((v, i) => (t.cols[i][1] === "bool" ? (v ? 1 : 0) : v)))
        })()
        return
    }
    const pool = (store as PostgresStore).pool
    const columns = names.map((_, i) => rows.map(r => r[i]))
    const casts = t.cols.map(([, k], i) => `$${i + 1}::${k === "bool" ? "boolean" : k}[]`)
    let extraCol = ""
    let extraSel = ""
    if (t.name === "records") {
        // a migrated record is filed under the month its batch arrived in, not today
        const b = names.indexOf("batch_id")
        columns.push(rows.map(r => receivedAt.get(Number(r[b])) ?? new Date().toISOString()))
        casts.push(`$${casts.length + 1}::timestamptz[]`)
        extraCol = ", stored_at"
        extraSel = ", stored_at"
    }
    const alias = [...names, ...(extraCol ? ["stored_at"] : [])].join(", ")
    await pool.query(
        `INSERT INTO ${t.name} (${names.join(", ")}${extraCol}) SELECT ${names.join(", ")}${extraSel} FROM unnest(${casts.join(", ")}) AS u (${alias})`,
        columns,
    )
}

/** SHA-256 over a table's rows in canonical order, the same for either store. */
async function digest(store: IngestStore, t: Table): Promise<{ rows: number; sha256: string }> {
    const h = createHash("sha256")
    let rows = 0
    for await (const chunk of readRows(store, t)) {
        for (const r of chunk) {
            rows++
            h.update(JSON.stringify(r.map(v => (Buffer.isBuffer(v) ? v.toString("hex") : typeof v === "bigint" ? Number(v) : v))))
        }
    }
    return { rows, sha256: h.digest("hex") }
}

export interface MigrateReport {
    tables: { name: string; rows: number; sha256: string }[]
}

/** Copies every table from `src` to the empty `dst` and checks both hold the same rows. */
export async function copyStore(src: IngestStore, dst: IngestStore, progress: (s: string) => void = () => {}): Promise<MigrateReport> {
    if ((await dst.deviceCount()) > 0 || (await dst.listReaders()).length > 0) throw new Error("the destination database is not empty")
    const receivedAt = new Map<number, string>()
    for (const t of TABLES) {
        let n = 0
        for await (const chunk of readRows(src, t)) {
            if (t.name === "batches") for (const r of chunk) receivedAt.set(Number(r[0]), String(r[7]))
            if (t.name === "records" && dst instanceof PostgresStore) await monthsFor(dst, chunk, receivedAt)
            await writeRows(dst, t, chunk, receivedAt)
            n += chunk.length
        }
        progress(`${t.name}: ${n} rows`)
    }
    if (dst instanceof PostgresStore)
        for (const t of TABLES.filter(x => x.identity))
            await dst.pool.query(
                `SELECT setval(pg_get_serial_sequence('${t.name}', '${t.identity}'), GREATEST((SELECT max(${t.identity}) FROM ${t.name}), 1), (SELECT count(*) > 0 FROM ${t.name}))`,
            )
    const tables = []
    for (const t of TABLES) {
        const [a, b] = [await digest(src, t), await digest(dst, t)]
        if (a.rows !== b.rows || a.sha256 !== b.sha256)
            throw new Error(
                `${t.name}: the copy differs (${a.rows} rows ${a.sha256.slice(0, 12)} vs ${b.rows} rows ${b.sha256.slice(0, 12)})`,
            )
        tables.push({ name: t.name, ...a })
    }
    return { tables }
}

/** Partitions for every month the records' batches arrived in. */
async function monthsFor(dst: PostgresStore, rows: Row[], receivedAt: Map<number, string>): Promise<void> {
    const months = new Set<string>()
    for (const r of rows) months.add((receivedAt.get(Number(r[5])) ?? new Date().toISOString()).slice(0, 7))
    const c: pg.PoolClient = await dst.pool.connect()
    try {
        for (const m of months) await ensurePartitions(c, new Date(`${m}-15T00:00:00Z`))
    } finally {
        c.release()
    }
}

/** A PostgreSQL database as a SQLite file (for readers that take a file: `coldtrace verify`). */
export async function snapshotToSqlite(url: string, file: string): Promise<void> {
    const src = await PostgresStore.open(url)
    const dst = SqliteStore.open(file)
    try {
        await copyStore(src, dst)
    } finally {
        await src.close()
        await dst.close()
    }
}

export async function migrateCommand(args: string[]): Promise<number> {
    return runCommand(MIGRATE_SPEC, args, migrate)
}

async function migrate(v: Values<typeof MIGRATE_SPEC>): Promise<number> {
    if (v.from === v.to) throw new UsageError("give --from and --to, two different databases")
    if (!isPostgresUrl(v.from) && !isPostgresUrl(v.to)) console.error("coldtrace migrate: note: copying SQLite to SQLite")
    let src: IngestStore | undefined
    let dst: IngestStore | undefined
    try {
        src = await openStore(v.from)
        dst = await openStore(v.to)
        const r = await copyStore(src, dst, s => console.log(`  ${s}`))
        console.log(`migrated ${describeDb(v.from)} -> ${describeDb(v.to)}; every table reads back the same:`)
        for (const t of r.tables) console.log(`  ${t.name.padEnd(12)} ${String(t.rows).padStart(9)} rows  sha256 ${t.sha256}`)
        return 0
    } catch (e) {
        console.error(`coldtrace migrate: ${(e as Error).message.split("\n")[0]}`)
        return 1
    } finally {
        await src?.close()
        await dst?.close()
    }
}
