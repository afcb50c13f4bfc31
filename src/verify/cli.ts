// `coldtrace verify`: the verdict for a person (first offending seq and reason first) or, with
// --json, the Verdict object. Exit 0 only when the log verifies; 1 when it does not; 2 for usage
// errors (unreadable files, wrong keys file, unknown device).
import path from "node:path"
import { readFileSync } from "node:fs"
import { UsageError, parseCommand, runCommand, type Values } from "../cli/args.js"
import { VERIFY_SPEC } from "../cli/commands.js"
import { PRESETS, findPreset } from "../alarms/presets.js"
import { parseRules } from "../alarms/validate.js"
import type { AlarmRule } from "../alarms/types.js"
import { verifyLog, type Checkpoint, type Verdict, type VerifyInput } from "./verify.js"
import {
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

/** The command line of `coldtrace verify`, parsed (src/cli/commands.ts). */
export type VerifyOptions = Values<typeof VERIFY_SPEC>

type Built = { input: VerifyInput; what: string; json: boolean; close: () => void }

/** Build the verifier's input from the command line; the databases it opened are closed by `close`. */
export function inputFromArgs(args: string[]): Built {
    const v = parseCommand(VERIFY_SPEC, args)
    if (v === "help") throw new UsageError("--help asks for no verification")
    return inputFromOptions(v)
}

/** Build the verifier's input from the parsed command line; throws UsageError for bad input. */
export function inputFromOptions(v: VerifyOptions): Built {
    const dbFile = v.db
    const exportFile = v.export
    const opened: OpenDb[] = []
    const close = () => opened.forEach(d => d.close())
    const witnessKeyHex = v["witness-key"]
    if (witnessKeyHex !== undefined && !/^[0-9a-f]{64}$/.test(witnessKeyHex))
        throw new UsageError("--witness-key must be 64 lower-case hex digits (the witness's Ed25519 public key)")
    if (witnessKeyHex !== undefined && v.witness === undefined) throw new UsageError("--witness-key goes with --witness")
    const witnessOf = (devid: string) => {
        const w = v.witness
        return w ? { witness: loadWitnessLog(w, devid, witnessKeyHex ? Buffer.from(witnessKeyHex, "hex") : undefined) } : {}
    }
    const band = v.band?.match(/^(-?\d+(?:\.\d+)?):(-?\d+(?:\.\d+)?)$/)
    if (v.band && (!band || !(Number(band[1]) < Number(band[2])))) throw new UsageError("--band must be LOW:HIGH in °C with LOW < HIGH")
    const deviceBand = {
        ...(band ? { deviceBand: { low: Number(band[1]), high: Number(band[2]) } } : {}),
        ...(v.rules !== undefined ? { deviceRules: rulesOption(v.rules) } : {}),
    }
    try {
        if (dbFile && exportFile)
            throw new UsageError("give --db or --export, not both (check an export against a database with --checkpoints-from)")
        const keysFile = v.keys
        const keys = keysFile ? loadKeys(keysFile) : null
        if (dbFile) {
            if (v["checkpoints-from"] !== undefined) throw new UsageError("--checkpoints-from goes with --export, not --db")
            if (v.checkpoint.length) throw new UsageError("--checkpoint goes with --export, not --db")
            if (!keys || !keysFile)
                throw new UsageError(
                    "--db needs --keys device-secret.json: the server holds neither k0 nor lockey, and seals are checked from k0",
                )
            const d = openIngestDb(dbFile)
            opened.push(d)
            const devid = pickDevice(d, v.device ?? (d.devices.length > 1 ? keys.devid : undefined))
            if (keys.devid !== devid) throw new UsageError(`${keysFile} holds the keys of device ${keys.devid}, not of device ${devid}`)
            return {
                input: { ...dbInput(d, devid, keys), ...deviceBand, ...witnessOf(devid) },
                what: `server database ${path.basename(dbFile)}`,
                json: v.json,
                close,
            }
        }
        if (exportFile) {
            if (v.device !== undefined) throw new UsageError("--device goes with --db (an export names its device)")
            const file = readExportFile(exportFile)
            if (!keys || !keysFile)
                throw new UsageError("--export needs the device's keys: --keys device-secret.json (the server does not hold k0)")
            if (keys.devid !== file.devid)
                throw new UsageError(`${keysFile} holds the keys of device ${keys.devid}, but the export is from device ${file.devid}`)
            const cpFrom = v["checkpoints-from"]
            const manual: Checkpoint[] = v.checkpoint.map(parseCheckpointArg)
            if (cpFrom && manual.length) throw new UsageError("give --checkpoints-from or --checkpoint, not both")
            let ref: ReturnType<typeof dbReference> | null = null
            if (cpFrom) {
                const d = openIngestDb(cpFrom)
                opened.push(d)
                ref = dbReference(d, pickDevice(d, file.devid), keys)
            }
            const input = { ...exportVerifyInput(file, keys, ref, manual), ...deviceBand, ...witnessOf(file.devid) }
            return { input, what: `device export ${path.basename(exportFile)}`, json: v.json, close }
        }
        throw new UsageError("give --db FILE or --export FILE")
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
    if (v.programs.length) lines.push(`  program: ${v.programs.map(x => `${x.fw} from boot ${x.boot} (seq ${x.seq})`).join(", then ")}`)
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
    const rc = v.ruleCheck
    if (rc)
        lines.push(
            rc.agree
                ? `  alarm rules: the logger's ${rc.recorded} rule alarm records agree with its ${rc.ruleSet.rules.length} rules (${rc.inputs} readings compared)`
                : `  alarm rules: FINDING: the logger's rule alarm records disagree with its ${rc.ruleSet.rules.length} rules:`,
            ...(rc.agree ? [] : rc.findings.map(f => `    ${f}`)),
            ...rc.notes.slice(0, 5).map(n => `    note: ${n}`),
        )
    for (const n of v.notes.slice(0, 20)) lines.push(`  note: ${n}`)
    if (v.notes.length > 20) lines.push(`  note: ... and ${v.notes.length - 20} more`)
    return lines.join("\n")
}

/**
 * A PostgreSQL database given to --db or --checkpoints-from is read into a temporary SQLite copy
 * (the same tables, compared row for row) that the file-based readers below then verify.
 */
async function materializePostgres(v: VerifyOptions): Promise<{ values: VerifyOptions; cleanup: () => void }> {
    const isUrl = (s: string | undefined): s is string => s !== undefined && /^postgres(ql)?:\/\//.test(s)
    const urls = [v.db, v["checkpoints-from"]].filter(isUrl)
    if (!urls.length) return { values: v, cleanup: () => {} }
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
        throw new UsageError(`cannot read the PostgreSQL database: ${(e as Error).message.split("\n")[0]}`)
    }
    const copy = (s: string | undefined) => (s === undefined ? s : (copies.get(s) ?? s))
    return { values: { ...v, db: copy(v.db), "checkpoints-from": copy(v["checkpoints-from"]) }, cleanup }
}

/** A witness URL given to --witness is fetched (GET URL/v1/log/DEVID) into a temporary JSON file. */
async function materializeWitness(v: VerifyOptions): Promise<{ values: VerifyOptions; cleanup: () => void }> {
    const url = v.witness
    if (!url || !/^https?:\/\//.test(url)) return { values: v, cleanup: () => {} }
    if (!v.keys) throw new UsageError("--witness URL needs --keys (the keys file names the device)")
    const devid = loadKeys(v.keys).devid
    let text: string
    try {
        const r = await fetch(`${url.replace(/\/$/, "")}/v1/log/${devid}`, { signal: AbortSignal.timeout(30_000) })
        if (!r.ok) throw new Error(`${r.status}`)
        text = await r.text()
    } catch (e) {
        throw new UsageError(`cannot read the witness log from ${url}: ${(e as Error).message}`)
    }
    const { mkdtempSync, rmSync, writeFileSync } = await import("node:fs")
    const { tmpdir } = await import("node:os")
    const dir = mkdtempSync(path.join(tmpdir(), "coldtrace-verify-witness-"))
    const file = path.join(dir, "witness-log.json")
    writeFileSync(file, text)
    return { values: { ...v, witness: file }, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

export async function verifyCommand(args: string[]): Promise<number> {
    return runCommand(VERIFY_SPEC, args, async v => {
        let built: Built
        let cleanup = () => {}
        try {
            const w = await materializeWitness(v)
            cleanup = w.cleanup
            const m = await materializePostgres(w.values)
            cleanup = () => {
                w.cleanup()
                m.cleanup()
            }
            built = inputFromOptions(m.values)
        } catch (e) {
            cleanup()
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
    })
}

/** `--rules`: a preset name, or a JSON file of rules (a list, or {intervalS, rules}) */
function rulesOption(v: string): { rules: AlarmRule[]; intervalS?: number } {
    const preset = findPreset(v)
    if (preset) return { rules: preset.rules }
    let json: unknown
    try {
        json = JSON.parse(readFileSync(v, "utf8"))
    } catch (e) {
        throw new UsageError(`--rules: ${v} is neither a preset (${PRESETS.map(p => p.id).join(", ")}) nor a readable JSON file of rules`)
    }
    const given = Array.isArray(json) ? { rules: json } : (json as { rules?: unknown; intervalS?: number })
    const intervalS = typeof given.intervalS === "number" ? given.intervalS : undefined
    try {
        return { rules: parseRules(given.rules, intervalS ?? 300, "--rules").rules, intervalS }
    } catch (e) {
        throw new UsageError((e as Error).message)
    }
}
