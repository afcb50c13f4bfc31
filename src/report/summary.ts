/**
 * What a shipment report shows: one logger, one shipment (or one simulator scenario), as reconstructed
 * on the host from the records the server holds and, where available, from the device.
 *
 * Times are either ISO 8601 strings (UTC, e.g. "2024-05-01T12:00:00.000Z") or numbers of
 * milliseconds since 1970-01-01T00:00:00Z (Unix epoch ms). "World time" is the UTC timeline of the
 * shipment (GPS / network / simulator world time), not the device's clock.
 * Temperatures are degrees Celsius.
 */

/** ISO 8601 string or Unix epoch milliseconds. */
export type TimeValue = string | number

/**
 * "ok": verified; "tampered" / "incomplete": the verifier's verdicts (docs/verify.md); "broken": the
 * simulator's checks failed; "unverified": nobody checked.
 */
export type ChainStatus = "ok" | "broken" | "unverified" | "tampered" | "incomplete"

export interface SampleCounts {
    /** samples the device took (sequence numbers allocated for samples) */
    taken: number
    /** samples that reached the server */
    stored: number
    /** samples the server acknowledged to the device */
    acknowledged: number
    /** samples still only on the device at the end */
    onDevice: number
    /** samples that exist nowhere any more (evicted unsent, lost in a power cut, ...) */
    lost: number
    /** samples whose reading is a fault (open thermocouple, no answer from the chip, ...) */
    faulted: number
}

export interface Excursion {
    start: TimeValue
    /** `null` while the excursion is still going on at the end of the report */
    end: TimeValue | null
    /** highest (non-faulted) temperature during the excursion */
    maxC: number
    /** lowest (non-faulted) temperature during the excursion, when known (below-band excursions) */
    minC?: number
}

export interface PowerCut {
    at: TimeValue
    /** when power came back, if known */
    until?: TimeValue
    /** the boot counter of the start-up after it, when known from the log */
    boot?: number
    /** why the logger started again, from its boot record: "power-on or reset", "soft restart", "watchdog" */
    reason?: string
}

export interface Stop {
    start: TimeValue
    end?: TimeValue | null
    /** free text, e.g. "Nairobi depot" */
    label?: string
    lat?: number
    lon?: number
}

/** A run of consecutive faulted readings with the same fault. */
export interface FaultWindow {
    /** time of the first and of the last faulted reading in the run */
    start: TimeValue
    end: TimeValue
    /** fault name(s), e.g. "OPEN" or "NO_READING" */
    fault: string
    samples: number
}

export interface SeriesPoint {
    t: TimeValue
    /** temperature; `null` when there is no reading */
    c: number | null
    /** the reading is a fault: it is never drawn as a temperature */
    faulted: boolean
    /** fault name, e.g. "OPEN" or "NO_READING" */
    fault?: string
}

export interface ShipmentSummary {
    /** scenario or shipment name */
    scenario: string
    /** device id, 16 lower-case hex digits */
    deviceId: string
    /** world time (ISO) of the first record of the shipment */
    started: string
    /** world time (ISO) of the last record / end of the report */
    ended: string
    samples: SampleCounts
    /** lowest non-faulted temperature, `null` when there is none */
    minC: number | null
    /** highest non-faulted temperature, `null` when there is none */
    maxC: number | null
    /** the allowed band, e.g. { low: 2, high: 8 } */
    alarmBand: { low: number; high: number }
    excursions: Excursion[]
    powerCuts: PowerCut[]
    uploads: { attempts: number; ok: number; failed: number }
    /** whether the hash chain over the records verifies */
    chain: { status: ChainStatus; detail: string }
    /** the temperature series in time order (the renderer sorts it anyway) */
    series: SeriesPoint[]
    stops?: Stop[]
    /** sensor fault windows, in time order */
    faults?: FaultWindow[]
    notes: string[]
}

/** Milliseconds since the epoch for a TimeValue, or NaN when it cannot be read. */
export function timeMs(t: TimeValue | null | undefined): number {
    if (typeof t === "number") return Number.isFinite(t) ? t : NaN
    if (typeof t === "string" && t.trim() !== "") return Date.parse(t)
    return NaN
}
