// Build the report model from a device's records: placed in UTC by the timeline (docs/timebase.md),
// judged against the alarm preset, with the verifier's verdict and the fingerprint of exactly these
// records. `coldtrace report` and the simulator's summary (src/sim/summarize.ts) both come through
// analyzeLog, so a temperature, an excursion or a stop is computed in one place.
import {
    ALARM_TYPE,
    BATTERY_FLAG,
    BATTERY_LEVEL,
    BATTERY_LEVEL_NAME,
    BOOT_REASON,
    KIND,
    decodeRecord,
    decryptLoc,
    isFaulted,
    type AlarmRecord,
    type BatteryRecord,
    type BootRecord,
    type EvictedRecord,
    type FixRecord,
    type LogRecord,
    type RuleAlarmRecord,
    type SampleRecord,
    type StopRecord,
} from "../format/index.js"
import { buildTimeline, tDiff, type Timeline } from "../verify/timeline.js"
import type { LogEntry, Verdict } from "../verify/verify.js"
import type { Excursion, FaultWindow, PowerCut, SeriesPoint, Stop } from "./summary.js"
import {
    REPORT_FORMAT,
    type AlarmEvent,
    type AlarmWindow,
    type Eviction,
    type ReportModel,
    type RoutePoint,
    type RuleOutcome,
    type VerificationInfo,
} from "./model.js"
import type { PresetSource, Shipment } from "./shipment.js"
import { fmtBand, fmtDuration, fmtTime, plural } from "./text.js"
import {
    checkDeviceAlarms,
    checkRuleAlarms,
    evaluateForReport,
    placedOpenings,
    type AlarmRule,
    type OpeningInterval,
} from "../alarms/index.js"

/** Names of the MAX31856 fault status bits (sr b0..b7). */
export const SR_NAMES = ["OPEN", "OVUV", "TCLOW", "TCHIGH", "CJLOW", "CJHIGH", "TCRANGE", "CJRANGE"] as const
/** Names of the logger's own sample flags (sflags b0, b1). */
export const SFLAG_NAMES = ["NO_READING", "CONFIG_MISMATCH"] as const

export function faultName(s: Pick<SampleRecord, "sr" | "sflags">): string {
    const names: string[] = []
    SFLAG_NAMES.forEach((n, i) => s.sflags & (1 << i) && names.push(n))
    SR_NAMES.forEach((n, i) => s.sr & (1 << i) && names.push(n))
    return names.join("+")
}

export const BOOT_REASONS: Record<number, string> = {
    [BOOT_REASON.powerOn]: "power-on or reset",
    [BOOT_REASON.restart]: "restart",
    [BOOT_REASON.watchdog]: "watchdog",
    [BOOT_REASON.brownOut]: "brown-out",
    [BOOT_REASON.interrupted]: "interrupted start-up",
}

export interface Band {
    low: number
    high: number
}

/** Everything the records say, placed in time; no judgement about the chain. */
export interface LogAnalysis {
    records: LogRecord[]
    /** seq -> UTC ms (null: unplaced) */
    utc: Map<number, number | null>
    series: SeriesPoint[]
    minC: number | null
    maxC: number | null
    excursions: Excursion[]
    faults: FaultWindow[]
    faulted: number
    stops: Stop[]
    route: RoutePoint[]
    /** positions that did not authenticate under the location key */
    badPositions: number
    alarmEvents: AlarmEvent[]
    deviceAlarmWindows: AlarmWindow[]
    restarts: PowerCut[]
    evictions: Eviction[]
    unplaced: number
    sampleSeqs: number[]
    /** the battery records placed in time: the cell voltage the logger measured */
    battery: BatteryPoint[]
    /** the lid's openings placed in time (its lid records), undefined without lid records */
    openings: OpeningInterval[] | undefined
}

/** One battery record in time: the cell voltage (V), its low-battery level, external power. */
export interface BatteryPoint {
    t: number
    volts: number
    level: number
    external: boolean
}

/** Distinct records in seq order (the first held copy of a seq wins; bytes that are no record are left out). */
export function decodeDistinct(entries: LogEntry[]): LogRecord[] {
    const bySeq = new Map<number, LogRecord>()
    for (const e of entries) {
        let r: LogRecord
        try {
            r = decodeRecord(e.bytes)
        } catch {
            continue // the verifier reports it as malformed
        }
        if (!bySeq.has(r.seq)) bySeq.set(r.seq, r)
    }
    return [...bySeq.values()].sort((a, b) => a.seq - b.seq)
}

function samplesSeries(samples: SampleRecord[], utc: Map<number, number | null>, band: Band) {
    const series: SeriesPoint[] = []
    const excursions: Excursion[] = []
    const faults: FaultWindow[] = []
    let minC: number | null = null
    let maxC: number | null = null
    let open: Excursion | null = null
    let faulted = 0
    let lastWasFault = false
    for (const s of samples) {
        const t = utc.get(s.seq)
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
        const out = c > band.high || c < band.low
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
    return { series, excursions, faults, minC, maxC, faulted }
}

function position(lockey: Buffer | null | undefined, seq: number, loc: Buffer): { lat: number; lon: number } | null {
    if (!lockey?.length) return null
    try {
        const p = decryptLoc(lockey, seq, loc)
        return { lat: p.lat / 1e7, lon: p.lon / 1e7 }
    } catch {
        return null
    }
}

function stopsAndRoute(records: LogRecord[], utc: Map<number, number | null>, lockey?: Buffer | null) {
    const stops: Stop[] = []
    const route: RoutePoint[] = []
    let badPositions = 0
    for (const r of records) {
        if (r.kind !== KIND.stop && r.kind !== KIND.fix) continue
        const at = utc.get(r.seq) ?? null
        const pos = position(lockey, r.seq, (r as StopRecord | FixRecord).loc)
        if (lockey?.length && !pos) badPositions++
        if (r.kind === KIND.stop) {
            const s = r as StopRecord
            if (at === null) continue
            const stop: Stop = { start: at - tDiff(s.t, s.start) * 1000, end: at }
            if (pos) Object.assign(stop, pos)
            else if (lockey?.length) stop.label = "position does not decrypt"
            stops.push(stop)
            if (pos) route.push({ seq: s.seq, t: at, ...pos, kind: "stop" })
        } else if (pos) route.push({ seq: r.seq, t: at, ...pos, kind: "fix" })
    }
    return { stops, route, badPositions }
}

const ALARM_NAMES: Record<number, AlarmEvent["type"]> = {
    [ALARM_TYPE.aboveBand]: "above",
    [ALARM_TYPE.belowBand]: "below",
    [ALARM_TYPE.backInBand]: "back",
}

/** The device's alarm records (above / below / back in band) as events and windows. */
function deviceAlarms(records: LogRecord[], utc: Map<number, number | null>) {
    const events: AlarmEvent[] = []
    const windows: AlarmWindow[] = []
    let open: AlarmWindow | null = null
    for (const r of records) {
        if (r.kind !== KIND.alarm) continue
        const a = r as AlarmRecord
        const type = ALARM_NAMES[a.type]
        if (!type) continue
        const at = utc.get(a.seq) ?? null
        const c = a.tc / 128
        events.push({ seq: a.seq, at, type, c })
        if (at === null) continue
        if (type === "back") {
            if (open) open.end = at
            open = null
        } else {
            if (open) open.end = at
            open = { start: at, end: null, type, peakC: c }
            windows.push(open)
        }
    }
    return { events, windows }
}

/** The extreme non-faulted reading inside a window (highest above the band, lowest below it). */
function peakIn(series: SeriesPoint[], w: AlarmWindow): number | null {
    let peak: number | null = null
    for (const p of series) {
        const t = p.t as number
        if (p.faulted || p.c === null || t < w.start || (w.end !== null && t > w.end)) continue
        peak = peak === null ? p.c : w.type === "above" ? Math.max(peak, p.c) : Math.min(peak, p.c)
    }
    return peak
}

/** The battery records with a UTC time, in log order (an unplaced one cannot be drawn: counted in the notes). */
function batterySeries(records: LogRecord[], utc: Map<number, number | null>): BatteryPoint[] {
    const out: BatteryPoint[] = []
    for (const r of records) {
        if (r.kind !== KIND.battery) continue
        const b = r as BatteryRecord
        const t = utc.get(b.seq)
        if (t == null) continue
        out.push({ t, volts: b.mv / 1000, level: b.level, external: (b.flags & BATTERY_FLAG.external) !== 0 })
    }
    return out
}

/** Restarts from the boot records: the last record of the boot before (seals excluded: the open epoch is sealed after the restart) to the boot record. */
function restartsFromBoots(records: LogRecord[], utc: Map<number, number | null>): PowerCut[] {
    const out: PowerCut[] = []
    let seenBoot = false
    let lastAlive: number | null = null
    for (const r of records) {
        if (r.kind === KIND.boot) {
            const b = r as BootRecord
            if (seenBoot) {
                const until = utc.get(b.seq) ?? null
                out.push({
                    at: lastAlive ?? "",
                    ...(until !== null ? { until } : {}),
                    boot: b.boot,
                    reason: BOOT_REASONS[b.reason] ?? `reason ${b.reason}`,
                })
            }
            seenBoot = true
            lastAlive = utc.get(b.seq) ?? null
        } else if (r.kind !== KIND.seal) {
            const t = utc.get(r.seq)
            if (t != null) lastAlive = t
        }
    }
    return out
}

/** tFirst/tLast are device times: placed with the clock mapping in effect at the evicted record. */
function evictionsOf(records: LogRecord[], sealed: (seq: number) => boolean, utcAt: Timeline["utcAt"]): Eviction[] {
    const bits = (sr: number, sflags: number) => faultName({ sr, sflags })
    return (records.filter(r => r.kind === KIND.evicted) as EvictedRecord[]).map(e => ({
        seq: e.seq,
        first: e.first,
        last: e.last,
        samples: e.samples,
        tFirst: e.samples ? utcAt(e.seq, e.tFirst) : null,
        tLast: e.samples ? utcAt(e.seq, e.tLast) : null,
        minC: e.samples ? e.minTc / 128 : null,
        maxC: e.samples ? e.maxTc / 128 : null,
        outMin: e.outMin,
        faults: bits(e.srOr, e.sflagsOr),
        sealed: sealed(e.seq),
    }))
}

/** Place and read every record: series, excursions against `band`, faults, stops, alarms, restarts, evictions. */
export function analyzeLog(
    records: LogRecord[],
    opts: { devid: string; band: Band; lockey?: Buffer | null; sealed?: (seq: number) => boolean },
): LogAnalysis {
    const timeline = buildTimeline(records)
    const utc = new Map(timeline.placed.map(p => [p.seq, p.utc]))
    const samples = records.filter(r => r.kind === KIND.sample) as SampleRecord[]
    const s = samplesSeries(samples, utc, opts.band)
    const { stops, route, badPositions } = stopsAndRoute(records, utc, opts.lockey)
    const alarms = deviceAlarms(records, utc)
    for (const w of alarms.windows) w.peakC = peakIn(s.series, w) ?? w.peakC
    return {
        records,
        utc,
        ...s,
        stops,
        route,
        badPositions,
        alarmEvents: alarms.events,
        deviceAlarmWindows: alarms.windows,
        restarts: restartsFromBoots(records, utc),
        evictions: evictionsOf(records, opts.sealed ?? (() => false), timeline.utcAt),
        unplaced: records.filter(r => utc.get(r.seq) == null).length,
        sampleSeqs: samples.map(x => x.seq),
        battery: batterySeries(records, utc),
        openings: placedOpenings(records, utc),
    }
}

/** The host's band rule: excursions of non-faulted readings outside the preset's band. */
export function bandRule(a: Pick<LogAnalysis, "excursions">, band: Band, presetName: string): RuleOutcome {
    const windows: AlarmWindow[] = a.excursions.map(e => {
        const above = e.maxC > band.high
        return {
            start: e.start as number,
            end: (e.end ?? null) as number | null,
            type: above ? "above" : "below",
            peakC: above ? e.maxC : (e.minC ?? null),
        }
    })
    return {
        id: "band",
        name: `Band ${fmtBand(band)} (${presetName}), every non-faulted reading`,
        source: "host",
        recorded: true,
        triggered: windows.length > 0,
        windows,
        events: [],
        note: "evaluated on the host over the recorded readings; an excursion starts at the first reading outside the band and ends at the next reading inside it",
    }
}

export function deviceBandRule(a: Pick<LogAnalysis, "alarmEvents" | "deviceAlarmWindows">): RuleOutcome {
    return {
        id: "device-band",
        name: "Device band alarm (the logger's configured band, with its hysteresis)",
        source: "device",
        recorded: true,
        triggered: a.deviceAlarmWindows.length > 0,
        windows: a.deviceAlarmWindows,
        events: a.alarmEvents,
        note: "alarm records written by the logger: above band, below band, back in band",
    }
}

export const NOT_RECORDED = "not recorded by this firmware"

export function emptySections(): Pick<ReportModel, "battery" | "openings"> {
    return {
        battery: { recorded: false, note: `Battery: ${NOT_RECORDED} (the log holds no voltage records).`, series: [] },
        openings: { recorded: false, note: `Shipper openings: ${NOT_RECORDED} (the log holds no lid or door records).`, events: [] },
    }
}

/**
 * The shipper openings from the lid records (docs/format.md 2.5, placed in UTC by `analyzeLog`): each
 * opening's start and end (ms), and a one-line account of them.
 */
export function openingsSection(list: OpeningInterval[] | undefined): ReportModel["openings"] {
    if (!list) return emptySections().openings
    if (!list.length) return { recorded: true, note: "Shipper openings: none (the lid sensor saw the lid closed throughout).", events: [] }
    const closed = list.filter(o => o.endMs !== null)
    const total = closed.reduce((n, o) => n + (o.endMs! - o.startMs), 0)
    const longest = closed.reduce((m, o) => Math.max(m, o.endMs! - o.startMs), 0)
    const open = list.length - closed.length
    const note =
        `Shipper openings: ${plural(list.length, "opening")} from the lid sensor's records, open ${fmtDuration(total)} in all` +
        (closed.length ? `, the longest ${fmtDuration(longest)}` : "") +
        (open ? `; the lid was open at the end of the log (since ${fmtTime(list[list.length - 1].startMs)})` : "") +
        "."
    return { recorded: true, note, events: list.map(o => ({ start: o.startMs, end: o.endMs })) }
}

/** The battery section from the battery records: the voltage series and a one-line account of it. */
export function batterySection(points: BatteryPoint[]): ReportModel["battery"] {
    if (!points.length) return emptySections().battery
    const volts = points.map(p => p.volts)
    const first = points[0]
    const last = points[points.length - 1]
    const worst = Math.max(...points.map(p => p.level))
    const cutoff = points.find(p => p.level === BATTERY_LEVEL.cutoff)
    const v = (x: number) => `${x.toFixed(2)} V`
    const note =
        `${points.length} battery record${points.length === 1 ? "" : "s"}: the cell at ${v(first.volts)} first and ${v(last.volts)} last ` +
        `(lowest ${v(Math.min(...volts))}); worst level ${BATTERY_LEVEL_NAME[worst] ?? `level ${worst}`}` +
        (points.some(p => p.external) ? "; external power seen" : "") +
        "." +
        (cutoff ? ` The logger reached its battery cut-off at ${fmtTime(cutoff.t)} and stopped recording there.` : "")
    return { recorded: true, note, series: points.map(p => ({ t: p.t, volts: p.volts })) }
}

export function alarmsNote(configured: boolean): string {
    return configured
        ? `The rules the logger was configured with, evaluated on the host by the rule engine (docs/alarms.md) and checked against the logger's own rule alarm records; the band over every reading, and the logger's own band alarm records, checked against its band.`
        : `The preset's rules evaluated on the host by the rule engine (docs/alarms.md), the preset's band over every reading, and the logger's own band alarm records, checked against its band.`
}

export function verificationInfo(v: Verdict, text: string): VerificationInfo {
    return {
        word: v.ok ? "VERIFIED" : v.status.toUpperCase(),
        ok: v.ok,
        firstBad: v.firstBad ?? null,
        reason: v.reason ?? null,
        records: v.records,
        sealedThrough: v.sealedThrough,
        unsealed: v.unsealed,
        positions: v.positions,
        problems: v.problems,
        text,
    }
}

const WHY_TEXT: Record<number, string> = { 1: "above", 2: "below", 3: "too many openings", 4: "open too long" }

/**
 * Each configured rule's note says what the logger itself recorded for it (its rule alarm records,
 * kind 11: raised or cleared, why, when), next to the host's judgement of the same rule.
 */
function withLoggerEvents(
    outcomes: { id: string; note: string }[],
    rules: AlarmRule[],
    records: LogRecord[],
    utc: Map<number, number | null>,
) {
    const byRule = new Map<number, string[]>()
    for (const r of records) {
        if (r.kind !== KIND.ruleAlarm || !("rule" in r)) continue
        const ev = r as RuleAlarmRecord
        const at = utc.get(ev.seq)
        const why = WHY_TEXT[ev.why] ? ` (${WHY_TEXT[ev.why]})` : ""
        const list = byRule.get(ev.rule) ?? []
        list.push(`${ev.raise ? "raised" : "cleared"}${why} ${at == null ? `at device time ${ev.t}` : fmtTime(at)}`)
        byRule.set(ev.rule, list)
    }
    rules.forEach((rule, i) => {
        const o = outcomes.find(x => x.id === `configured.${rule.id}`)
        if (!o) return
        const list = byRule.get(i) ?? []
        const shown = list.slice(0, 6).join(", ") + (list.length > 6 ? `, and ${list.length - 6} more` : "")
        o.note += `; the logger recorded ${list.length ? shown : "no event"}`
    })
}

/** The alarms section: the band rules as before, then the rule engine's rules, its recommendation and the device check. */
export function engineAlarms(
    records: LogRecord[],
    a: LogAnalysis,
    band: Band,
    preset: { id: string; name: string; low: number; high: number },
    deviceBand: Band | undefined,
    o: { verified: boolean; verdictWord: string; lost?: number },
    /** the alarm rules the logger was configured with, when known: its rule alarm records are checked against them */
    deviceRules?: { rules: AlarmRule[]; intervalS?: number },
): ReportModel["alarms"] {
    const deviceCheck = checkDeviceAlarms(records, deviceBand ?? band)
    const ruleCheck = deviceRules ? checkRuleAlarms(records, deviceRules) : null
    // against an assumed band a disagreement may only mean the logger was configured otherwise:
    // shown, but a reason to quarantine only when the configured band is known
    if (!deviceBand) deviceCheck.notes.unshift(`assumed: the logger was configured with the preset's band ${fmtBand(band)}`)
    // the host judges the rules the logger ran when they are known, the preset's otherwise
    const e = evaluateForReport(records, a.utc, preset, {
        ...o,
        deviceCheck: deviceBand ? deviceCheck : null,
        ruleCheck,
        rules: deviceRules?.rules,
        openings: a.openings,
    })
    if (deviceRules) withLoggerEvents(e.rules, deviceRules.rules, records, a.utc)
    return {
        note: alarmsNote(!!deviceRules),
        rules: [bandRule(a, band, preset.name), deviceBandRule(a), ...e.rules],
        recommendation: e.recommendation,
        deviceCheck,
    }
}

export interface BuildInput {
    devid: string
    /** the log as its holder keeps it (what the verifier read) */
    entries: LogEntry[]
    verdict: Verdict
    /** the verifier's text (formatVerdict) */
    verdictText: string
    lockey: Buffer | null
    shipment: Shipment | null
    preset: { id: string; name: string; low: number; high: number; source: PresetSource }
    /** the band the logger was configured with (its alarm records are checked against it); default: the preset's */
    deviceBand?: { low: number; high: number }
    timeZone: string
    source: { kind: "server" | "device"; name: string }
    /** the highest seq acknowledged to the device (checkpoints, or the device's lgack) */
    ackSeq: number | null
    uploads?: { attempts: number; ok: number; failed: number }
    generatedAt: Date
}

/** Samples the evicted summaries account for that are not held any more. */
function evictedSamplesGone(evictions: Eviction[], held: Set<number>, sampleSeqs: Set<number>): number {
    let gone = 0
    for (const e of evictions) {
        let heldSamples = 0
        let heldAny = false
        for (let q = e.first; q <= e.last && q - e.first < 1_000_000; q++)
            if (held.has(q)) {
                heldAny = true
                if (sampleSeqs.has(q)) heldSamples++
            }
        gone += heldAny ? Math.max(0, e.samples - heldSamples) : e.samples
    }
    return gone
}

export interface BuiltReport {
    model: ReportModel
    /** the distinct records the model describes, in seq order (for the CSV's one row per record) */
    records: LogRecord[]
    utc: Map<number, number | null>
}

/** The model of `coldtrace report`: the records, the verifier's verdict, the shipment and the zone. */
export function buildReport(inp: BuildInput): BuiltReport {
    const records = decodeDistinct(inp.entries)
    const band = { low: inp.preset.low, high: inp.preset.high }
    const sealedSeqs = inp.verdict.evictedRanges.filter(e => e.sealed).map(e => e.seq)
    const a = analyzeLog(records, { devid: inp.devid, band, lockey: inp.lockey, sealed: q => sealedSeqs.includes(q) })
    const held = new Set(records.map(r => r.seq))
    const sampleSeqs = new Set(a.sampleSeqs)
    const lost = evictedSamplesGone(a.evictions, held, sampleSeqs)
    const acked = inp.ackSeq === null ? 0 : a.sampleSeqs.filter(q => q <= inp.ackSeq!).length
    const times = a.series.map(p => p.t as number)
    const v = inp.verdict
    const notes: string[] = []
    if (a.unplaced)
        notes.push(
            `${a.unplaced} record${a.unplaced === 1 ? "" : "s"} without a UTC time (a boot that never saw a time source): not drawn, listed by seq in the CSV.`,
        )
    if (inp.preset.source === "default")
        notes.push(`No alarm preset given (no shipment file, or none in it): judged against the default preset, ${inp.preset.name}.`)
    if (a.badPositions)
        notes.push(`${a.badPositions} position${a.badPositions === 1 ? "" : "s"} did not authenticate under the location key: not shown.`)
    notes.push(...v.notes.slice(0, 20))
    const routeNote = inp.lockey
        ? a.route.length
            ? `${a.route.length} authenticated position${a.route.length === 1 ? "" : "s"} (GNSS fixes and stops), decrypted with the location key.`
            : "No position in the log."
        : "Positions are encrypted on the logger; the keys file holds no location key (lockey), so no position is shown."
    const model: ReportModel = {
        reportFormat: REPORT_FORMAT,
        scenario: inp.shipment?.shipmentId ?? `device ${inp.devid}`,
        deviceId: inp.devid,
        started: times.length ? new Date(Math.min(...times)).toISOString() : "",
        ended: times.length ? new Date(Math.max(...times)).toISOString() : "",
        samples: {
            taken: a.sampleSeqs.length + lost,
            stored: a.sampleSeqs.length,
            acknowledged: acked,
            onDevice: inp.source.kind === "device" ? a.sampleSeqs.length - acked : 0,
            lost,
            faulted: a.faulted,
        },
        minC: a.minC,
        maxC: a.maxC,
        alarmBand: band,
        excursions: a.excursions,
        powerCuts: a.restarts,
        uploads: inp.uploads ?? { attempts: 0, ok: 0, failed: 0 },
        chain: { status: v.ok ? "ok" : v.status, detail: inp.verdictText },
        series: a.series,
        stops: a.stops,
        faults: a.faults,
        notes,
        source: inp.source,
        timeZone: inp.timeZone,
        generatedAt: inp.generatedAt.toISOString(),
        shipment: inp.shipment,
        preset: { id: inp.preset.id, name: inp.preset.name, source: inp.preset.source },
        fingerprint: { devid: inp.devid, firstSeq: v.firstSeq, lastSeq: v.lastSeq, head: v.head },
        verification: verificationInfo(v, inp.verdictText),
        alarms: engineAlarms(records, a, band, inp.preset, inp.deviceBand, {
            verified: v.ok,
            verdictWord: v.ok ? "VERIFIED" : v.status.toUpperCase(),
            lost,
        }),
        ...emptySections(),
        battery: batterySection(a.battery),
        openings: openingsSection(a.openings),
        route: { shown: !!inp.lockey && a.route.length > 0, note: routeNote, points: inp.lockey ? a.route : [] },
        evictions: a.evictions,
        unplaced: a.unplaced,
    }
    return { model, records, utc: a.utc }
}
