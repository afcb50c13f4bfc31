// Where `coldtrace report` gets a log: the ingest server's database or a device's flash export,
// always with the device's keys from the escrow keys file (device-secret.json): k0 to verify the
// seals, the location key (when present) to decrypt positions. Keys are never read from the
// database. Every problem with the inputs is a ReportInputError (exit 2, nothing written).
import path from "node:path"
import type Database from "better-sqlite3"
import { UsageError } from "../cli/args.js"
import { dbCheckpoints, dbRecords, exportInput, loadKeys, openIngestDb, readExportFile, type VerifyKeys } from "../verify/inputs.js"
import type { OtherDevice, VerifyInput } from "../verify/verify.js"

export class ReportInputError extends Error {}

export interface LoadedLog {
    devid: string
    input: VerifyInput
    /** how the verifier's text names the log */
    what: string
    source: { kind: "server" | "device"; name: string }
    /** the highest seq acknowledged to the device */
    ackSeq: number | null
    uploads?: { attempts: number; ok: number; failed: number }
    /** closes the database (after verification: the verifier looks other devices' records up lazily) */
    close(): void
}

/** Run `f`, turning the verifier's input errors into the report's. */
function inputs<T>(f: () => T): T {
    try {
        return f()
    } catch (e) {
        if (e instanceof UsageError) throw new ReportInputError(e.message)
        throw e
    }
}

export function readKeys(file: string): VerifyKeys {
    return inputs(() => loadKeys(file))
}

/** Batches the server stored and refused for the device (none when the table is not there). */
function dbUploads(db: Database.Database, devid: string): LoadedLog["uploads"] {
    try {
        const rows = db.prepare("SELECT outcome FROM batches WHERE devid = ?").all(devid) as { outcome: string }[]
        const ok = rows.filter(r => String(r.outcome).startsWith("200")).length
        return { attempts: rows.length, ok, failed: rows.length - ok }
    } catch {
        return undefined
    }
}

/** The server's copy of the device named by the keys file. */
export function loadFromDb(file: string, keys: VerifyKeys): LoadedLog {
    const d = inputs(() => openIngestDb(file))
    try {
        if (!d.devices.includes(keys.devid))
            throw new ReportInputError(
                `device ${keys.devid} (from the keys file) is not in ${file} (it holds ${d.devices.length ? d.devices.join(", ") : "no device"})`,
            )
        let segments: { startSeq: number; prevHead: Buffer }[] = []
        try {
            segments = d.db
                .prepare("SELECT start_seq AS startSeq, prev_head AS prevHead FROM segments WHERE devid = ?")
                .all(keys.devid) as typeof segments
        } catch {
            // a database without PREV segments
        }
        // the other devices' records, to recognise a splice (their keys are not needed for that)
        const get = d.db.prepare("SELECT seq, bytes, head FROM records WHERE devid = ? AND seq = ?")
        const others: OtherDevice[] = d.devices
            .filter(x => x !== keys.devid)
            .map(x => ({ devid: x, records: (seq: number) => get.get(x, seq) as never }))
        const checkpoints = dbCheckpoints(d, keys.devid)
        const input: VerifyInput = {
            devid: keys.devid,
            k0: keys.k0,
            lockey: keys.lockey,
            source: "server",
            records: dbRecords(d, keys.devid),
            segments,
            checkpoints,
            others,
        }
        return {
            devid: keys.devid,
            input,
            what: `server database ${path.basename(file)}`,
            source: { kind: "server", name: path.basename(file) },
            ackSeq: checkpoints.length ? Math.max(...checkpoints.map(c => c.seq)) : null,
            uploads: dbUploads(d.db, keys.devid),
            close: () => d.close(),
        }
    } catch (e) {
        d.close()
        throw e
    }
}

/** A device's flash export; the keys file must be that device's. */
export function loadFromExport(file: string, keys: VerifyKeys): LoadedLog {
    const f = inputs(() => readExportFile(file))
    if (f.devid !== keys.devid)
        throw new ReportInputError(
            `the export ${path.basename(file)} is from device ${f.devid}, but the keys file is device ${keys.devid}'s`,
        )
    const dev = exportInput(f)
    return {
        devid: f.devid,
        input: { ...dev, k0: keys.k0, lockey: keys.lockey },
        what: `device export ${path.basename(file)}`,
        source: { kind: "device", name: path.basename(file) },
        ackSeq: dev.image?.ack?.seq ?? null,
        close: () => {},
    }
}
