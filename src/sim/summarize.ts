import { decodeRecord, type LogRecord } from "../format/index.js"
import type { ShipmentSummary } from "../report/summary.js"
import { REPORT_FORMAT, type ReportModel } from "../report/model.js"
import { analyzeLog, batterySection, openingsSection, emptySections, engineAlarms } from "../report/build.js"
import type { EnergySummary } from "./energy.js"
import type { ChainEntry, ChainVerdict } from "../verify/chain.js"
import type { AlarmRule } from "../alarms/types.js"

export { faultName } from "../report/build.js"

export interface SummaryInput {
    scenario: string
    deviceId: string
    band: { low: number; high: number }
    /** the whole log as far as anyone holds it */
    merged: ChainEntry[]
    /** seqs the server holds / the device acknowledged / the device still holds */
    stored: Set<number>
    ackSeq: number | null
    onDevice: Set<number>
    /** seqs of samples the device reported as appended (from its console) */
    reportedSamples: Set<number>
    verdict: ChainVerdict
    powerCuts: { at: number; until?: number }[]
    /** location key: stop positions are shown only to whoever holds it */
    lockey?: Buffer
    uploads: { attempts: number; ok: number; failed: number }
    notes: string[]
    /** the energy ledger's figures at the end of the run (src/sim/energy.ts), when it kept one */
    energy?: EnergySummary
    /** seqs of the evicted records the verifier found sealed */
    sealedEvictions?: number[]
    /** the alarm rules the logger runs (the scenario's `device.alarms`): its rule alarm records are checked against them */
    deviceRules?: { rules: AlarmRule[]; intervalS: number }
}

/**
 * The simulator's summary: the report model (src/report/model.ts) of the merged log, with what only
 * the simulation knows (samples the device announced, the world's power cuts, upload counts).
 * `coldtrace sim` writes it as summary.json and renders report.html from it.
 */
export function summarize(inp: SummaryInput): ReportModel & { records: number; missedSlots?: number } {
    const records: LogRecord[] = inp.merged.map(e => decodeRecord(e.bytes))
    const sealed = new Set(inp.sealedEvictions ?? [])
    const a = analyzeLog(records, { devid: inp.deviceId, band: inp.band, lockey: inp.lockey, sealed: q => sealed.has(q) })
    const sampleSeqs = new Set(a.sampleSeqs)
    const ackd = a.sampleSeqs.filter(seq => inp.ackSeq !== null && seq <= inp.ackSeq).length
    const onDeviceOnly = a.sampleSeqs.filter(seq => inp.onDevice.has(seq) && !(inp.ackSeq !== null && seq <= inp.ackSeq)).length
    const lost = [...inp.reportedSamples].filter(seq => !sampleSeqs.has(seq)).length
    const times = a.series.map(p => p.t as number)
    const v = inp.verdict
    const summary: ShipmentSummary = {
        scenario: inp.scenario,
        deviceId: inp.deviceId,
        started: times.length ? new Date(Math.min(...times)).toISOString() : "",
        ended: times.length ? new Date(Math.max(...times)).toISOString() : "",
        samples: {
            taken: a.sampleSeqs.length + lost,
            stored: a.sampleSeqs.filter(seq => inp.stored.has(seq)).length,
            acknowledged: ackd,
            onDevice: onDeviceOnly,
            lost,
            faulted: a.faulted,
        },
        minC: a.minC,
        maxC: a.maxC,
        alarmBand: inp.band,
        excursions: a.excursions,
        powerCuts: inp.powerCuts.map(p => ({ at: p.at, until: p.until })),
        uploads: inp.uploads,
        chain: {
            status: v.ok ? "ok" : "broken",
            detail: v.ok
                ? `${v.records} records, seq 0..${v.lastSeq}, head ${v.head.toString("hex").slice(0, 16)}...`
                : `first bad seq ${v.firstBad}: ${v.reason}`,
        },
        series: a.series,
        faults: a.faults,
        stops: a.stops,
        notes: inp.notes,
    }
    const presetName = `scenario band ${inp.band.low} to ${inp.band.high} °C`
    return {
        ...summary,
        reportFormat: REPORT_FORMAT,
        source: { kind: "simulation", name: inp.scenario },
        timeZone: "UTC",
        generatedAt: new Date().toISOString(),
        shipment: null,
        preset: { id: "scenario", name: presetName, source: "scenario" },
        fingerprint: {
            devid: inp.deviceId,
            firstSeq: records.length ? records[0].seq : null,
            lastSeq: v.lastSeq,
            head: v.lastSeq === null ? null : v.head.toString("hex"),
        },
        verification: null,
        alarms: engineAlarms(
            records,
            a,
            inp.band,
            { id: "scenario", name: presetName, ...inp.band },
            inp.band,
            { verified: v.ok, verdictWord: v.ok ? "VERIFIED" : "NOT VERIFIED", lost },
            inp.deviceRules,
        ),
        ...emptySections(),
        battery: batterySection(a.battery),
        openings: openingsSection(a.openings),
        ...(inp.energy ? { energy: inp.energy } : {}),
        route: {
            shown: !!inp.lockey?.length && a.route.length > 0,
            note: inp.lockey?.length
                ? `${a.route.length} positions decrypted with the simulated logger's location key.`
                : "No location key.",
            points: inp.lockey?.length ? a.route : [],
        },
        evictions: a.evictions,
        unplaced: a.unplaced,
        records: records.length,
    }
}
