import { decodeRecord, decryptLoc, isFaulted, KIND, type LogRecord, type SampleRecord, type StopRecord } from "../format/index.js"
import type { ShipmentSummary, SeriesPoint, Excursion, FaultWindow, Stop } from "../report/summary.js"
import { placeRecords } from "../verify/timeline.js"
import type { ChainEntry, ChainVerdict } from "../verify/chain.js"

/** Names of the MAX31856 fault status bits and the logger's own sample flags. */
const SR_NAMES = ["OPEN", "OVUV", "TCLOW", "TCHIGH", "CJLOW", "CJHIGH", "TCRANGE", "CJRANGE"]
export function faultName(s: Pick<SampleRecord, "sr" | "sflags">): string {
    const names: string[] = []
    if (s.sflags & 1) names.push("NO_READING")
    if (s.sflags & 2) names.push("CONFIG_MISMATCH")
    for (let i = 0; i < 8; i++) if (s.sr & (1 << i)) names.push(SR_NAMES[i])
    return names.join("+")
}

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
}

export function summarize(inp: SummaryInput): ShipmentSummary & { records: number; missedSlots?: number } {
    const records: LogRecord[] = inp.merged.map(e => decodeRecord(e.bytes))
    const placed = new Map(placeRecords(records).map(p => [p.seq, p]))
    const samples = records.filter(r => r.kind === KIND.sample) as SampleRecord[]
    const series: SeriesPoint[] = []
    let minC: number | null = null
    let maxC: number | null = null
    const excursions: Excursion[] = []
    let open: Excursion | null = null
    let faulted = 0
    const faults: FaultWindow[] = []
    let lastWasFault = false
    for (const s of samples) {
        const t = placed.get(s.seq)?.utc
        if (t == null) continue
        if (isFaulted(s)) {
            faulted++
            const fault = faultName(s)
            series.push({ t, c: null, faulted: true, fault })
            const w = faults.at(-1)
            if (w && w.fault === fault && lastWasFault) {
                w.end = t
                w.samples++
            } else faults.push({ start: t, end: t, fault, samples: 1 })
            lastWasFault = true
            continue
        }
        lastWasFault = false
        const c = s.tc / 128
        series.push({ t, c, faulted: false })
        minC = minC === null ? c : Math.min(minC, c)
        maxC = maxC === null ? c : Math.max(maxC, c)
        const out = c > inp.band.high || c < inp.band.low
        if (out && !open) open = { start: t, end: null, maxC: c, minC: c }
        else if (out && open) {
            open.maxC = Math.max(open.maxC, c)
            open.minC = Math.min(open.minC ?? c, c)
        } else if (!out && open) {
            open.end = t
            excursions.push(open)
            open = null
        }
    }
    if (open) excursions.push(open)
    const stops: Stop[] = []
    for (const r of records.filter(r => r.kind === KIND.stop) as StopRecord[]) {
        const end = placed.get(r.seq)?.utc
        if (end == null) continue
        const stop: Stop = { start: end - (r.uptime - r.start), end }
        if (inp.lockey?.length) {
            try {
                const p = decryptLoc(inp.lockey, inp.deviceId, r.seq, r.loc)
                stop.lat = p.lat / 1e7
                stop.lon = p.lon / 1e7
            } catch {
                stop.label = "position does not decrypt"
            }
        }
        stops.push(stop)
    }
    const sampleSeqs = new Set(samples.map(s => s.seq))
    const ackd = samples.filter(s => inp.ackSeq !== null && s.seq <= inp.ackSeq).length
    const onDeviceOnly = samples.filter(s => inp.onDevice.has(s.seq) && !(inp.ackSeq !== null && s.seq <= inp.ackSeq)).length
    const lost = [...inp.reportedSamples].filter(seq => !sampleSeqs.has(seq)).length
    const times = series.map(p => p.t as number)
    return {
        scenario: inp.scenario,
        deviceId: inp.deviceId,
        started: times.length ? new Date(Math.min(...times)).toISOString() : "",
        ended: times.length ? new Date(Math.max(...times)).toISOString() : "",
        samples: {
            taken: samples.length + lost,
            stored: samples.filter(s => inp.stored.has(s.seq)).length,
            acknowledged: ackd,
            onDevice: onDeviceOnly,
            lost,
            faulted,
        },
        minC,
        maxC,
        alarmBand: inp.band,
        excursions,
        powerCuts: inp.powerCuts.map(p => ({ at: p.at, until: p.until })),
        uploads: inp.uploads,
        chain: {
            status: inp.verdict.ok ? "ok" : "broken",
            detail: inp.verdict.ok
                ? `${inp.verdict.records} records, seq 0..${inp.verdict.lastSeq}, head ${inp.verdict.head.toString("hex").slice(0, 16)}...`
                : `first bad seq ${inp.verdict.firstBad}: ${inp.verdict.reason}`,
        },
        series,
        faults,
        stops,
        notes: inp.notes,
        records: records.length,
    }
}
