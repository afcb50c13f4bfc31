// Where `coldtrace verify` gets a log from: the ingest server's SQLite database, or a device's
// flash export (device-export.json), each with the device's keys file (device-secret.json, the
// escrow of k0 and lockey). The server holds neither k0 nor lockey (docs/security.md), only the
// key of the newest epoch it accepted: the verifier checks that it is the one k0 evolves to.
import { readFileSync } from "node:fs"
import Database from "better-sqlite3"
import { UsageError } from "../cli/args.js"
import { HEAD_LEN, KEY_LEN, epochKey, macEquals, readFlashLog } from "../format/index.js"
import { EXPORT_FORMAT, type DeviceExportFile } from "../sim/export.js"
import { WITNESS_LOG_FORMAT, keyId, verifyCosignature, witnessLogFromDb, type WitnessLog } from "../witness/witness.js"
import type { Checkpoint, HeadClaim, LogEntry, OtherDevice, Problem, VerifyInput } from "./verify.js"

const DEVID_HEX = /^[0-9a-f]{16}$/

/** The device's secrets as the verifier needs them. */
export interface VerifyKeys {
    devid: string
    k0: Buffer
    lockey: Buffer | null
    /** the provisioned configuration's hash (the config record's 16 bytes), when the escrow keeps it */
    configHash: Buffer | null
    /** the alarm band the logger was provisioned with (the escrowed config's low/high), when it keeps one */
    band?: { low: number; high: number } | null
}

/** low/high of the escrowed configuration text, or null when it has none that reads as a band */
function escrowedBand(config: unknown): { low: number; high: number } | null {
    if (typeof config !== "string") return null
    try {
        const c = JSON.parse(config) as { low?: unknown; high?: unknown }
        return typeof c.low === "number" && typeof c.high === "number" && c.low < c.high ? { low: c.low, high: c.high } : null
    } catch {
        return null
    }
}

function hexKey(v: unknown, bytes: number, name: string, file: string): Buffer {
    if (typeof v !== "string" || !new RegExp(`^[0-9a-fA-F]{${2 * bytes}}$`).test(v)) {
        throw new UsageError(`${file}: ${name} must be ${2 * bytes} hex digits`)
    }
    return Buffer.from(v, "hex")
}

function readJson(file: string, what: string): unknown {
    let text: string
    try {
        text = readFileSync(file, "utf8")
    } catch (e) {
        throw new UsageError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
    }
    try {
        return JSON.parse(text)
    } catch (e) {
        throw new UsageError(`${file} is not JSON: ${(e as Error).message}`)
    }
}

/** `device-secret.json`: {devid, k0, ackkey, lockey} in hex (only devid and k0 are required here). */
export function loadKeys(file: string): VerifyKeys {
    const j = readJson(file, "keys file") as Record<string, unknown> | null
    if (!j || typeof j !== "object") throw new UsageError(`${file}: not a keys file (expected {devid, k0, ...})`)
    if (typeof j.devid !== "string" || !DEVID_HEX.test(j.devid)) throw new UsageError(`${file}: devid must be 16 lower-case hex digits`)
    return {
        devid: j.devid,
        k0: hexKey(j.k0, KEY_LEN, "k0", file),
        lockey: j.lockey === undefined || j.lockey === null || j.lockey === "" ? null : hexKey(j.lockey, KEY_LEN, "lockey", file),
        configHash: j.configHash === undefined || j.configHash === null ? null : hexKey(j.configHash, 16, "configHash", file),
        band: escrowedBand(j.config),
    }
}

/** `--checkpoint seq:headhex:boot` */
export function parseCheckpointArg(v: string): Checkpoint {
    const m = /^(\d+):([0-9a-fA-F]{64}):(\d+)$/.exec(v)
    if (!m) throw new UsageError(`--checkpoint ${JSON.stringify(v)}: expected seq:head:boot (head = 64 hex digits)`)
    const seq = Number(m[1])
    if (seq > 0xfffffffe) throw new UsageError(`--checkpoint: seq ${seq} out of range`)
    return { seq, head: Buffer.from(m[2], "hex"), boot: Number(m[3]) }
}

// ---------------------------------------------------------------- ingest database

export interface OpenDb {
    db: Database.Database
    file: string
    devices: string[]
    close(): void
}

export function openIngestDb(file: string): OpenDb {
    let db: Database.Database
    try {
        db = new Database(file, { readonly: true, fileMustExist: true })
    } catch (e) {
        throw new UsageError(`cannot open database ${file}: ${(e as Error).message}`)
    }
    let devices: string[]
    try {
        devices = (db.prepare("SELECT devid FROM devices ORDER BY devid").all() as { devid: string }[]).map(r => r.devid)
        db.prepare("SELECT seq, bytes, head FROM records LIMIT 0").all()
        db.prepare("SELECT seq, head, boot, epoch FROM checkpoints LIMIT 0").all()
    } catch (e) {
        db.close()
        throw new UsageError(`${file} is not a coldtrace ingest database: ${(e as Error).message}`)
    }
    return { db, file, devices, close: () => db.close() }
}

/** The device to verify: the one named, or the only one in the database. */
export function pickDevice(d: OpenDb, devid?: string): string {
    if (devid !== undefined) {
        if (!DEVID_HEX.test(devid)) throw new UsageError(`--device ${JSON.stringify(devid)}: expected 16 lower-case hex digits`)
        if (!d.devices.includes(devid))
            throw new UsageError(`device ${devid} is not in ${d.file} (it holds ${d.devices.length ? d.devices.join(", ") : "no device"})`)
        return devid
    }
    if (d.devices.length === 1) return d.devices[0]
    if (!d.devices.length) throw new UsageError(`${d.file} holds no device`)
    throw new UsageError(`${d.file} holds ${d.devices.length} devices (${d.devices.join(", ")}): name one with --device`)
}

/** The key the server holds for a device: k[epoch] (schema 2), or k0 itself in a database of schema 1. */
interface ServerKey {
    epoch: number
    key: Buffer
}

function serverKey(d: OpenDb, devid: string): ServerKey {
    const cols = (d.db.prepare("SELECT name FROM pragma_table_info('devices')").all() as { name: string }[]).map(c => c.name)
    const sql = cols.includes("epoch_key")
        ? "SELECT last_epoch AS epoch, epoch_key AS key FROM devices WHERE devid = ?"
        : "SELECT 0 AS epoch, k0 AS key FROM devices WHERE devid = ?"
    const row = d.db.prepare(sql).get(devid) as ServerKey | undefined
    if (!row) throw new UsageError(`device ${devid} is not in ${d.file}`)
    return row
}

/**
 * A finding when the server's stored key is not k[epoch] derived from the escrowed k0: the
 * server's key was replaced or the device registered with other keys (the batches it accepted
 * were then checked under a key the device never had).
 */
export function keyProblems(d: OpenDb, devid: string, k0: Buffer): Problem[] {
    const held = serverKey(d, devid)
    if (!Buffer.isBuffer(held.key) || held.key.length !== KEY_LEN || held.epoch < 0 || held.epoch > 1 << 22)
        return [{ seq: 0, kind: "bad-key", detail: `the server's stored key for epoch ${held.epoch} is malformed` }]
    if (macEquals(epochKey(k0, held.epoch), held.key)) return []
    return [
        {
            seq: 0,
            kind: "bad-key",
            detail: `the server's stored key for epoch ${held.epoch} is not the one the escrowed k0 evolves to: it checked batches under another key`,
        },
    ]
}

/** The configuration hash the server was given at registration (schema 4 on), or null. */
export function dbConfigHash(d: OpenDb, devid: string): Buffer | null {
    const cols = (d.db.prepare("SELECT name FROM pragma_table_info('devices')").all() as { name: string }[]).map(c => c.name)
    if (!cols.includes("config_hash")) return null
    const row = d.db.prepare("SELECT config_hash AS h FROM devices WHERE devid = ?").get(devid) as { h: Buffer | null } | undefined
    return row && Buffer.isBuffer(row.h) && row.h.length === 16 ? row.h : null
}

/** The provisioned configuration as the escrow and the server state it. */
export function provisionedConfig(keys: VerifyKeys, server: Buffer | null): { hash: Buffer; what: string }[] {
    return [
        ...(keys.configHash ? [{ hash: keys.configHash, what: "the escrow keys file" }] : []),
        ...(server ? [{ hash: server, what: "the server's registration" }] : []),
    ]
}

/** Every checkpoint the server acknowledged to the device ("none yet" acks left out). */
export function dbCheckpoints(d: OpenDb, devid: string): Checkpoint[] {
    const rows = d.db
        .prepare("SELECT seq, head, boot, epoch FROM checkpoints WHERE devid = ? AND seq IS NOT NULL AND head IS NOT NULL ORDER BY id")
        .all(devid) as { seq: number; head: Buffer; boot: number; epoch: number }[]
    return rows.filter(r => Buffer.isBuffer(r.head) && r.head.length === HEAD_LEN)
}

export function dbRecords(d: OpenDb, devid: string): LogEntry[] {
    return (
        d.db.prepare("SELECT seq, bytes, head FROM records WHERE devid = ? ORDER BY seq").all(devid) as {
            seq: number
            bytes: Buffer
            head: Buffer | null
        }[]
    ).map(r => ({
        seq: r.seq,
        bytes: Buffer.isBuffer(r.bytes) ? r.bytes : Buffer.alloc(0),
        ...(Buffer.isBuffer(r.head) && r.head.length === HEAD_LEN ? { head: r.head } : {}),
    }))
}

/** The other devices of the database, their records looked up on demand (to recognise a splice). */
function dbOthers(d: OpenDb, devid: string): OtherDevice[] {
    const get = d.db.prepare("SELECT seq, bytes, head FROM records WHERE devid = ? AND seq = ?")
    return d.devices
        .filter(x => x !== devid)
        .map(x => {
            return { devid: x, records: (seq: number) => get.get(x, seq) as LogEntry | undefined }
        })
}

/** The server's copy of a device's log, its checkpoints and PREV segments, verified with the escrowed keys. */
export function dbInput(d: OpenDb, devid: string, keys: VerifyKeys): VerifyInput {
    let segments: { startSeq: number; prevHead: Buffer }[] = []
    try {
        segments = d.db
            .prepare("SELECT start_seq AS startSeq, prev_head AS prevHead FROM segments WHERE devid = ?")
            .all(devid) as typeof segments
    } catch {
        /* an older database without segments */
    }
    return {
        devid,
        k0: keys.k0,
        lockey: keys.lockey,
        source: "server",
        records: dbRecords(d, devid),
        segments,
        checkpoints: dbCheckpoints(d, devid),
        others: dbOthers(d, devid),
        problems: keyProblems(d, devid, keys.k0),
        provisioned: provisionedConfig(keys, dbConfigHash(d, devid)),
    }
}

/** What the server holds that a device log is checked against. */
export function dbReference(
    d: OpenDb,
    devid: string,
    keys: VerifyKeys,
): Pick<VerifyInput, "checkpoints" | "serverHeads" | "others" | "problems" | "provisioned"> {
    const serverHeads = dbRecords(d, devid).flatMap(r => (r.head ? [{ seq: r.seq, head: r.head }] : []))
    return {
        checkpoints: dbCheckpoints(d, devid),
        serverHeads,
        others: dbOthers(d, devid),
        problems: keyProblems(d, devid, keys.k0),
        provisioned: provisionedConfig(keys, dbConfigHash(d, devid)),
    }
}

// ---------------------------------------------------------------- device export

export function readExportFile(file: string): DeviceExportFile {
    const j = readJson(file, "export") as DeviceExportFile | null
    if (!j || typeof j !== "object" || j.format !== EXPORT_FORMAT)
        throw new UsageError(`${file}: not a coldtrace device export (format ${EXPORT_FORMAT})`)
    if (typeof j.devid !== "string" || !DEVID_HEX.test(j.devid)) throw new UsageError(`${file}: devid must be 16 lower-case hex digits`)
    if (!j.settings || typeof j.settings !== "object") throw new UsageError(`${file}: no settings`)
    for (const [k, v] of Object.entries(j.settings)) {
        if (typeof v !== "string" || !/^([0-9a-fA-F]{2})*$/.test(v)) throw new UsageError(`${file}: setting ${k} is not hex`)
    }
    return j
}

/**
 * A device's log from its flash export, read the way the firmware reads it at a boot (readFlashLog:
 * the blocks lgmeta names, the open one completed by its tail); the heads the image states (lgmeta's
 * base and open heads, the tail's head, lgack) as claims; the wake state's boot counter and lgack as
 * the image's own state. A block that does not decode is a problem, not an exception.
 */
export function exportInput(file: DeviceExportFile): Pick<VerifyInput, "devid" | "records" | "claims" | "image" | "problems" | "source"> {
    const get = (k: string) => (file.settings[k] !== undefined ? Buffer.from(file.settings[k], "hex") : undefined)
    let log: ReturnType<typeof readFlashLog>
    try {
        log = readFlashLog(get)
    } catch (e) {
        return {
            devid: file.devid,
            source: "device",
            records: [],
            claims: [],
            image: { boot: 0, ack: null },
            problems: [{ seq: 0, kind: "malformed", detail: `flash image: ${(e as Error).message}` }],
        }
    }
    const records: LogEntry[] = log.entries.map(e => ({ seq: e.seq, bytes: e.bytes }))
    const claims: HeadClaim[] = log.claims.map(c => ({ seq: c.seq, head: c.head, what: c.what }))
    const problems: Problem[] = log.problems.map(p => ({ seq: p.seq, kind: "malformed", detail: p.detail }))
    const ack = log.ack ? { seq: log.ack.ackSeq, head: log.ack.head, boot: log.ack.boot } : null
    return { devid: file.devid, source: "device", records, claims, image: { boot: log.boot, ack }, problems }
}

/**
 * A device's flash export as the verifier takes it: its records with the escrowed keys, checked
 * against what a server database holds for it (`ref`, from dbReference) or against given checkpoints.
 */
export function exportVerifyInput(
    file: DeviceExportFile,
    keys: VerifyKeys,
    ref: ReturnType<typeof dbReference> | null,
    checkpoints: Checkpoint[] = [],
): VerifyInput {
    const dev = exportInput(file)
    return {
        ...dev,
        k0: keys.k0,
        lockey: keys.lockey,
        checkpoints: ref ? ref.checkpoints : checkpoints,
        serverHeads: ref?.serverHeads,
        others: ref?.others,
        problems: [...(dev.problems ?? []), ...(ref?.problems ?? [])],
        provisioned: ref?.provisioned ?? provisionedConfig(keys, null),
    }
}

// ---------------------------------------------------------------- witness log

/**
 * A device's witness log (docs/witness.md) from a JSON file (what GET /v1/log/DEVID returns) or the
 * witness's own SQLite file (with `pinnedKey`: that file does not hold the public key). Every
 * cosignature must verify under the witness's key, and that key must be the pinned one when given.
 */
export function loadWitnessLog(file: string, devid: string, pinnedKey?: Buffer): NonNullable<VerifyInput["witness"]> {
    let head: Buffer
    try {
        head = readFileSync(file).subarray(0, 16)
    } catch (e) {
        throw new UsageError(`cannot read witness log ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
    }
    let log: WitnessLog
    if (head.toString("latin1") === "SQLite format 3\0") {
        if (!pinnedKey) throw new UsageError(`${file} is a witness database: give the witness's public key with --witness-key`)
        try {
            log = witnessLogFromDb(file, devid, pinnedKey)
        } catch (e) {
            throw new UsageError(`${file} is not a witness database: ${(e as Error).message}`)
        }
    } else {
        log = readJson(file, "witness log") as WitnessLog
        if (!log || log.format !== WITNESS_LOG_FORMAT) throw new UsageError(`${file}: not a witness log (format ${WITNESS_LOG_FORMAT})`)
    }
    if (log.devid !== devid) throw new UsageError(`${file} is the witness log of device ${log.devid}, not of ${devid}`)
    if (typeof log.publicKey !== "string" || !/^[0-9a-f]{64}$/.test(log.publicKey))
        throw new UsageError(`${file}: the witness's public key must be 64 hex digits`)
    const key = Buffer.from(log.publicKey, "hex")
    if (pinnedKey && !pinnedKey.equals(key))
        throw new UsageError(`${file} is signed by witness ${keyId(key)}, not by the pinned witness ${keyId(pinnedKey)}`)
    const checkpoints: Checkpoint[] = []
    for (const c of log.cosigned ?? []) {
        const h = typeof c.head === "string" && /^[0-9a-f]{64}$/.test(c.head) ? Buffer.from(c.head, "hex") : null
        if (!h || !Number.isInteger(c.seq) || !verifyCosignature(key, devid, c.seq, h, c.at, Buffer.from(String(c.sig), "hex")))
            throw new UsageError(`${file}: the cosignature of seq ${c.seq} does not verify under witness ${keyId(key)}`)
        checkpoints.push({ seq: c.seq, head: h, boot: c.boot, epoch: c.epoch })
    }
    return { id: keyId(key), checkpoints }
}
