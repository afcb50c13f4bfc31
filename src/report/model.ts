// The one report model: what every output (HTML, PDF, CSV, EPCIS, summary.json) shows, built once
// from the records (src/report/build.ts). It extends the simulator's ShipmentSummary, so a summary
// written by `coldtrace sim` renders with the same code; fields a summary lacks show as "not available".
//
// Sections that later firmware will fill exist already, in an honest "not recorded" state:
// per-rule alarms (the rule engine), battery (voltage records), shipper openings. Each is a list
// plus a `recorded` flag and a note, so new data plugs in without reshaping the model.
import type { ShipmentSummary, ChainStatus } from "./summary.js"
import type { Shipment } from "./shipment.js"
import type { Problem } from "../verify/verify.js"
import { fmtBand } from "./text.js"
import type { DeviceAlarmCheck, Recommendation } from "../alarms/index.js"
import type { EnergySummary, EnergyUse } from "../sim/energy.js"

export const REPORT_FORMAT = "coldtrace-report-v1"

/** Which records the report describes: enough for anyone to recompute and compare (docs/reports.md). */
export interface Fingerprint {
    devid: string
    firstSeq: number | null
    lastSeq: number | null
    /** head[lastSeq] recomputed over the records, 64 hex digits (null without records) */
    head: string | null
}

/** A device alarm record (kind 6) placed in time. */
export interface AlarmEvent {
    seq: number
    at: number | null
    type: "above" | "below" | "back"
    c: number
}

/** A time span during which a rule's condition held. */
export interface AlarmWindow {
    start: number
    /** null: still holding at the end of the log */
    end: number | null
    type: "above" | "below"
    /** extreme non-faulted reading in the window, when known */
    peakC: number | null
}

/** One alarm rule and what it found. */
export interface RuleOutcome {
    id: string
    name: string
    /** "host": evaluated here on the readings; "device": raised by the logger itself (alarm records) */
    source: "host" | "device"
    /** false: this firmware records nothing for the rule */
    recorded: boolean
    triggered: boolean
    windows: AlarmWindow[]
    /** the device's own alarm records behind the windows */
    events: AlarmEvent[]
    note: string
    /** rules of the rule engine (docs/alarms.md): outcome and figures */
    outcome?: "ok" | "alarm" | "not-judged"
    notJudged?: "input" | "unknown-time"
    inConditionS?: number
    worstC?: number | null
    mktC?: number | null
    openings?: number | null
}

export interface RoutePoint {
    seq: number
    t: number | null
    lat: number
    lon: number
    kind: "fix" | "stop"
}

export interface Eviction {
    seq: number
    first: number
    last: number
    samples: number
    /** UTC ms of the first and last removed sample, null when the device did not know */
    tFirst: number | null
    tLast: number | null
    minC: number | null
    maxC: number | null
    outMin: number
    faults: string
    sealed: boolean
}

export interface VerificationInfo {
    /** the verifier's verdict word: VERIFIED, TAMPERED, INCOMPLETE (or NOT VERIFIED in a simulation) */
    word: string
    ok: boolean
    firstBad: number | null
    reason: string | null
    records: number
    sealedThrough: number | null
    unsealed: number
    positions: { decrypted: number; failed: number } | null
    problems: Problem[]
    /** the verifier's text as `coldtrace verify` prints it */
    text: string
}

export interface ReportModel extends ShipmentSummary {
    reportFormat: typeof REPORT_FORMAT
    /** where the records come from */
    source: { kind: "server" | "device" | "simulation"; name: string }
    /** IANA zone for local times (records stay UTC) */
    timeZone: string
    generatedAt: string
    shipment: Shipment | null
    /** how the alarm band was chosen */
    preset: { id: string; name: string; source: "shipment" | "provisioning" | "default" | "scenario" }
    fingerprint: Fingerprint
    verification: VerificationInfo | null
    alarms: { note: string; rules: RuleOutcome[]; recommendation?: Recommendation; deviceCheck?: DeviceAlarmCheck | null }
    /** the battery records: the cell voltage the logger measured (V), in time order */
    battery: { recorded: boolean; note: string; series: { t: number; volts: number }[] }
    /**
     * The simulator's energy accounting (summary.json `energy`, src/sim/energy.ts): what the run drew
     * from the cell and the battery life it projects. Absent from a real logger's report.
     */
    energy?: EnergySummary | null
    openings: { recorded: boolean; note: string; events: { start: number; end: number | null }[] }
    /** positions: shown only to whoever holds the location key */
    route: { shown: boolean; note: string; points: RoutePoint[] }
    evictions: Eviction[]
    /** records without a UTC time (a boot that never saw a time source) */
    unplaced: number
}

/** How the HTML and PDF reports name where the simulated charge went (EnergySummary.byUse). */
export const ENERGY_USE_LABELS: Record<EnergyUse, string> = {
    awake: "Awake (ESP32 and board)",
    sleep: "Sleep floor",
    sampling: "Sampling (thermocouple conversions)",
    wifi: "Wi-Fi uploads",
    cellular: "Cellular (Notecard)",
    gnss: "GNSS receiver",
}

/** The uses in the order the reports list them. */
export function energyUses(): EnergyUse[] {
    return Object.keys(ENERGY_USE_LABELS) as EnergyUse[]
}

/** A ReportModel or a simulator summary: renderers take either. */
export type ReportLike = ShipmentSummary & Partial<ReportModel>

export type Level = "ok" | "warn" | "bad"

const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v)

/** The verifier's word for a chain status. */
export function chainWord(status: ChainStatus | undefined): string {
    switch (status) {
        case "ok":
            return "VERIFIED"
        case "tampered":
            return "TAMPERED"
        case "incomplete":
            return "INCOMPLETE"
        case "broken":
            return "NOT VERIFIED"
        default:
            return "UNVERIFIED"
    }
}

export function chainFailed(status: ChainStatus | undefined): boolean {
    return status === "broken" || status === "tampered" || status === "incomplete"
}

/**
 * The fingerprint as one line, the same in every format: device, seq range, head at the last seq,
 * verdict. Anyone holding the log recomputes it (`coldtrace verify --json`: devid, firstSeq,
 * lastSeq, head; docs/reports.md).
 */
export function fingerprintLine(r: ReportLike): string {
    const f = r.fingerprint
    if (!f) return `coldtrace-fingerprint-v1 device ${r.deviceId} (no fingerprint in this summary) verdict ${chainWord(r.chain?.status)}`
    const range = f.firstSeq === null ? "no records" : `seq ${f.firstSeq}..${f.lastSeq}`
    return `coldtrace-fingerprint-v1 device ${f.devid} ${range} head ${f.head ?? "-"} verdict ${chainWord(r.chain?.status)}`
}

export interface OverallVerdict {
    level: Level
    word: string
    text: string
}

const bandText = (r: ReportLike) => fmtBand(r.alarmBand)

/** The report's one-word verdict: data integrity first (chain, lost samples), then temperature. */
export function overallVerdict(r: ReportLike): OverallVerdict {
    const status = r.chain?.status
    const detail = (r.chain?.detail ?? "")
        .split("\n")
        .filter(l => l && !l.startsWith(" "))
        .join("; ")
    const withDetail = (text: string) => (detail ? `${text}: ${detail}` : `${text}.`)
    const lost = isNum(r.samples?.lost) ? r.samples.lost : 0
    const faulted = isNum(r.samples?.faulted) ? r.samples.faulted : 0
    const excursions = Array.isArray(r.excursions) ? r.excursions.length : 0
    const hasReadings = (Array.isArray(r.series) && r.series.some(p => !p.faulted && isNum(p.c))) || isNum(r.minC) || isNum(r.maxC)
    if (status === "broken" || status === "tampered")
        return { level: "bad", word: "FAIL", text: withDetail("Record chain broken, the data cannot be trusted") }
    if (status === "incomplete") return { level: "bad", word: "INCOMPLETE", text: withDetail("The log is incomplete") }
    if (lost > 0) return { level: "bad", word: "INCOMPLETE", text: `${lost} sample${lost === 1 ? "" : "s"} lost: the record has holes.` }
    if (!hasReadings) return { level: "bad", word: "NO DATA", text: "No valid temperature reading in this report." }
    if (status !== "ok") return { level: "warn", word: "UNVERIFIED", text: withDetail("The record chain was not verified") }
    if (excursions > 0)
        return { level: "bad", word: "EXCURSION", text: `${excursions} excursion${excursions === 1 ? "" : "s"} outside ${bandText(r)}.` }
    if (faulted > 0)
        return {
            level: "warn",
            word: "CHECK",
            text: `No excursion in the readings, but ${faulted} reading${faulted === 1 ? " is" : "s are"} faulted (temperature unknown at those times).`,
        }
    return { level: "ok", word: "PASS", text: `Complete, chain verified, within ${bandText(r)} throughout.` }
}

/** A rule's status word and level: the engine's outcome when it has one, else triggered or not. */
export function ruleStatus(r: RuleOutcome): [Level, string] {
    if (!r.recorded) return ["warn", "NOT RECORDED"]
    if (r.outcome === "alarm") return ["bad", "ALARM"]
    if (r.outcome === "not-judged") return ["warn", "NOT JUDGED"]
    if (r.outcome === "ok") return ["ok", "OK"]
    return r.triggered ? ["bad", "TRIGGERED"] : ["ok", "NOT TRIGGERED"]
}

/** The time zone a summary is shown in (UTC for a summary without one). */
export function zoneOf(r: ReportLike): string {
    return r.timeZone ?? "UTC"
}
