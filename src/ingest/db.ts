// The ingest store: known devices, every accepted record with its chain head,
// and a log of authenticated batches.
import Database from "better-sqlite3";
import { DEVKEY_LEN, devidHex } from "../format/index.js";

export type Db = Database.Database;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS devices (
  devid   TEXT PRIMARY KEY,           -- 16 lower-case hex digits
  key     BLOB NOT NULL,              -- devkey, 32 bytes
  label   TEXT,
  created TEXT NOT NULL               -- ISO-8601 UTC
);
CREATE TABLE IF NOT EXISTS batches (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  devid       TEXT NOT NULL REFERENCES devices(devid),
  first_seq   INTEGER NOT NULL,
  count       INTEGER NOT NULL,
  received_at TEXT NOT NULL,
  remote      TEXT,
  outcome     TEXT NOT NULL           -- "200 stored N", "409 ...", "422 ..."
);
CREATE TABLE IF NOT EXISTS records (
  devid    TEXT NOT NULL REFERENCES devices(devid),
  seq      INTEGER NOT NULL,
  kind     INTEGER NOT NULL,
  bytes    BLOB NOT NULL,             -- canonical form
  head     BLOB NOT NULL,             -- head[seq]
  batch_id INTEGER NOT NULL REFERENCES batches(id),
  PRIMARY KEY (devid, seq)
) WITHOUT ROWID;
`;

export function openDb(path: string): Db {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  // An ack promises the records are durably stored, so every commit is synced
  // (WAL's usual synchronous=NORMAL may lose the last commits on power loss).
  db.pragma("synchronous = FULL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  db.exec(SCHEMA);
  return db;
}

export interface DeviceRow {
  devid: string;
  key: Buffer;
  label: string | null;
  created: string;
}

/** Adds a device. A devid is registered once: a second key for it would fork its history. */
export function registerDevice(db: Db, devid: Buffer | string, key: Buffer, label?: string): void {
  const id = devidHex(devid);
  if (key.length !== DEVKEY_LEN) throw new RangeError(`devkey must be ${DEVKEY_LEN} bytes, got ${key.length}`);
  const res = db
    .prepare("INSERT OR IGNORE INTO devices (devid, key, label, created) VALUES (?, ?, ?, ?)")
    .run(id, key, label ?? null, new Date().toISOString());
  if (res.changes === 0) throw new Error(`device ${id} is already registered`);
}

export function getDevice(db: Db, devid: string): DeviceRow | null {
  return (db.prepare("SELECT devid, key, label, created FROM devices WHERE devid = ?").get(devid) as DeviceRow | undefined) ?? null;
}

export interface Stored {
  seq: number;
  head: Buffer;
}

/** The last stored record's seq and head, or null when nothing is stored for the device. */
export function lastStored(db: Db, devid: string): Stored | null {
  const row = db
    .prepare("SELECT seq, head FROM records WHERE devid = ? ORDER BY seq DESC LIMIT 1")
    .get(devid) as Stored | undefined;
  return row ?? null;
}

export function headAt(db: Db, devid: string, seq: number): Buffer | null {
  const row = db.prepare("SELECT head FROM records WHERE devid = ? AND seq = ?").get(devid, seq) as
    | { head: Buffer }
    | undefined;
  return row?.head ?? null;
}

export interface RecordRow {
  seq: number;
  kind: number;
  bytes: Buffer;
  head: Buffer;
  batchId: number;
}

/** Stored records of a device in seq order, optionally limited to fromSeq..toSeq (inclusive). */
export function recordsFor(db: Db, devid: string, fromSeq = 0, toSeq = 0xffffffff): RecordRow[] {
  return db
    .prepare(
      "SELECT seq, kind, bytes, head, batch_id AS batchId FROM records WHERE devid = ? AND seq BETWEEN ? AND ? ORDER BY seq",
    )
    .all(devid, fromSeq, toSeq) as RecordRow[];
}
