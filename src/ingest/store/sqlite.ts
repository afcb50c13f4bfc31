// The SQLite ingest store: one WAL-mode file, the embedded default (`npm start`, tests, a pilot).
// Several server processes may share the file: every batch is one IMMEDIATE transaction, which
// takes the file's write lock, so the check and the insert see the same state.
//
// The sync functions below (registerDevice, recordsFor, ...) are the same queries for callers that
// hold the better-sqlite3 handle directly (the simulator, tests; re-exported by ../db.ts).
import { chmodSync, closeSync, existsSync, fdatasync, fdatasyncSync, fsyncSync, openSync, readSync } from "node:fs"
import { createRequire } from "node:module"
import { endianness } from "node:os"
import { dirname } from "node:path"
import { Worker } from "node:worker_threads"
import Database from "better-sqlite3"
import { HEAD_LEN, KIND, epochKey } from "../../format/index.js"
import { checkReader, checkRegistration, kindList, newReaderKey, nowIso, readerKeyHash } from "./common.js"
import {
    RegistrationError,
    type BatchNote,
    type CheckpointRow,
    type CosignatureRow,
    type DeviceRow,
    type DeviceSummary,
    type DeviceTx,
    type IngestStore,
    type NewCheckpoint,
    type NewRecord,
    type ReaderInput,
    type ReaderRow,
    type RecordRow,
    type Registration,
    type SegmentRow,
    type Stored,
} from "./store.js"

export type Db = Database.Database

/** Versioned schema: each step runs once, in order, recorded in schema_migrations. */
interface Migration {
    version: number
    name: string
    up(db: Db): void
}

/** Version 1 is the schema before versioning (it held k0 and lockey); IF NOT EXISTS adopts such files. */
const V1 = `
CREATE TABLE IF NOT EXISTS devices (
  devid      TEXT PRIMARY KEY,
  k0         BLOB NOT NULL,
  ackkey     BLOB NOT NULL,
  lockey     BLOB,
  label      TEXT,
  created    TEXT NOT NULL,
  last_epoch INTEGER NOT NULL DEFAULT 0,
  last_boot  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS batches (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  devid       TEXT NOT NULL REFERENCES devices(devid),
  boot        INTEGER NOT NULL,
  epoch       INTEGER NOT NULL,
  first_seq   INTEGER NOT NULL,
  count       INTEGER NOT NULL,
  flags       INTEGER NOT NULL,
  received_at TEXT NOT NULL,
  remote      TEXT,
  outcome     TEXT NOT NULL             -- "200 stored N", "200 duplicate", "401 ...", "409 ...", "422 ..."
);
CREATE TABLE IF NOT EXISTS records (
  devid    TEXT NOT NULL REFERENCES devices(devid),
  seq      INTEGER NOT NULL,
  kind     INTEGER NOT NULL,
  bytes    BLOB NOT NULL,               -- canonical form
  head     BLOB NOT NULL,               -- head[seq]
  batch_id INTEGER NOT NULL REFERENCES batches(id),
  PRIMARY KEY (devid, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS segments (
  devid        TEXT NOT NULL REFERENCES devices(devid),
  start_seq    INTEGER NOT NULL,        -- first record of the segment
  prev_head    BLOB NOT NULL,           -- head[start_seq - 1] as the PREV batch stated it
  batch_id     INTEGER NOT NULL REFERENCES batches(id),
  gap_first    INTEGER NOT NULL,        -- missing seqs before the segment, as of the last store
  gap_last     INTEGER NOT NULL,        -- (gap_first > gap_last once records fill the gap)
  status       TEXT NOT NULL CHECK (status IN ('unexplained', 'explained', 'joined')),
  explained_by TEXT,                    -- JSON list of the seqs of the evicted records that cover the gap
  PRIMARY KEY (devid, start_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
  id     INTEGER PRIMARY KEY AUTOINCREMENT,
  devid  TEXT NOT NULL REFERENCES devices(devid),
  seq    INTEGER,                       -- NULL: "none yet"
  head   BLOB,                          -- head[seq], NULL with seq
  boot   INTEGER NOT NULL,
  epoch  INTEGER NOT NULL,
  status INTEGER NOT NULL,              -- the HTTP status the ack went out with (200 or 409)
  at     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS checkpoints_devid ON checkpoints (devid, id);
CREATE INDEX IF NOT EXISTS records_kind ON records (devid, kind, seq);
CREATE TABLE IF NOT EXISTS readers (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  name      TEXT NOT NULL UNIQUE,
  key_hash  BLOB NOT NULL UNIQUE,       -- SHA-256 of the key text; the key itself is never stored
  positions INTEGER NOT NULL CHECK (positions IN (0, 1)),
  created   TEXT NOT NULL
);
`

/**
 * Version 2, key custody (docs/security.md): the server keeps k[last_epoch] instead of k0, and no
 * location key. Existing devices get their current epoch key derived from the k0 being dropped.
 * The table is rebuilt (k0 and lockey gone for good; secure_delete zeroes the freed pages).
 */
function v2(db: Db): void {
    const old = db.prepare("SELECT devid, k0, last_epoch AS e FROM devices").all() as { devid: string; k0: Buffer; e: number }[]
    db.exec(`
CREATE TABLE devices_v2 (
  devid      TEXT PRIMARY KEY CHECK (length(devid) = 16), -- 16 lower-case hex digits
  ackkey     BLOB NOT NULL CHECK (length(ackkey) = 32),
  epoch_key  BLOB NOT NULL CHECK (length(epoch_key) = 32), -- k[last_epoch]; k0 itself is never kept
  label      TEXT,
  created    TEXT NOT NULL,                      -- ISO-8601 UTC
  last_epoch INTEGER NOT NULL DEFAULT 0,         -- newest key epoch of an accepted batch
  last_boot  INTEGER NOT NULL DEFAULT 0,         -- highest boot counter of an accepted batch
  retired    TEXT                                -- ISO-8601 UTC: batches refused from then on
);
INSERT INTO devices_v2 (devid, ackkey, epoch_key, label, created, last_epoch, last_boot)
  SELECT devid, ackkey, zeroblob(32), label, created, last_epoch, last_boot FROM devices;
DROP TABLE devices;
ALTER TABLE devices_v2 RENAME TO devices;
`)
    const set = db.prepare("UPDATE devices SET epoch_key = ? WHERE devid = ?")
    for (const d of old) set.run(epochKey(d.k0, d.e), d.devid)
}

const MIGRATIONS: Migration[] = [
    { version: 1, name: "initial schema", up: db => db.exec(V1) },
    { version: 2, name: "key custody: epoch key instead of k0, no lockey; retired devices", up: v2 },
    {
        version: 3,
        name: "records_kind indexes only the kinds looked up by kind (alarm, evicted): samples skip it",
        up: db =>
            db.exec(`DROP INDEX IF EXISTS records_kind;
                     CREATE INDEX records_kind ON records (devid, seq) WHERE kind IN (${KIND.alarm}, ${KIND.evicted});`),
    },
    {
        version: 4,
        name: "the provisioned configuration's hash per device (what its config records must carry)",
        up: db => db.exec("ALTER TABLE devices ADD COLUMN config_hash BLOB CHECK (config_hash IS NULL OR length(config_hash) = 16)"),
    },
    {
        version: 5,
        name: "witness cosignatures and refusals of checkpoints",
        up: db =>
            db.exec(`
CREATE TABLE cosignatures (
  checkpoint_id INTEGER NOT NULL REFERENCES checkpoints(id),
  devid         TEXT NOT NULL REFERENCES devices(devid),
  seq           INTEGER NOT NULL,
  head          BLOB NOT NULL,
  witness       TEXT NOT NULL,              -- key id of the witness
  status        TEXT NOT NULL CHECK (status IN ('cosigned', 'refused')),
  at            INTEGER NOT NULL,           -- ms since 1970 (signed with the rest when cosigned)
  sig           BLOB,                       -- Ed25519 over the cosign message
  reason        TEXT,                       -- why the witness refused
  PRIMARY KEY (checkpoint_id, witness)
);
CREATE INDEX cosignatures_devid ON cosignatures (devid, seq);`),
    },
    {
        version: 6,
        name: "records without foreign keys, as on PostgreSQL (two lookups per stored record; the rules store a record only after its batch, under the device's lock)",
        up: db =>
            db.exec(`
CREATE TABLE records_v6 (
  devid    TEXT NOT NULL,               -- a registered device: the rules store records of a device they read in the same transaction
  seq      INTEGER NOT NULL,
  kind     INTEGER NOT NULL,
  bytes    BLOB NOT NULL,               -- canonical form
  head     BLOB NOT NULL,               -- head[seq]
  batch_id INTEGER NOT NULL,            -- batches(id): inserted before its records, in the same transaction
  PRIMARY KEY (devid, seq)
) WITHOUT ROWID;
INSERT INTO records_v6 (devid, seq, kind, bytes, head, batch_id) SELECT devid, seq, kind, bytes, head, batch_id FROM records;
DROP TABLE records;
ALTER TABLE records_v6 RENAME TO records;
CREATE INDEX records_kind ON records (devid, seq) WHERE kind IN (${KIND.alarm}, ${KIND.evicted});`),
    },
]

export const SQLITE_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version

function migrate(db: Db): void {
    db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)")
    const done = new Set((db.prepare("SELECT version FROM schema_migrations").all() as { version: number }[]).map(r => r.version))
    let rebuilt = false
    for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue
        // a table rebuild must not trip the foreign keys that point at it (they are checked after)
        db.pragma("foreign_keys = OFF")
        db.transaction(() => {
            m.up(db)
            const broken = db.pragma("foreign_key_check") as unknown[]
            if (broken.length) throw new Error(`migration ${m.version} broke ${broken.length} foreign keys`)
            db.prepare("INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)").run(m.version, m.name, nowIso())
        }).immediate()
        db.pragma("foreign_keys = ON")
        rebuilt ||= m.version === 2 && done.size > 0
    }
    // an upgraded file drops the pages that held k0 and the WAL frames that still do
    if (rebuilt) {
        db.exec("VACUUM")
        db.pragma("wal_checkpoint(TRUNCATE)")
    }
}

/** Opens (creating, mode 0600) and migrates an ingest database. */
export function openDb(path: string): Db {
    // the file holds epoch and ack keys: owner only, from the first byte (WAL and SHM files inherit the mode)
    if (path !== ":memory:") {
        if (!existsSync(path)) closeSync(openSync(path, "a", 0o600))
        chmodSync(path, 0o600)
    }
    const db = new Database(path)
    db.pragma("journal_mode = WAL")
    // An ack promises the records are durably stored, so every commit is synced
    // (WAL's usual synchronous=NORMAL may lose the last commits on power loss).
    db.pragma("synchronous = FULL")
    db.pragma("foreign_keys = ON")
    // several server processes may share the file: wait for the writer instead of failing
    db.pragma("busy_timeout = 20000")
    // overwritten epoch keys and deleted rows are zeroed, not left in free pages
    db.pragma("secure_delete = ON")
    migrate(db)
    // Rollback data inside a transaction in memory: each batch's SAVEPOINT and each statement that
    // may fail half way keep the pages they change in a sub-journal, which this build (TEMP_STORE=1)
    // writes to a temporary file once it passes 64 KB, a write call per page. It is never read after
    // a crash (the WAL is what recovers), so keeping it in memory weakens nothing. After migrate():
    // VACUUM's temporary copy of the database stays on disk.
    db.pragma("temp_store = MEMORY")
    return db
}

// ---- prepared statements, one set per connection ---------------------------------------------

const cache = new WeakMap<Db, Map<string, Database.Statement>>()

function q(db: Db, sql: string): Database.Statement {
    let m = cache.get(db)
    if (!m) cache.set(db, (m = new Map()))
    let s = m.get(sql)
    if (!s) m.set(sql, (s = db.prepare(sql)))
    return s
}

// ---- devices ----------------------------------------------------------------------------------

/** Adds a device (k0 stored as its epoch-0 key). Throws RegistrationError; a devid is registered once. */
export function registerDevice(db: Db, d: Registration | (Omit<Registration, "devid"> & { devid: Buffer | string })): void {
    const r = checkRegistration(d as Registration)
    const res = q(
        db,
        "INSERT OR IGNORE INTO devices (devid, ackkey, epoch_key, label, created, config_hash) VALUES (?, ?, ?, ?, ?, ?)",
    ).run(r.devid, r.ackkey, r.k0, r.label ?? null, nowIso(), r.configHash ?? null)
    if (res.changes === 0) throw new RegistrationError(`device ${r.devid} is already registered`)
}

export function retireDevice(db: Db, devid: string): boolean {
    return q(db, "UPDATE devices SET retired = ? WHERE devid = ? AND retired IS NULL").run(nowIso(), devid).changes > 0
}

export function getDevice(db: Db, devid: string): DeviceRow | null {
    const row = q(
        db,
        `SELECT devid, label, created, last_epoch AS lastEpoch, epoch_key AS epochKey, ackkey, last_boot AS lastBoot, retired
         FROM devices WHERE devid = ?`,
    ).get(devid) as DeviceRow | undefined
    return row ?? null
}

// ---- records, segments, checkpoints -----------------------------------------------------------

/** The last stored record's seq and head, or null when nothing is stored for the device. */
export function lastStored(db: Db, devid: string): Stored | null {
    return (q(db, "SELECT seq, head FROM records WHERE devid = ? ORDER BY seq DESC LIMIT 1").get(devid) as Stored | undefined) ?? null
}

export function headAt(db: Db, devid: string, seq: number): Buffer | null {
    const row = q(db, "SELECT head FROM records WHERE devid = ? AND seq = ?").get(devid, seq) as { head: Buffer } | undefined
    return row?.head ?? null
}

/** The highest stored seq below `seq`, or -1. */
export function maxStoredBelow(db: Db, devid: string, seq: number): number {
    const row = q(db, "SELECT max(seq) AS m FROM records WHERE devid = ? AND seq < ?").get(devid, seq) as { m: number | null }
    return row.m ?? -1
}

/** Stored records of a device in seq order, optionally limited to fromSeq..toSeq (inclusive). */
export function recordsFor(db: Db, devid: string, fromSeq = 0, toSeq = 0xffffffff): RecordRow[] {
    return q(
        db,
        "SELECT seq, kind, bytes, head, batch_id AS batchId FROM records WHERE devid = ? AND seq BETWEEN ? AND ? ORDER BY seq",
    ).all(devid, fromSeq, toSeq) as RecordRow[]
}

/** Segments started by PREV batches, in seq order. */
export function segmentsFor(db: Db, devid: string): SegmentRow[] {
    const rows = q(
        db,
        `SELECT start_seq AS startSeq, prev_head AS prevHead, batch_id AS batchId, gap_first AS gapFirst,
                gap_last AS gapLast, status, explained_by AS explainedBy
         FROM segments WHERE devid = ? ORDER BY start_seq`,
    ).all(devid) as (Omit<SegmentRow, "explainedBy"> & { explainedBy: string | null })[]
    // a loop, not map with an arrow: this runs for every batch (tsx names each closure it creates, about 0.3 us)
    const out: SegmentRow[] = new Array(rows.length)
    for (let i = 0; i < rows.length; i++) {
        const r = rows[i]
        out[i] = { ...r, explainedBy: r.explainedBy ? (JSON.parse(r.explainedBy) as number[]) : [] }
    }
    return out
}

/** Segments whose gap no evicted record explains yet: what a verifier must report. */
export function unexplainedSegments(db: Db, devid: string): SegmentRow[] {
    return segmentsFor(db, devid).filter(s => s.status === "unexplained")
}

/** Every ack sent to a device, oldest first. */
export function checkpointsFor(db: Db, devid: string): CheckpointRow[] {
    return q(db, "SELECT id, seq, head, boot, epoch, status, at FROM checkpoints WHERE devid = ? ORDER BY id").all(devid) as CheckpointRow[]
}

// ---- the witness ------------------------------------------------------------------------------

export function latestCheckpoint(db: Db, devid: string): CheckpointRow | null {
    return (
        (q(
            db,
            "SELECT id, seq, head, boot, epoch, status, at FROM checkpoints WHERE devid = ? AND seq IS NOT NULL ORDER BY id DESC LIMIT 1",
        ).get(devid) as CheckpointRow | undefined) ?? null
    )
}

export function cosignaturesFor(db: Db, devid: string): CosignatureRow[] {
    return q(
        db,
        `SELECT checkpoint_id AS checkpointId, seq, head, witness, status, at, sig, reason
         FROM cosignatures WHERE devid = ? ORDER BY checkpoint_id, witness`,
    ).all(devid) as CosignatureRow[]
}

export function addCosignature(db: Db, devid: string, c: CosignatureRow): void {
    q(
        db,
        `INSERT OR IGNORE INTO cosignatures (checkpoint_id, devid, seq, head, witness, status, at, sig, reason)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(c.checkpointId, devid, c.seq, c.head, c.witness, c.status, c.at, c.sig, c.reason)
}

export function awaitingCosign(db: Db, witness: string): string[] {
    return (
        q(
            db,
            `SELECT d.devid FROM devices d
             JOIN checkpoints c ON c.id = (SELECT max(id) FROM checkpoints WHERE devid = d.devid AND seq IS NOT NULL)
             WHERE NOT EXISTS (SELECT 1 FROM cosignatures s WHERE s.checkpoint_id = c.id AND s.witness = ?) ORDER BY d.devid`,
        ).all(witness) as { devid: string }[]
    ).map(r => r.devid)
}

// ---- readers (the read API's access keys) -----------------------------------------------------

/**
 * Adds a reader and returns its new key. The key is returned only here: the database keeps its
 * SHA-256, so a lost key is replaced (removeReader, addReader), never recovered.
 */
export function addReader(db: Db, r: ReaderInput): string {
    const name = checkReader(r)
    const key = newReaderKey()
    const res = q(db, "INSERT OR IGNORE INTO readers (name, key_hash, positions, created) VALUES (?, ?, ?, ?)").run(
        name,
        readerKeyHash(key),
        r.positions ? 1 : 0,
        nowIso(),
    )
    if (res.changes === 0) throw new Error(`reader ${name} already exists`)
    return key
}

/** Removes a reader (its key stops working at once); false if there was none of that name. */
export function removeReader(db: Db, name: string): boolean {
    return q(db, "DELETE FROM readers WHERE name = ?").run(name).changes > 0
}

type RawReader = Omit<ReaderRow, "positions"> & { positions: number }
const reader = (r: RawReader): ReaderRow => ({ ...r, positions: r.positions === 1 })

/** The reader holding `key`, or null. */
export function readerByKey(db: Db, key: string): ReaderRow | null {
    const row = q(db, "SELECT id, name, positions, created FROM readers WHERE key_hash = ?").get(readerKeyHash(key)) as
        RawReader | undefined
    return row ? reader(row) : null
}

export function listReaders(db: Db): ReaderRow[] {
    return (q(db, "SELECT id, name, positions, created FROM readers ORDER BY id").all() as RawReader[]).map(reader)
}

// ---- the store --------------------------------------------------------------------------------

function deviceSummaries(db: Db, devid?: string): DeviceSummary[] {
    const sql = `SELECT d.devid, d.label, d.created, d.last_epoch AS lastEpoch, d.last_boot AS lastBoot, d.retired,
         (SELECT count(*) FROM records r WHERE r.devid = d.devid) AS records,
         (SELECT min(seq) FROM records r WHERE r.devid = d.devid) AS firstSeq,
         (SELECT max(seq) FROM records r WHERE r.devid = d.devid) AS lastSeq,
         (SELECT count(*) FROM records r WHERE r.devid = d.devid AND r.kind = ${KIND.alarm}) AS alarms,
         (SELECT max(received_at) FROM batches b WHERE b.devid = d.devid AND b.outcome LIKE '200%') AS lastUpload,
         (SELECT seq FROM checkpoints c WHERE c.devid = d.devid ORDER BY id DESC LIMIT 1) AS ackSeq
       FROM devices d ${devid ? "WHERE d.devid = ?" : ""} ORDER BY d.devid`
    return q(db, sql).all(...(devid ? [devid] : [])) as DeviceSummary[]
}

const INSERT_ROWS = 64
const ROWS_SQL: string[] = []

/** INSERT of `n` records of one device and batch (its text made once per n) */
function insertRows(db: Db, n: number): Database.Statement {
    const sql = (ROWS_SQL[n] ??=
        `INSERT INTO records (devid, seq, kind, bytes, head, batch_id) VALUES ${Array(n).fill("(@d, ?, ?, ?, ?, @b)").join(", ")}`)
    return q(db, sql)
}

class SqliteTx implements DeviceTx {
    constructor(
        private readonly db: Db,
        readonly device: DeviceRow,
    ) {}
    private get id() {
        return this.device.devid
    }
    async lastStored() {
        return lastStored(this.db, this.id)
    }
    async headAt(seq: number) {
        return headAt(this.db, this.id, seq)
    }
    async recordsBetween(fromSeq: number, toSeq: number) {
        return recordsFor(this.db, this.id, fromSeq, toSeq)
    }
    async maxStoredBelow(seq: number) {
        return maxStoredBelow(this.db, this.id, seq)
    }
    async evictedRecords() {
        return q(
            this.db,
            `SELECT seq, bytes FROM records INDEXED BY records_kind
                 WHERE devid = ? AND kind IN (${KIND.alarm}, ${KIND.evicted}) AND kind = ${KIND.evicted} ORDER BY seq`,
        ).all(this.id) as {
            seq: number
            bytes: Buffer
        }[]
    }
    async segments() {
        return segmentsFor(this.db, this.id)
    }
    async noteBatch(n: BatchNote) {
        const res = q(
            this.db,
            `INSERT INTO batches (devid, boot, epoch, first_seq, count, flags, received_at, remote, outcome)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(this.id, n.boot, n.epoch, n.firstSeq, n.count, n.flags, n.at, n.remote, n.outcome)
        return Number(res.lastInsertRowid)
    }
    async addRecords(batchId: number, records: NewRecord[]) {
        // up to 64 rows per statement: one call into SQLite instead of one per record; the device
        // and the batch are bound once per statement (@d, @b), not once per row
        const shared = { d: this.id, b: batchId }
        for (let i = 0; i < records.length; i += INSERT_ROWS) {
            const n = Math.min(INSERT_ROWS, records.length - i)
            const args: unknown[] = new Array(4 * n)
            for (let k = 0; k < n; k++) {
                const r = records[i + k]
                args[4 * k] = r.seq
                args[4 * k + 1] = r.kind
                args[4 * k + 2] = r.bytes
                args[4 * k + 3] = r.head
            }
            insertRows(this.db, n).run(...args, shared)
        }
    }
    async addSegment(startSeq: number, prevHead: Buffer, batchId: number) {
        if (prevHead.length !== HEAD_LEN) throw new RangeError(`prevHead must be ${HEAD_LEN} bytes`)
        q(
            this.db,
            `INSERT INTO segments (devid, start_seq, prev_head, batch_id, gap_first, gap_last, status)
             VALUES (?, ?, ?, ?, ?, ?, 'unexplained')`,
        ).run(this.id, startSeq, prevHead, batchId, startSeq, startSeq - 1)
    }
    async updateSegment(s: Pick<SegmentRow, "startSeq" | "gapFirst" | "gapLast" | "status" | "explainedBy">) {
        q(this.db, "UPDATE segments SET gap_first = ?, gap_last = ?, status = ?, explained_by = ? WHERE devid = ? AND start_seq = ?").run(
            s.gapFirst,
            s.gapLast,
            s.status,
            s.explainedBy.length ? JSON.stringify(s.explainedBy) : null,
            this.id,
            s.startSeq,
        )
    }
    async addCheckpoint(c: NewCheckpoint) {
        q(this.db, "INSERT INTO checkpoints (devid, seq, head, boot, epoch, status, at) VALUES (?, ?, ?, ?, ?, ?, ?)").run(
            this.id,
            c.seq,
            c.seq === null ? null : c.head,
            c.boot,
            c.epoch,
            c.status,
            c.at,
        )
    }
    async advanceDevice(a: { epoch: number; epochKey: Buffer; boot: number }) {
        q(
            this.db,
            `UPDATE devices SET
               epoch_key = CASE WHEN ? > last_epoch THEN ? ELSE epoch_key END,
               last_epoch = max(last_epoch, ?), last_boot = max(last_boot, ?)
             WHERE devid = ?`,
        ).run(a.epoch, a.epochKey, a.epoch, a.boot, this.id)
    }
}

/**
 * Group commit on the WAL (docs/ingest.md, "Durability"). The store's connection runs with
 * `synchronous = NORMAL`: a COMMIT appends its frames to the WAL without syncing it. Before a
 * write's promise resolves (before an ack is sent), fdatasync on the WAL file makes every commit
 * made until then durable: the sync works on the file, not the descriptor, so it also carries
 * frames appended by other connections before ours. One sync in flight at a time, off the main
 * thread; commits made while it runs wait for the next one, which covers them all. SQLite itself
 * still syncs the WAL before each checkpoint and the database after it (NORMAL in WAL mode), so
 * frames are never dropped from the WAL before they are durable in the database file.
 *
 * This is what `synchronous = FULL` does at each COMMIT, with fdatasync instead of fsync (this
 * SQLite build has no HAVE_FDATASYNC; fsync also waits for the file's timestamps) and with one
 * sync shared by the commits that arrive while the disk is busy.
 */
class WalSync {
    /** commits made on this connection / the highest of them known durable */
    private committed = 0
    private synced = 0
    private running: Promise<void> | null = null
    private failed: Error | null = null
    /** syncs and their ms; `mainMs`: the part made on the main thread (nothing else could run meanwhile) */
    readonly stats = { count: 0, ms: 0, mainMs: 0 }

    private constructor(private readonly fd: number) {}

    /** null when the file is not in WAL mode or has no WAL file (":memory:"): SQLite's own FULL stays */
    static open(db: Db, path: string): WalSync | null {
        if (path === ":memory:" || String(db.pragma("journal_mode", { simple: true })).toLowerCase() !== "wal") return null
        db.prepare("SELECT count(*) FROM schema_migrations").get() // a read opens (creates) the WAL
        const wal = `${path}-wal`
        if (!existsSync(wal)) return null
        const fd = openSync(wal, "r")
        try {
            // the WAL file's directory entry, once (SQLite syncs the directory of a new WAL too)
            const dir = openSync(dirname(path), "r")
            try {
                fsyncSync(dir)
            } finally {
                closeSync(dir)
            }
            fsyncSync(fd)
        } catch (e) {
            closeSync(fd)
            throw e
        }
        db.pragma("synchronous = NORMAL")
        return new WalSync(fd)
    }

    /** Call right after a COMMIT (or an autocommitted write), in the same turn: its ticket. */
    commit(): number {
        return ++this.committed
    }

    /**
     * Resolves once the commit with this ticket (and every one before it) is on disk. `idle`: no
     * other work waits for the connection, so nothing could run while the disk syncs: the sync is
     * made on the main thread (a hand-off to the thread pool and back costs more than it saves).
     */
    async durable(ticket: number = this.committed, idle = false): Promise<void> {
        while (this.synced < ticket) {
            if (this.failed) throw this.failed
            if (idle && !this.running) {
                this.flushHere()
                continue
            }
            if (!this.running) {
                const p = this.flush()
                this.running = p
                void p
                    .catch(() => {})
                    .finally(() => {
                        if (this.running === p) this.running = null
                    })
            }
            await this.running
        }
    }

    private flushHere(): void {
        const target = this.committed
        const t0 = performance.now()
        try {
            fdatasyncSync(this.fd)
        } catch (e) {
            this.failed = new Error(`fdatasync of the WAL failed, the store acks nothing more: ${(e as Error).message}`)
            throw this.failed
        }
        this.synced = target
        this.stats.count++
        const ms = performance.now() - t0
        this.stats.ms += ms
        this.stats.mainMs += ms
    }

    private async flush(): Promise<void> {
        const target = this.committed
        const t0 = performance.now()
        try {
            await new Promise<void>((resolve, reject) => fdatasync(this.fd, e => (e ? reject(e) : resolve())))
            this.synced = target
            this.stats.count++
            this.stats.ms += performance.now() - t0
        } catch (e) {
            // after a failed sync the page cache is no proof of anything: no ack from this store again
            this.failed = new Error(`fdatasync of the WAL failed, the store acks nothing more: ${(e as Error).message}`)
            throw this.failed
        }
    }

    close(): void {
        closeSync(this.fd)
    }
}

/** WAL frames that wait for a checkpoint before one runs (SQLite's own default, wal_autocheckpoint) */
const CHECKPOINT_FRAMES = 1000

/**
 * The checkpoint thread's code (plain JS: a worker does not go through the TypeScript loader). On
 * each message (the store saw `frames` waiting after a COMMIT) it reads the wal-index header from
 * the -shm file again (sqlite.org/walformat.html: mxFrame, the frames in the WAL, at offset 16;
 * nBackfill, those already copied into the database, at 96) and runs a PASSIVE checkpoint once
 * `frames` wait. stats[3] counts the messages it has handled.
 */
const CHECKPOINTER = `
const { parentPort, workerData } = require("node:worker_threads")
const { closeSync, openSync, readSync } = require("node:fs")
const { endianness } = require("node:os")
const Database = require(workerData.driver)
const db = new Database(workerData.path)
// the checkpoint syncs the WAL before it copies frames and the database file after (any level but OFF)
db.pragma("synchronous = FULL")
const shm = openSync(workerData.path + "-shm", "r")
const hdr = Buffer.alloc(100)
parentPort.on("message", m => {
    if (m === "close") {
        db.close()
        closeSync(shm)
        parentPort.close()
        return
    }
    const stats = new Float64Array(workerData.stats)
    try {
        readSync(shm, hdr, 0, hdr.length, 0)
        const u32 = at => (endianness() === "LE" ? hdr.readUInt32LE(at) : hdr.readUInt32BE(at)) // the wal-index is in native order
        if (u32(16) - u32(96) < workerData.frames) return
        const t0 = performance.now()
        const [r] = db.pragma("wal_checkpoint(PASSIVE)")
        // checkpoints, their ms and frames, where the store reads them at once (a message would wait for its event loop)
        stats[0]++
        stats[1] += performance.now() - t0
        stats[2] += r.checkpointed
    } finally {
        stats[3]++
    }
})
`

/**
 * WAL checkpoints on a thread of their own, with their own connection. SQLite's automatic
 * checkpoint runs inside the COMMIT that takes the WAL past 1,000 frames, on the store's thread:
 * the batches of that group, and every upload queued behind them, waited for it (about 5 ms: the
 * frames copied into the database file, the WAL and the file synced). Here the store's connection
 * does not checkpoint (`wal_autocheckpoint = 0`); after each COMMIT the thread is told, and once
 * 1,000 frames wait it runs the same PASSIVE checkpoint (it copies what no reader still needs and
 * never blocks the writer). A checkpoint only moves frames that are already durable in the WAL,
 * so no ack depends on it. Should the thread fail, the connection checkpoints itself again.
 *
 * The store reads the same wal-index header itself after each COMMIT (one 100-byte read) and
 * tells the thread only once `frames` wait and no message is still unhandled: a message per COMMIT
 * cost the main thread about 80 us (the post, and the thread woken on a busy machine), more than
 * the read.
 */
class Checkpointer {
    /** checkpoints run, their ms and frames, and the messages handled (written by the thread) */
    private readonly shared = new Float64Array(new SharedArrayBuffer(4 * Float64Array.BYTES_PER_ELEMENT))
    /** messages posted to the thread */
    private posted = 0
    /** the -shm file, for the wal-index header (null: the thread is told after every COMMIT) */
    private shm: number | null
    private readonly hdr = Buffer.alloc(100)
    /** the thread's error, if it stopped */
    failed: Error | null = null
    private worker: Worker | null
    private readonly exited: Promise<void>

    constructor(
        private readonly db: Db,
        path: string,
    ) {
        const driver = createRequire(import.meta.url).resolve("better-sqlite3")
        const workerData = { path, driver, frames: CHECKPOINT_FRAMES, stats: this.shared.buffer }
        try {
            this.shm = openSync(`${path}-shm`, "r")
        } catch {
            this.shm = null
        }
        const worker = new Worker(CHECKPOINTER, { eval: true, workerData })
        this.worker = worker
        worker.unref()
        worker.on("error", e => this.fallBack(e))
        this.exited = new Promise(resolve =>
            worker.once("exit", code => {
                if (this.worker === worker) this.fallBack(new Error(`the checkpoint thread exited (${code})`))
                resolve()
            }),
        )
        db.pragma("wal_autocheckpoint = 0")
    }

    /** Call after each COMMIT. */
    committed(): void {
        if (!this.worker || this.posted > this.shared[3]) return // the thread has yet to read the last message
        if (this.shm !== null) {
            // called right after a COMMIT that succeeded: a failed read must not fail it, the thread decides then
            let waiting = CHECKPOINT_FRAMES
            try {
                readSync(this.shm, this.hdr, 0, this.hdr.length, 0)
                const le = endianness() === "LE" // the wal-index is in native order
                const mxFrame = le ? this.hdr.readUInt32LE(16) : this.hdr.readUInt32BE(16)
                const nBackfill = le ? this.hdr.readUInt32LE(96) : this.hdr.readUInt32BE(96)
                waiting = mxFrame - nBackfill
            } catch {
                // the thread reads the header itself
            }
            if (waiting < CHECKPOINT_FRAMES) return
        }
        this.posted++
        this.worker.postMessage(0)
    }

    get stats(): { count: number; ms: number; frames: number } {
        return { count: this.shared[0], ms: this.shared[1], frames: this.shared[2] }
    }

    private fallBack(e: Error): void {
        this.failed ??= e
        this.worker = null
        if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${CHECKPOINT_FRAMES}`)
    }

    /** Stops the thread (after the checkpoint it runs, if any) and closes its connection. */
    async close(): Promise<void> {
        const w = this.worker
        this.worker = null
        w?.ref() // an unreferenced thread would let the process exit before it does
        w?.postMessage("close")
        await this.exited
        if (this.shm !== null) closeSync(this.shm)
        this.shm = null
    }
}

/** a rejection handler made once, not per call (tsx names each closure it creates, about 0.3 us) */
const ignore = () => {}

/** The most batches one COMMIT carries: however busy the server, the first of a group is not kept waiting long. */
const GROUP_MAX = 64

/** Device transactions committed by one COMMIT (SqliteStore.withDevice). */
class Group {
    /** the WAL commit ticket, set at the COMMIT */
    ticket = 0
    /** SQLite rolled the transaction back under a member (an I/O error): commit nothing more in it */
    broken = false
    members = 0
    resolve!: () => void
    reject!: (e: Error) => void
    readonly committed = new Promise<void>((res, rej) => {
        this.resolve = res
        this.reject = rej
    })
    constructor() {
        this.committed.catch(() => {}) // members that threw do not wait for it
    }
}

export class SqliteStore implements IngestStore {
    readonly backend = "sqlite"
    readonly commits = { count: 0, ms: 0 }
    /**
     * One connection, so this process's operations take turns: the awaits inside a transaction
     * must not let another request's statements run in it, or see what it has not committed.
     */
    private turn: Promise<unknown> = Promise.resolve()

    /** group commit on the WAL (null: SQLite syncs each commit itself, synchronous = FULL) */
    private readonly wal: WalSync | null
    /** WAL checkpoints off the store's thread (null without a WAL file: SQLite's own) */
    private readonly checkpointer: Checkpointer | null
    /** the checkpoints made by that thread */
    get walCheckpoints(): { count: number; ms: number; frames: number } {
        return this.checkpointer?.stats ?? { count: 0, ms: 0, frames: 0 }
    }
    /** the WAL syncs (fdatasync) and their ms */
    get syncs(): { count: number; ms: number; mainMs: number } {
        return this.wal?.stats ?? { count: 0, ms: 0, mainMs: 0 }
    }
    /**
     * The time device transactions held the connection (from their SAVEPOINT to its RELEASE: every
     * statement of a batch and the acceptance rules' JS between them, the COMMIT not included)
     * plus the device reads for the MAC check; for the bench's split
     */
    readonly statements = { count: 0, ms: 0 }
    /** device transactions that waited for their commit and sync after their own statements, and the ms they waited */
    readonly waits = { count: 0, ms: 0 }
    /** the open transaction that device transactions waiting their turn join (see withDevice) */
    private group: Group | null = null
    /** withDevice calls whose turn has not come yet */
    private queued = 0

    /** `path` (the file `db` was opened from) turns on the group commit, see WalSync */
    constructor(
        readonly db: Db,
        path?: string,
    ) {
        this.wal = path === undefined ? null : WalSync.open(db, path)
        this.checkpointer = this.wal && path !== undefined ? new Checkpointer(db, path) : null
    }

    static open(path: string): SqliteStore {
        return new SqliteStore(openDb(path), path)
    }

    private serial<T>(fn: () => T | Promise<T>): Promise<T> {
        const result = this.turn.then(fn, fn)
        this.turn = result.catch(ignore)
        return result
    }

    /** Commits the open group of device transactions (if any): their ticket, or the error they all get. */
    private commitGroup(): void {
        const g = this.group
        if (!g) return
        this.group = null
        const t0 = performance.now()
        try {
            if (!this.db.inTransaction) throw new Error("the transaction was rolled back by SQLite")
            this.db.exec("COMMIT")
            g.ticket = this.wal?.commit() ?? 0
            this.checkpointer?.committed()
            this.commits.count++
            this.commits.ms += performance.now() - t0
            g.resolve()
        } catch (e) {
            if (this.db.inTransaction) this.db.exec("ROLLBACK")
            g.reject(e as Error)
        }
    }

    /**
     * A read for the outside (read API, witness, health): it sees only committed state, and its
     * result comes once every commit it may have seen is durable, so nothing it shows can be lost
     * to a power cut (usually nothing to wait for).
     */
    private async read<T>(fn: () => T): Promise<T> {
        const out = await this.serial(() => {
            this.commitGroup()
            return fn()
        })
        await this.wal?.durable()
        return out
    }

    /** A write: its result once it is durable (the WAL synced past its commit). */
    private async write<T>(fn: () => T): Promise<T> {
        let ticket = 0
        const out = await this.serial(() => {
            this.commitGroup()
            const r = fn()
            ticket = this.wal?.commit() ?? 0
            this.checkpointer?.committed()
            return r
        })
        await this.wal?.durable(ticket)
        return out
    }

    registerDevice(r: Registration) {
        return this.write(() => registerDevice(this.db, r))
    }
    retireDevice(devid: string) {
        return this.write(() => retireDevice(this.db, devid))
    }
    /** for the MAC check only (it may see a batch of the open group, which is stored or fails with it) */
    device(devid: string) {
        return this.serial(() => {
            const t0 = performance.now()
            const d = getDevice(this.db, devid)
            this.statements.ms += performance.now() - t0
            return d
        })
    }

    /**
     * One device transaction. Transactions take turns on the one connection; when more are waiting
     * for their turn, the next joins this one's open SQLite transaction instead of committing it:
     * each runs in its own SAVEPOINT (an error rolls back only its own writes), and the last of the
     * group commits for all (group commit: one COMMIT, one set of page writes, one WAL sync for
     * several batches). None of them returns before that commit and the WAL sync after it, so no
     * ack goes out for anything that is not durably stored; a failed COMMIT fails them all.
     */
    async withDevice<T>(devid: string, fn: (tx: DeviceTx) => Promise<T>): Promise<T | null> {
        let joined: Group | null = null
        this.queued++
        const out = await this.serial(async () => {
            this.queued--
            const t0 = performance.now()
            if (!this.group) {
                this.db.exec("BEGIN IMMEDIATE")
                this.group = new Group()
            }
            const g = (joined = this.group)
            let saved = false
            try {
                this.db.exec("SAVEPOINT batch")
                saved = true
                const device = getDevice(this.db, devid)
                const out = device ? await fn(new SqliteTx(this.db, device)) : null
                this.db.exec("RELEASE batch")
                return out
            } catch (e) {
                if (!saved) throw e
                if (this.db.inTransaction) {
                    this.db.exec("ROLLBACK TO batch")
                    this.db.exec("RELEASE batch")
                } else g.broken = true
                throw e
            } finally {
                this.statements.count++
                this.statements.ms += performance.now() - t0
                // the last one waiting (or a broken transaction) commits; otherwise the next joins
                if (this.queued === 0 || ++g.members >= GROUP_MAX || g.broken || !this.db.inTransaction) this.commitGroup()
            }
        })
        const t0 = performance.now()
        await joined!.committed
        await this.wal?.durable(joined!.ticket, this.queued === 0 && this.group === null)
        this.waits.count++
        this.waits.ms += performance.now() - t0
        return out
    }

    deviceCount() {
        return this.read(() => (q(this.db, "SELECT count(*) AS n FROM devices").get() as { n: number }).n)
    }
    devices(devid?: string) {
        return this.read(() => deviceSummaries(this.db, devid))
    }
    records(devid: string, fromSeq: number, toSeq: number, limit: number) {
        return this.read(
            () =>
                q(this.db, "SELECT seq, kind, bytes FROM records WHERE devid = ? AND seq BETWEEN ? AND ? ORDER BY seq LIMIT ?").all(
                    devid,
                    fromSeq,
                    toSeq,
                    limit,
                ) as { seq: number; kind: number; bytes: Buffer }[],
        )
    }
    recordsOfKinds(devid: string, kinds: number[]) {
        // literal kinds, so the planner sees they match the partial index
        const marks = kindList(kinds)
        return this.read(
            () =>
                q(
                    this.db,
                    `SELECT seq, kind, bytes FROM records ${marks === `${KIND.alarm}, ${KIND.evicted}` ? "INDEXED BY records_kind" : ""}
                   WHERE devid = ? AND kind IN (${marks}) ORDER BY seq`,
                ).all(devid) as {
                    seq: number
                    kind: number
                    bytes: Buffer
                }[],
        )
    }
    segments(devid: string) {
        return this.read(() => segmentsFor(this.db, devid))
    }
    checkpoints(devid: string) {
        return this.read(() => checkpointsFor(this.db, devid))
    }
    latestCheckpoint(devid: string) {
        return this.read(() => latestCheckpoint(this.db, devid))
    }
    cosignatures(devid: string) {
        return this.read(() => cosignaturesFor(this.db, devid))
    }
    addCosignature(devid: string, c: CosignatureRow) {
        return this.write(() => addCosignature(this.db, devid, c))
    }
    awaitingCosign(witness: string) {
        return this.read(() => awaitingCosign(this.db, witness))
    }
    addReader(r: ReaderInput) {
        return this.write(() => addReader(this.db, r))
    }
    removeReader(name: string) {
        return this.write(() => removeReader(this.db, name))
    }
    readerByKey(key: string) {
        return this.read(() => readerByKey(this.db, key))
    }
    listReaders() {
        return this.read(() => listReaders(this.db))
    }
    async close() {
        await this.serial(async () => {
            if (!this.db.open) return
            this.commitGroup()
            // the sync in flight and the commits after it (nothing commits while this runs)
            await this.wal?.durable().catch(() => {})
            // the checkpoint thread's connection first: the last one to close checkpoints and removes the WAL
            await this.checkpointer?.close()
            this.db.close()
            this.wal?.close()
        })
    }
}
