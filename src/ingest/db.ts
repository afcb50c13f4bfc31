// The ingest store: known devices with their keys and the newest epoch and boot
// accepted from them, every accepted record with its chain head, the segments that
// PREV batches started, every acknowledgement sent (checkpoints), a log of
// authenticated batches, and the read API's readers (their keys only as SHA-256).
import { createHash, randomBytes } from "node:crypto"
import Database from "better-sqlite3"
import { HEAD_LEN, KEY_LEN, KIND, devidHex } from "../format/index.js"

export type Db = Database.Database

const SCHEMA = `
CREATE TABLE IF NOT EXISTS devices (
  devid      TEXT PRIMARY KEY,          -- 16 lower-case hex digits
  k0         BLOB NOT NULL,             -- initial MAC key, 32 bytes
  ackkey     BLOB NOT NULL,             -- 32 bytes
  lockey     BLOB,                      -- 32 bytes, only if this server may see routes
  label      TEXT,
  created    TEXT NOT NULL,             -- ISO-8601 UTC
  last_epoch INTEGER NOT NULL DEFAULT 0, -- newest key epoch of a stored batch
  last_boot  INTEGER NOT NULL DEFAULT 0  -- highest boot counter of a stored batch
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
  outcome     TEXT NOT NULL             -- "200 stored N", "401 epoch went back ...", "409 ...", "422 ..."
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
  positions INTEGER NOT NULL CHECK (positions IN (0, 1)), -- may see decrypted positions
  created   TEXT NOT NULL
);
`

export function openDb(path: string): Db {
    const db = new Database(path)
    db.pragma("journal_mode = WAL")
    // An ack promises the records are durably stored, so every commit is synced
    // (WAL's usual synchronous=NORMAL may lose the last commits on power loss).
    db.pragma("synchronous = FULL")
    db.pragma("foreign_keys = ON")
    db.pragma("busy_timeout = 5000")
    db.exec(SCHEMA)
    return db
}

export interface DeviceRow {
    devid: string
    k0: Buffer
    ackkey: Buffer
    lockey: Buffer | null
    label: string | null
    created: string
    lastEpoch: number
    lastBoot: number
}

export interface DeviceInput {
    devid: Buffer | string
    k0: Buffer
    ackkey: Buffer
    lockey?: Buffer | null
    label?: string
}

/** Adds a device. A devid is registered once: a second key for it would fork its history. */
export function registerDevice(db: Db, d: DeviceInput): void {
    const id = devidHex(d.devid)
    for (const [name, k] of [
        ["k0", d.k0],
        ["ackkey", d.ackkey],
        ["lockey", d.lockey],
    ] as const) {
        if (k === undefined || k === null) {
            if (name === "lockey") continue
            throw new RangeError(`${name} is required`)
        }
        if (!Buffer.isBuffer(k) || k.length !== KEY_LEN) throw new RangeError(`${name} must be ${KEY_LEN} bytes, got ${k?.length}`)
    }
    const res = db
        .prepare("INSERT OR IGNORE INTO devices (devid, k0, ackkey, lockey, label, created) VALUES (?, ?, ?, ?, ?, ?)")
        .run(id, d.k0, d.ackkey, d.lockey ?? null, d.label ?? null, new Date().toISOString())
    if (res.changes === 0) throw new Error(`device ${id} is already registered`)
}

export function getDevice(db: Db, devid: string): DeviceRow | null {
    const row = db
        .prepare(
            `SELECT devid, k0, ackkey, lockey, label, created, last_epoch AS lastEpoch, last_boot AS lastBoot
       FROM devices WHERE devid = ?`,
        )
        .get(devid) as DeviceRow | undefined
    return row ?? null
}

export interface Stored {
    seq: number
    head: Buffer
}

/** The last stored record's seq and head, or null when nothing is stored for the device. */
export function lastStored(db: Db, devid: string): Stored | null {
    const row = db.prepare("SELECT seq, head FROM records WHERE devid = ? ORDER BY seq DESC LIMIT 1").get(devid) as Stored | undefined
    return row ?? null
}

export function headAt(db: Db, devid: string, seq: number): Buffer | null {
    const row = db.prepare("SELECT head FROM records WHERE devid = ? AND seq = ?").get(devid, seq) as { head: Buffer } | undefined
    return row?.head ?? null
}

/** The highest stored seq below `seq`, or -1. */
export function maxStoredBelow(db: Db, devid: string, seq: number): number {
    const row = db.prepare("SELECT max(seq) AS m FROM records WHERE devid = ? AND seq < ?").get(devid, seq) as { m: number | null }
    return row.m ?? -1
}

export interface RecordRow {
    seq: number
    kind: number
    bytes: Buffer
    head: Buffer
    batchId: number
}

/** Stored records of a device in seq order, optionally limited to fromSeq..toSeq (inclusive). */
export function recordsFor(db: Db, devid: string, fromSeq = 0, toSeq = 0xffffffff): RecordRow[] {
    return db
        .prepare("SELECT seq, kind, bytes, head, batch_id AS batchId FROM records WHERE devid = ? AND seq BETWEEN ? AND ? ORDER BY seq")
        .all(devid, fromSeq, toSeq) as RecordRow[]
}

export type SegmentStatus = "unexplained" | "explained" | "joined"

export interface SegmentRow {
    startSeq: number
    prevHead: Buffer
    batchId: number
    /** the seqs missing before the segment: gapFirst..gapLast (empty once joined) */
    gapFirst: number
    gapLast: number
    status: SegmentStatus
    /** seqs of the evicted records whose ranges cover the gap */
    explainedBy: number[]
}

/** Segments started by PREV batches, in seq order. */
export function segmentsFor(db: Db, devid: string): SegmentRow[] {
    const rows = db
        .prepare(
            `SELECT start_seq AS startSeq, prev_head AS prevHead, batch_id AS batchId, gap_first AS gapFirst,
              gap_last AS gapLast, status, explained_by AS explainedBy
       FROM segments WHERE devid = ? ORDER BY start_seq`,
        )
        .all(devid) as (Omit<SegmentRow, "explainedBy"> & { explainedBy: string | null })[]
    return rows.map(r => ({ ...r, explainedBy: r.explainedBy ? (JSON.parse(r.explainedBy) as number[]) : [] }))
}

/** Segments whose gap no evicted record explains yet: what a verifier must report. */
export function unexplainedSegments(db: Db, devid: string): SegmentRow[] {
    return segmentsFor(db, devid).filter(s => s.status === "unexplained")
}

export function addSegment(db: Db, devid: string, startSeq: number, prevHead: Buffer, batchId: number): void {
    if (prevHead.length !== HEAD_LEN) throw new RangeError(`prevHead must be ${HEAD_LEN} bytes`)
    db.prepare(
        `INSERT INTO segments (devid, start_seq, prev_head, batch_id, gap_first, gap_last, status)
     VALUES (?, ?, ?, ?, ?, ?, 'unexplained')`,
    ).run(devid, startSeq, prevHead, batchId, startSeq, startSeq - 1)
}

interface Range {
    seq: number
    first: number
    last: number
}

/** The ranges the stored evicted records name (only ranges before their own seq count). */
function evictedRanges(db: Db, devid: string): Range[] {
    const rows = db.prepare("SELECT seq, bytes FROM records WHERE devid = ? AND kind = ? ORDER BY seq").all(devid, KIND.evicted) as {
        seq: number
        bytes: Buffer
    }[]
    return rows
        .filter(r => r.bytes.length === 40) // canonical evicted record: 6 + 34
        .map(r => ({ seq: r.seq, first: r.bytes.readUInt32LE(10), last: r.bytes.readUInt32LE(14) }))
        .filter(r => r.first <= r.last && r.last < r.seq)
}

/**
 * Re-evaluates every segment of a device that is not joined yet: its gap is the
 * seqs between the highest stored record below it and its start. A gap that
 * records have filled is `joined`; one that stored evicted records cover seq for
 * seq (together, one per evicted block) is `explained`; anything else stays
 * `unexplained`. Run inside the transaction that stored the records.
 */
export function refreshSegments(db: Db, devid: string): void {
    const open = db
        .prepare("SELECT start_seq AS startSeq FROM segments WHERE devid = ? AND status != 'joined' ORDER BY start_seq")
        .all(devid) as { startSeq: number }[]
    if (open.length === 0) return
    const ranges = evictedRanges(db, devid)
    const update = db.prepare(
        "UPDATE segments SET gap_first = ?, gap_last = ?, status = ?, explained_by = ? WHERE devid = ? AND start_seq = ?",
    )
    for (const { startSeq } of open) {
        const gapFirst = maxStoredBelow(db, devid, startSeq) + 1
        const gapLast = startSeq - 1
        if (gapFirst > gapLast) {
            update.run(gapFirst, gapLast, "joined", null, devid, startSeq)
            continue
        }
        // walk the gap: each step takes the evicted range that reaches furthest from the next missing seq
        let next = gapFirst
        const used: number[] = []
        while (next <= gapLast) {
            let best: Range | null = null
            for (const r of ranges) if (r.first <= next && r.last >= next && (!best || r.last > best.last)) best = r
            if (!best) break
            used.push(best.seq)
            next = best.last + 1
        }
        const explained = next > gapLast
        update.run(gapFirst, gapLast, explained ? "explained" : "unexplained", explained ? JSON.stringify(used) : null, devid, startSeq)
    }
}

/**
 * The end of the contiguous stored run that holds `seq` (a stored seq): the
 * record before the next gap, or the last stored record.
 */
export function runEnd(db: Db, devid: string, seq: number): number {
    const gap = db
        .prepare("SELECT gap_first AS g FROM segments WHERE devid = ? AND status != 'joined' AND start_seq > ? ORDER BY start_seq LIMIT 1")
        .get(devid, seq) as { g: number } | undefined
    if (gap) return gap.g - 1
    return lastStored(db, devid)?.seq ?? seq
}

export interface CheckpointRow {
    id: number
    seq: number | null
    head: Buffer | null
    boot: number
    epoch: number
    status: number
    at: string
}

/** Every ack sent to a device, oldest first. */
export function checkpointsFor(db: Db, devid: string): CheckpointRow[] {
    return db
        .prepare("SELECT id, seq, head, boot, epoch, status, at FROM checkpoints WHERE devid = ? ORDER BY id")
        .all(devid) as CheckpointRow[]
}

// ---- readers (the read API's access keys) -----------------------------------------------------

export interface ReaderInput {
    /** who holds the key (shown in logs instead of the key); unique */
    name: string
    /** true: may see decrypted positions (where the server holds the device's lockey) */
    positions: boolean
}

export interface ReaderRow {
    id: number
    name: string
    positions: boolean
    created: string
}

/** Reader keys: "ctr_" and 32 random bytes in base64url (47 characters). */
export const READER_KEY_PREFIX = "ctr_"

export function readerKeyHash(key: string): Buffer {
    return createHash("sha256").update(key, "utf8").digest()
}

/**
 * Adds a reader and returns its new key. The key is returned only here: the database
 * keeps its SHA-256, so a lost key is replaced (removeReader, addReader), never recovered.
 */
export function addReader(db: Db, r: ReaderInput): string {
    const name = typeof r.name === "string" ? r.name.trim() : ""
    if (!name || name.length > 100 || /[^\x20-\x7e]/.test(name))
        throw new RangeError("reader name must be 1..100 printable ASCII characters")
    if (typeof r.positions !== "boolean") throw new RangeError("positions must be true or false")
    const key = READER_KEY_PREFIX + randomBytes(32).toString("base64url")
    const res = db
        .prepare("INSERT OR IGNORE INTO readers (name, key_hash, positions, created) VALUES (?, ?, ?, ?)")
        .run(name, readerKeyHash(key), r.positions ? 1 : 0, new Date().toISOString())
    if (res.changes === 0) throw new Error(`reader ${name} already exists`)
    return key
}

/** Removes a reader (its key stops working at once); false if there was none of that name. */
export function removeReader(db: Db, name: string): boolean {
    return db.prepare("DELETE FROM readers WHERE name = ?").run(name).changes > 0
}

/** The reader holding `key`, or null. */
export function readerByKey(db: Db, key: string): ReaderRow | null {
    const row = db.prepare("SELECT id, name, positions, created FROM readers WHERE key_hash = ?").get(readerKeyHash(key)) as
        (Omit<ReaderRow, "positions"> & { positions: number }) | undefined
    return row ? { ...row, positions: row.positions === 1 } : null
}

export function listReaders(db: Db): ReaderRow[] {
    const rows = db.prepare("SELECT id, name, positions, created FROM readers ORDER BY id").all() as (Omit<ReaderRow, "positions"> & {
        positions: number
    })[]
    return rows.map(r => ({ ...r, positions: r.positions === 1 }))
}
