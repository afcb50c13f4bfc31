import { existsSync, writeFileSync } from "node:fs"
import path from "node:path"
import { parseRules } from "../alarms/validate.js"
import type { RuleSet } from "../alarms/types.js"
import type { Scenario } from "./scenario.js"
import type { DeviceExport } from "./export.js"
import type { ConsoleLog } from "./console.js"
import type { Testbed } from "./testbed.js"
import type { PowerCut } from "./driver.js"
import type { EnergySummary } from "./energy.js"
import { recordsFor } from "../ingest/db.js"
import { verifyChain, mergeLogs, type ChainEntry } from "../verify/chain.js"
import { summarize } from "./summarize.js"
import { verifyLog, type Verdict, type VerifyInput } from "../verify/verify.js"
import { formatVerdict } from "../verify/cli.js"
import {
    dbInput,
    dbReference,
    exportVerifyInput,
    loadKeys,
    loadWitnessLog,
    openIngestDb,
    pickDevice,
    readExportFile,
} from "../verify/inputs.js"
import { renderReportHtml } from "../report/html.js"

export interface Verification {
    what: string
    verdict: Verdict
    text: string
}

/**
 * The verifier as a library, on this run's files, as `coldtrace verify` would: the server's database,
 * and the device's own flash export against the checkpoints the server acknowledged.
 */
export function verifyRun(
    dbPath: string,
    exportFile: string | undefined,
    keysFile: string,
    witnessLog?: string,
    /** the alarm rules the logger runs: the server's copy (from seq 0) is checked against them */
    deviceRules?: RuleSet,
): Verification[] {
    const out: Verification[] = []
    const d = openIngestDb(dbPath)
    try {
        const keys = loadKeys(keysFile)
        const devid = pickDevice(d)
        const input = dbInput(d, devid, keys)
        if (witnessLog) input.witness = loadWitnessLog(witnessLog, devid)
        if (deviceRules) input.deviceRules = deviceRules
        out.push(verification(witnessLog ? "server database, with the witness" : "server database", input))
        if (exportFile && existsSync(exportFile)) {
            const file = readExportFile(exportFile)
            out.push(verification("device flash", exportVerifyInput(file, keys, dbReference(d, pickDevice(d, file.devid), keys))))
        }
    } finally {
        d.close()
    }
    return out
}

function verification(what: string, input: VerifyInput): Verification {
    const verdict = verifyLog(input)
    return { what, verdict, text: formatVerdict(verdict, what) }
}

export interface Assessment {
    summary: ReturnType<typeof summarize>
    summaryPath: string
    reportPath: string
}

/**
 * What the run produced, judged: the server's records merged with what the device still holds,
 * checked as one chain, verified independently, summarised; writes summary.json and report.html.
 */
export function assessRun(opts: {
    s: Scenario
    tb: Testbed
    con: ConsoleLog
    exported: DeviceExport | undefined
    cuts: PowerCut[]
    /** the witness's log of this device (witness-log.json), when the run had a witness */
    witnessLog?: string
    /** the world's energy ledger at the end (src/sim/energy.ts) */
    energy?: EnergySummary
    extra: Record<string, unknown>
}): Assessment {
    const { s, tb, con, exported } = opts
    const out = tb.out
    const serverEntries: ChainEntry[] = recordsFor(tb.ingest.db, tb.devidHex).map(r => ({ seq: r.seq, bytes: r.bytes, head: r.head }))
    const deviceEntries = exported?.entries ?? []
    const { merged, conflicts } = mergeLogs(serverEntries, deviceEntries)
    const alarms = s.device.alarms
    // (the scenario's rules, provisioned and so validated already: a preset name or a list)
    const deviceRules = alarms === undefined ? undefined : parseRules(alarms, s.device.interval)
    const verification = verifyRun(
        tb.dbPath,
        exported ? path.join(out, "device-export.json") : undefined,
        tb.secretFile,
        opts.witnessLog,
        deviceRules,
    )
    // records evicted unsent from a full store: gone from everywhere, summarized, and (the verifier
    // says) sealed; the merged chain may skip exactly those
    const evicted = verification.filter(v => v.verdict.ok).flatMap(v => v.verdict.evictedRanges.filter(e => e.sealed))
    const verdict = verifyChain(tb.keys.devid, merged, evicted, exported?.claims ?? [])
    if (conflicts.length && verdict.ok)
        Object.assign(verdict, { ok: false, firstBad: conflicts[0], reason: "server and device hold different bytes" })
    const notes: string[] = []
    if (!exported) notes.push("the device's flash could not be read out")
    const summary = summarize({
        scenario: s.name,
        deviceId: tb.devidHex,
        band: { low: s.device.low, high: s.device.high },
        merged,
        stored: new Set(serverEntries.map(e => e.seq)),
        ackSeq: exported ? exported.ackSeq : null,
        onDevice: new Set(deviceEntries.map(e => e.seq)),
        reportedSamples: new Set(con.samples.keys()),
        verdict,
        powerCuts: opts.cuts.map(c => ({ at: c.at, until: c.until ?? undefined })),
        lockey: tb.keys.lockey,
        uploads: con.uploads,
        notes,
        energy: opts.energy,
        sealedEvictions: evicted.map(e => e.seq),
        deviceRules,
    })
    // the verdict shown is the verifier's; the harness's own merged-chain check must agree
    const verified = verification.every(v => v.verdict.ok)
    summary.chain = {
        status: verified && verdict.ok ? "ok" : "broken",
        detail:
            verification.map(v => v.text).join("\n") +
            (verdict.ok ? "" : `\nmerged log: first bad seq ${verdict.firstBad}: ${verdict.reason}`),
    }
    const summaryPath = path.join(out, "summary.json")
    const reportPath = path.join(out, "report.html")
    const verifierJson = verification.map(v => ({
        what: v.what,
        ok: v.verdict.ok,
        status: v.verdict.status,
        firstBad: v.verdict.firstBad,
        reason: v.verdict.reason,
        records: v.verdict.records,
        sealedThrough: v.verdict.sealedThrough,
        epochs: v.verdict.epochs,
        unsealed: v.verdict.unsealed,
        problems: v.verdict.problems,
        ...(v.verdict.ruleCheck ? { ruleCheck: { ...v.verdict.ruleCheck, ruleSet: undefined } } : {}),
    }))
    writeFileSync(summaryPath, JSON.stringify({ ...summary, verification: verifierJson, ...opts.extra }, null, 2))
    writeFileSync(reportPath, renderReportHtml(summary))
    return { summary, summaryPath, reportPath }
}
