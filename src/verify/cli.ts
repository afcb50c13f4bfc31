// `coldtrace verify`: the verdict for a person (first offending seq and reason first) or, with
// --json, the Verdict object. Exit 0 only when the log verifies; 1 when it does not; 2 for usage
// errors (unreadable files, wrong keys file, unknown device).
import path from "node:path"
import { verifyLog, type Checkpoint, type Verdict, type VerifyInput } from "./verify.js"
import {
    VerifyUsageError,
    dbInput,
    dbReference,
    exportVerifyInput,
    loadKeys,
    loadWitnessLog,
    openIngestDb,
    parseCheckpointArg,
    pickDevice,
    readExportFile,
    type OpenDb,
} from "./inputs.js"

export const VERIFY_USAGE = `coldtrace verify --db DB --keys FILE [--device DEVID] [--witness FILE|URL [--witness-key HEX]] [--json]
coldtrace verify --export FILE --keys FILE [--checkpoints-from DB | --checkpoint SEQ:HEAD:BOOT ...] [--witness FILE|URL] [--json]
        Verify a device's log: sequence continuity, the hash chain from genesis, every epoch seal
        under its forward-secure key, boot records, acknowledged checkpoints, eviction summaries and
        (with the location key) encrypted positions. --db takes the server's copy from an ingest
        database (a SQLite file or a postgres:// URL); --export takes a device flash export
        (device-export.json), checked against the server's checkpoints when given.
        --keys is the device's escrowed keys file (device-secret.json: devid, k0, lockey), always
        required: the server never holds k0 or lockey, and seals are checked from k0. With --db the
        key the server holds is checked too: it must be the one k0 evolves to (else bad-key).
        Without --device the database must hold exactly one device, or the keys file names it.
        --witness takes the checkpoints an independent witness cosigned (its log as JSON, its
        SQLite file with --witness-key, or its URL): a database truncated or restored from an
        older copy is reported from the first seq the witness cosigned that it lacks.
        --witness-key pins the witness's public key (64 hex digits).
        Prints the verdict and the first offending seq; exit 0 verified, 1 not, 2 usage error.
        --band LOW:HIGH (°C, the logger's configured band) also checks its alarm records against
        the band rule (docs/alarms.md); a disagreement is printed as a finding.`

const VALUE_OPTS = ["--db", "--device", "--export", "--keys", "--checkpoints-from", "--checkpoint", "--band", "--witness", "--witness-key"]
const FLAG_OPTS = ["--json"]

interface Parsed {
    values: Map<string, string[]>
    flags: Set<string>
}

function parseArgs(args: string[]): Parsed {
    const values = new Map<string, string[]>()
    const flags = new Set<string>()
    for (let i = 0; i < args.length; i++) {
        const a = args[i]
        if (FLAG_OPTS.includes(a)) flags.add(a)
        else if (VALUE_OPTS.includes(a)) {
            const v = args[i + 1]
            if (v === undefined || v.startsWith("--")) throw new VerifyUsageError(`${a} needs a value`)
            values.set(a, [...(values.get(a) ?? []), v])
            i++
        } else throw new VerifyUsageError(`unknown argument ${JSON.stringify(a)}`)
    }
    for (const [k, v] of values) if (v.length > 1 && k !== "--checkpoint") throw new VerifyUsageError(`${k} given twice`)
    return { values, flags }
}

/** Build the verifier's input from the command line; the databases it opened are closed by `close`. */
export function inputFromArgs(args: string[]): { input: VerifyInput; what: string; json: boolean; close: () => void } {
    const { values, flags } = parseArgs(args)
    const one = (k: string) => values.get(k)?.[0]
    const dbFile = one("--db")
    const exportFile = one("--export")
    const opened: OpenDb[] = []
    const close = () => opened.forEach(d => d.close())
    const witnessKeyHex = one("--witness-key")
    if (witnessKeyHex !== undefined && !/^[0-9a-f]{64}$/.test(witnessKeyHex))
        throw new VerifyUsageError("--witness-key must be 64 lower-case hex digits (the witness's Ed25519 public key)")
    if (witnessKeyHex !== undefined && !values.has("--witness")) throw new VerifyUsageError("--witness-key goes with --witness")
    const witnessOf = (devid: string) => {
        const w = one("--witness")
        return w ? { witness: loadWitnessLog(w, devid, witnessKeyHex ? Buffer.from(witnessKeyHex, "hex") : undefined) } : {}
    }
    const band = one("--band")?.match(/^(-?\d+(?:\.\d+)?):(-?\d+(?:\.\d+)?)$/)
    if (one("--band") && (!band || !(Number(band[1]) < Number(band[2]))))
        throw new VerifyUsageError("--band must be LOW:HIGH in °C with LOW < HIGH")
    const deviceBand = band ? { deviceBand: { low: Number(band[1]), high: Number(band[2]) } } : {}
    try {
        if (dbFile && exportFile)
            throw new VerifyUsageError("give --db or --export, not both (check an export against a database with --checkpoints-from)")
        const keysFile = one("--keys")
        const keys = keysFile ? loadKeys(keysFile) : null
        if (dbFile) {
            for (const k of ["--checkpoints-from", "--checkpoint"])
                if (values.has(k)) throw new VerifyUsageError(`${k} goes with --export, not --db`)
            if (!keys || !keysFile)
                throw new VerifyUsageError(
                    "--db needs --keys device-secret.json: the server holds neither k0 nor lockey, and seals are checked from k0",
                )
            const d = openIngestDb(dbFile)
            opened.push(d)
            const devid = pickDevice(d, one("--device") ?? (d.devices.length > 1 ? keys.devid : undefined))
            if (keys.devid !== devid)
                throw new VerifyUsageError(`${keysFile} holds the keys of device ${keys.devid}, not of device ${devid}`)
            return {
                input: { ...dbInput(d, devid, keys), ...deviceBand, ...witnessOf(devid) },
                what: `server database ${path.basename(dbFile)}`,
                json: flags.has("--json"),
                close,
            }
        }
        if (exportFile) {
            if (values.has("--device")) throw new VerifyUsageError("--device goes with --db (an export names its device)")
            const file = readExportFile(exportFile)
            if (!keys || !keysFile)
                throw new VerifyUsageError("--export needs the device's keys: --keys device-secret.json (the server does not hold k0)")
            if (keys.devid !== file.devid)
                throw new VerifyUsageError(
                    `${keysFile} holds the keys of device ${keys.devid}, but the export is from device ${file.devid}`,
                )
            const cpFrom = one("--checkpoints-from")
            const manual: Checkpoint[] = (values.get("--checkpoint") ?? []).map(parseCheckpointArg)
            if (cpFrom && manual.length) throw new VerifyUsageError("give --checkpoints-from or --checkpoint, not both")
            let ref: ReturnType<typeof dbReference> | null = null
            if (cpFrom) {
                const d = openIngestDb(cpFrom)
                opened.push(d)
                ref = dbReference(d, pickDevice(d, file.devid), keys)
            }
            const input = { ...exportVerifyInput(file, keys, ref, manual), ...deviceBand, ...witnessOf(file.devid) }
            return { input, what: `device export ${path.basename(exportFile)}`, json: flags.has("--json"), close }
        }
        throw new VerifyUsageError("give --db FILE or --export FILE")
    } catch (e) {
        close()
        throw e
    }
}

/** The verdict as a few lines for a person: the outcome, the first offending seq and reason first. */
export function formatVerdict(v: Verdict, what = "log"): string {
    const lines: string[] = []
    const span = v.firstSeq === null ? "no records" : `${v.records} records, seq ${v.firstSeq}..${v.lastSeq}`
    if (v.ok) lines.push(`VERIFIED: device ${v.devid}, ${what}: ${span}`)
    else lines.push(`${v.status.toUpperCase()}: first offending seq ${v.firstBad}: ${v.reason}`)
    if (!v.ok) lines.push(`  device ${v.devid}, ${what}: ${span}`)
    const start =
        v.start === "genesis"
            ? "chained from genesis"
            : v.start === "anchored"
              ? `chained from the head stated before seq ${v.firstSeq}`
              : "no chain start"
    const sealed =
        v.sealedThrough === null
            ? "no seal verifies"
            : `sealed through seq ${v.sealedThrough} (${v.epochs} seal${v.epochs === 1 ? "" : "s"} verified, last epoch ${v.lastEpoch})`
    lines.push(`  ${start}; ${sealed}; ${v.unsealed} unsealed after the last seal`)
    const cp = v.checkpoints
    lines.push(
        `  boots ${v.boots.length ? v.boots.join(", ") : "-"}; checkpoints ${cp.given ? `${cp.matched} of ${cp.given} reproduced${cp.before ? ` (${cp.before} before the first record held)` : ""}, latest seq ${cp.latest}` : "none given"}` +
            (v.positions && v.positions.decrypted + v.positions.failed
                ? `; positions ${v.positions.decrypted} authenticated, ${v.positions.failed} not`
                : ""),
    )
    for (const e of v.evictedRanges) {
        lines.push(
            `  evicted seq ${e.first}..${e.last} (record ${e.seq}${e.sealed ? ", sealed" : ", NOT sealed"}): ${e.samples} samples, tc ${e.minTc / 128}..${e.maxTc / 128} C, ${e.outMin} min out of band${e.srOr || e.sflagsOr ? `, faults sr 0x${e.srOr.toString(16)} flags 0x${e.sflagsOr.toString(16)}` : ""}`,
        )
    }
    for (const cfg of v.configs)
        lines.push(
            `  configuration from seq ${cfg.seq}: ${cfg.hash}${cfg.provisioned === null ? " (provisioned configuration not given)" : cfg.provisioned ? " (as provisioned)" : " (NOT the provisioned configuration)"}`,
        )
    if (v.problems.length) {
        lines.push(`  problems:`)
        for (const p of v.problems) lines.push(`    seq ${p.last !== undefined ? `${p.seq}..${p.last}` : p.seq}  ${p.kind}: ${p.detail}`)
        if (v.problemsOmitted) lines.push(`    ... and ${v.problemsOmitted} more`)
    }
    if (v.clock.runs > 1 || v.clock.unplaced)
        lines.push(`  clock: ${v.clock.runs} run(s) of the real-time clock, ${v.clock.unplaced} record(s) no time record places`)
    for (const f of v.clock.findings.slice(0, 20)) lines.push(`  clock ${f.kind} at seq ${f.seq}: ${f.detail}`)
    const ac = v.alarmCheck
    if (ac)
        lines.push(
            ac.agree
                ? `  alarms: the logger's ${ac.recorded} alarm records agree with its band ${ac.rule.lowC}..${ac.rule.highC} C (${ac.samples} samples compared)`
                : `  alarms: FINDING: the logger's alarm records disagree with its band ${ac.rule.lowC}..${ac.rule.highC} C:`,
            ...(ac.agree ? [] : ac.findings.map(f => `    ${f}`)),
        )
    for (const n of v.notes.slice(0, 20)) lines.push(`  note: ${n}`)
    if (v.notes.length > 20) lines.push(`  note: ... and ${v.notes.length - 20} more`)
    return lines.join("\n")
}

/**
 * A PostgreSQL database given to --db or --checkpoints-from is read into a temporary SQLite copy
 * (the same tables, compared row for row) that the file-based readers below then verify.
 */
async function materializePostgres(args: string[]): Promise<{ args: string[]; cleanup: () => void }> {
    const urls = args.filter((a, i) => i > 0 && ["--db", "--checkpoints-from"].includes(args[i - 1]) && /^postgres(ql)?:\/\//.test(a))
    if (!urls.length) return { args, cleanup: () => {} }
    const { mkdtempSync, rmSync } = await import("node:fs")
    const { tmpdir } = await import("node:os")
    const { snapshotToSqlite } = await import("../ingest/migrate.js")
    const dir = mkdtempSync(path.join(tmpdir(), "coldtrace-verify-pg-"))
    const cleanup = () => rmSync(dir, { recursive: true, force: true })
    const copies = new Map<string, string>()
    try {
        for (const [i, url] of urls.entries()) {
            const file = path.join(dir, `postgres-${i}.sqlite`)
            await snapshotToSqlite(url, file)
            copies.set(url, file)
        }
    } catch (e) {
        cleanup()
        throw new VerifyUsageError(`cannot read the PostgreSQL database: ${(e as Error).message.split("\n")[0]}`)
    }
    return { args: args.map(a => copies.get(a) ?? a), cleanup }
}

/** A witness URL given to --witness is fetched (GET URL/v1/log/DEVID) into a temporary JSON file. */
async function materializeWitness(args: string[]): Promise<{ args: string[]; cleanup: () => void }> {
    const i = args.indexOf("--witness")
    const url = i >= 0 ? args[i + 1] : undefined
    if (!url || !/^https?:\/\//.test(url)) return { args, cleanup: () => {} }
    const k = args.indexOf("--keys")
    if (k < 0 || !args[k + 1]) throw new VerifyUsageError("--witness URL needs --keys (the keys file names the device)")
    const devid = loadKeys(args[k + 1]).devid
    let text: string
    try {
        const r = await fetch(`${url.replace(/\/$/, "")}/v1/log/${devid}`, { signal: AbortSignal.timeout(30_000) })
        if (!r.ok) throw new Error(`${r.status}`)
        text = await r.text()
    } catch (e) {
        throw new VerifyUsageError(`cannot read the witness log from ${url}: ${(e as Error).message}`)
    }
    const { mkdtempSync, rmSync, writeFileSync } = await import("node:fs")
    const { tmpdir } = await import("node:os")
    const dir = mkdtempSync(path.join(tmpdir(), "coldtrace-verify-witness-"))
    const file = path.join(dir, "witness-log.json")
    writeFileSync(file, text)
    return { args: args.map((a, j) => (j === i + 1 ? file : a)), cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

export async function verifyCommand(args: string[]): Promise<number> {
    if (args.includes("--help") || args.includes("-h")) {
        console.log(VERIFY_USAGE)
        return 0
    }
    let built: ReturnType<typeof inputFromArgs>
    let cleanup = () => {}
    try {
        const w = await materializeWitness(args)
        cleanup = w.cleanup
        const m = await materializePostgres(w.args)
        cleanup = () => {
            w.cleanup()
            m.cleanup()
        }
        built = inputFromArgs(m.args)
    } catch (e) {
        cleanup()
        if (e instanceof VerifyUsageError) {
            console.error(`coldtrace verify: ${e.message}\n(coldtrace verify --help for usage)`)
            return 2
        }
        throw e
    }
    let verdict: Verdict
    try {
        verdict = verifyLog(built.input)
    } finally {
        built.close()
        cleanup()
    }
    if (built.json) console.log(JSON.stringify(verdict, null, 2))
    else console.log(formatVerdict(verdict, built.what))
    return verdict.ok ? 0 : 1
}
