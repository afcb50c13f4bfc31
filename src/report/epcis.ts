// GS1 EPCIS 2.0 JSON-LD (docs/reports.md): the supply chain's own event format, so a receiver's
// system takes the logger's story without our software. One ObjectEvent per time window with the
// readings' minimum, maximum and mean (sensorElementList), one per alarm window (exception
// ALARM_CONDITION) and one per sensor-fault window (exception ERROR_CONDITION). The shipment file's
// SSCC and GTIN + lot name the objects (GS1 Digital Link URIs); positions become a `geo:` readPoint
// only when the report may show them (the location key was given).
import { createHash } from "node:crypto"
import type { SeriesPoint } from "./summary.js"
import { chainWord, fingerprintLine, overallVerdict, zoneOf, type ReportModel, type RuleOutcome } from "./model.js"
import { isoUtc, offsetMinutes, offsetText } from "./time.js"

export const EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
/** Our extension fields ("coldtrace:...") live in this namespace. */
export const COLDTRACE_NS = "urn:coldtrace:epcis:"
/** CBV choices, documented in docs/reports.md. */
export const BIZ_STEP = "sensor_reporting"
export const DISPOSITION = "in_transit"
const HOUR = 3_600_000
/** Window lengths tried in order: the first that keeps a shipment within MAX_WINDOWS events. */
export const WINDOW_STEPS = [1, 2, 3, 6, 12, 24].map(h => h * HOUR)
export const MAX_WINDOWS = 744

export class EpcisError extends Error {}

type Json = Record<string, unknown>

export const deviceUri = (devid: string) => `urn:coldtrace:logger:${devid}`
export const ssccUri = (sscc: string) => `https://id.gs1.org/00/${sscc}`
export const gtinUri = (gtin: string, lot?: string) => `https://id.gs1.org/01/${gtin}${lot ? `/10/${encodeURIComponent(lot)}` : ""}`
export const glnUri = (gln: string) => `https://id.gs1.org/414/${gln}`

/** Whether a model names an object EPCIS events can be about (an SSCC or a GTIN). */
export function epcisIdentifiable(m: ReportModel): boolean {
    return !!(m.shipment?.sscc || m.shipment?.product?.gtin)
}

/** The window length used for a shipment spanning t0..t1. */
export function windowLength(t0: number, t1: number): number {
    return WINDOW_STEPS.find(w => Math.floor(t1 / w) - Math.floor(t0 / w) + 1 <= MAX_WINDOWS) ?? 7 * 24 * HOUR
}

/** Deterministic event ids: the same log gives the same document. */
function eventId(...parts: (string | number)[]): string {
    const h = createHash("sha256").update(parts.join("|")).digest("hex")
    return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`
}

interface Aggregate {
    readings: number
    minValue: number
    maxValue: number
    meanValue: number
}

/** Minimum, maximum and mean of the non-faulted readings (mean rounded to 1e-4 °C). */
export function aggregate(points: SeriesPoint[]): Aggregate | null {
    const cs = points.filter(p => !p.faulted && typeof p.c === "number").map(p => p.c as number)
    if (!cs.length) return null
    const mean = cs.reduce((a, b) => a + b, 0) / cs.length
    return { readings: cs.length, minValue: Math.min(...cs), maxValue: Math.max(...cs), meanValue: Math.round(mean * 1e4) / 1e4 }
}

function temperatureReport(agg: Aggregate | null, extra: Json = {}): Json {
    const values = agg ? { minValue: agg.minValue, maxValue: agg.maxValue, meanValue: agg.meanValue, uom: "CEL" } : {}
    return { type: "Temperature", ...extra, ...values, "coldtrace:readings": agg?.readings ?? 0 }
}

class EventWriter {
    readonly events: { t: number; e: Json }[] = []
    private readonly zone: string
    private readonly what: Json
    private readonly positions: ReportModel["route"]["points"]

    constructor(private readonly m: ReportModel) {
        this.zone = zoneOf(m)
        const sh = m.shipment!
        this.what = {
            ...(sh.sscc ? { epcList: [ssccUri(sh.sscc)] } : {}),
            ...(sh.product?.gtin ? { quantityList: [{ epcClass: gtinUri(sh.product.gtin, sh.lot) }] } : {}),
        }
        this.positions = m.route.shown ? m.route.points.filter(p => p.t !== null) : []
    }

    /** The last authenticated position at or before `t`, as a geo URI readPoint. */
    private readPoint(t: number): Json {
        let best: (typeof this.positions)[number] | undefined
        for (const p of this.positions) if ((p.t as number) <= t) best = p
        return best ? { readPoint: { id: `geo:${best.lat},${best.lon}` } } : {}
    }

    private parties(): Json {
        const sh = this.m.shipment!
        return {
            ...(sh.sender?.gln ? { sourceList: [{ type: "location", source: glnUri(sh.sender.gln) }] } : {}),
            ...(sh.receiver?.gln ? { destinationList: [{ type: "location", destination: glnUri(sh.receiver.gln) }] } : {}),
        }
    }

    add(kind: string, start: number, end: number, report: Json, metadata: Json = {}): void {
        this.events.push({
            t: end,
            e: {
                type: "ObjectEvent",
                eventTime: isoUtc(end),
                eventTimeZoneOffset: offsetText(offsetMinutes(end, this.zone)),
                eventID: eventId(this.m.deviceId, kind, start, end, JSON.stringify(metadata)),
                ...this.what,
                action: "OBSERVE",
                bizStep: BIZ_STEP,
                disposition: DISPOSITION,
                ...this.readPoint(end),
                ...this.parties(),
                sensorElementList: [
                    {
                        sensorMetadata: {
                            startTime: isoUtc(start),
                            endTime: isoUtc(end),
                            deviceID: deviceUri(this.m.deviceId),
                            ...metadata,
                        },
                        sensorReport: [report],
                    },
                ],
            },
        })
    }
}

const pointsIn = (series: SeriesPoint[], start: number, endExclusive: number) =>
    series.filter(p => (p.t as number) >= start && (p.t as number) < endExclusive)

function windowEvents(w: EventWriter, series: SeriesPoint[], t0: number, t1: number): void {
    const len = windowLength(t0, t1)
    for (let ws = Math.floor(t0 / len) * len; ws <= t1; ws += len) {
        const pts = pointsIn(series, ws, ws + len)
        const agg = aggregate(pts)
        if (!agg) continue // only faulted readings: the fault window's event tells
        const times = pts.map(p => p.t as number)
        w.add("window", Math.min(...times), Math.max(...times), temperatureReport(agg), { "coldtrace:window": `PT${len / HOUR}H` })
    }
}

function alarmEvents(w: EventWriter, series: SeriesPoint[], rule: RuleOutcome, lastT: number): void {
    for (const win of rule.windows) {
        // the window ends at the first reading back in band, which is not part of it
        const end = win.end ?? lastT + 1
        const pts = pointsIn(series, win.start, end)
        const times = pts.map(p => p.t as number)
        const last = times.length ? Math.max(...times) : win.start
        w.add(`alarm-${rule.id}`, win.start, last, temperatureReport(aggregate(pts), { exception: "ALARM_CONDITION" }), {
            bizRules: `urn:coldtrace:rule:${rule.id}`,
            "coldtrace:condition": win.type,
            "coldtrace:ongoing": win.end === null,
        })
    }
}

function faultEvents(w: EventWriter, m: ReportModel): void {
    for (const f of m.faults ?? []) {
        const [a, b] = [f.start as number, f.end as number]
        w.add("fault", a, b, {
            type: "Temperature",
            exception: "ERROR_CONDITION",
            "coldtrace:fault": f.fault,
            "coldtrace:readings": f.samples,
        })
    }
}

/** The EPCIS 2.0 document of a report model; throws EpcisError without an SSCC or GTIN to report on. */
export function renderEpcis(m: ReportModel): Json {
    if (!epcisIdentifiable(m))
        throw new EpcisError("EPCIS events need an object: give a shipment file with an sscc or a product gtin (docs/reports.md)")
    const series = (m.series ?? []).filter(p => typeof p.t === "number").sort((a, b) => (a.t as number) - (b.t as number))
    const w = new EventWriter(m)
    if (series.length) {
        const t0 = series[0].t as number
        const t1 = series[series.length - 1].t as number
        windowEvents(w, series, t0, t1)
        for (const rule of m.alarms.rules) if (rule.recorded) alarmEvents(w, series, rule, t1)
        faultEvents(w, m)
    }
    w.events.sort((a, b) => a.t - b.t)
    return {
        "@context": [EPCIS_CONTEXT, { coldtrace: COLDTRACE_NS }],
        type: "EPCISDocument",
        schemaVersion: "2.0",
        creationDate: m.generatedAt,
        "coldtrace:shipmentId": m.shipment!.shipmentId,
        "coldtrace:verdict": overallVerdict(m).word,
        "coldtrace:verification": chainWord(m.chain.status),
        "coldtrace:fingerprint": fingerprintLine(m),
        epcisBody: { eventList: w.events.map(x => x.e) },
    }
}
