// CSV for spreadsheets and receivers' systems (docs/reports.md): a short header block (device,
// range, verdict, fingerprint), a blank line, then one row per record of interest. UTC in ISO 8601
// and the local time of the report's zone; a temperature only for non-faulted samples, every fault
// bit in its own column. RFC 4180 quoting, CRLF line ends, UTF-8 with a byte order mark so that
// spreadsheet programs read the degree sign.
import {
    BATTERY_FLAG,
    BATTERY_LEVEL_NAME,
    BOOT_RTC,
    KIND,
    isFaulted,
    type AlarmRecord,
    type BatteryRecord,
    type RuleAlarmRecord,
    type LidRecord,
    type BootRecord,
    type ConfigRecord,
    type EvictedRecord,
    type LogRecord,
    type SampleRecord,
    type StopRecord,
} from "../format/index.js"
import { BOOT_REASONS, SFLAG_NAMES, SR_NAMES, faultName } from "./build.js"
import { tDiff } from "../verify/timeline.js"
import { chainWord, fingerprintLine, overallVerdict, zoneOf, type ReportModel } from "./model.js"
import { fmtBand } from "./text.js"
import { outcomeWord } from "../alarms/report.js"
import { isoLocal, isoUtc, zoneLabel } from "./time.js"
import { timeMs } from "./summary.js"

export const CSV_FORMAT = "coldtrace-csv-v1"

const FAULT_COLUMNS = [...SFLAG_NAMES, ...SR_NAMES].map(n => n.toLowerCase())

export const CSV_COLUMNS = ["seq", "boot", "record", "utc", "local", "temperature_c", ...FAULT_COLUMNS, "lat", "lon", "detail"] as const

/** One field, quoted when it holds a comma, a quote or a line break (RFC 4180). */
export function csvField(v: unknown): string {
    const s = v === null || v === undefined ? "" : String(v)
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}

const line = (fields: unknown[]) => fields.map(csvField).join(",")

/** Fault bits of a sample as 0/1 columns, in FAULT_COLUMNS order. */
function faultBits(s: SampleRecord): number[] {
    return [...SFLAG_NAMES.map((_, i) => (s.sflags >> i) & 1), ...SR_NAMES.map((_, i) => (s.sr >> i) & 1)]
}

const ALARM_TEXT: Record<number, string> = { 1: "above band", 2: "below band", 3: "back in band" }

/** The record kinds a CSV lists; time anchors and seals are bookkeeping, left out. */
const OF_INTEREST: Record<number, string> = {
    [KIND.sample]: "sample",
    [KIND.alarm]: "alarm",
    [KIND.boot]: "boot",
    [KIND.config]: "config",
    [KIND.stop]: "stop",
    [KIND.fix]: "fix",
    [KIND.evicted]: "evicted",
    [KIND.battery]: "battery",
    [KIND.ruleAlarm]: "rule alarm",
    [KIND.lid]: "lid",
}

const RTC_TEXT: [number, string][] = [
    [BOOT_RTC.lost, "clock lost its power"],
    [BOOT_RTC.backup, "clock on backup supply"],
    [BOOT_RTC.unset, "clock not set"],
]

function detail(r: LogRecord): string {
    switch (r.kind) {
        case KIND.sample:
            return isFaulted(r as SampleRecord) ? `fault ${faultName(r as SampleRecord)}` : ""
        case KIND.alarm: {
            const a = r as AlarmRecord
            return `${ALARM_TEXT[a.type] ?? `type ${a.type}`} at ${a.tc / 128} C`
        }
        case KIND.boot: {
            const b = r as BootRecord
            const rtc = RTC_TEXT.filter(([bit]) => b.rtc & bit).map(([, text]) => text)
            return [`boot ${b.boot}`, BOOT_REASONS[b.reason] ?? `reason ${b.reason}`, ...rtc].join(", ")
        }
        case KIND.config:
            return `configuration hash ${(r as ConfigRecord).hash.toString("hex")}`
        case KIND.stop:
            return `stop of ${Math.round(tDiff((r as StopRecord).t, (r as StopRecord).start) / 60)} min`
        case KIND.evicted: {
            const e = r as EvictedRecord
            return `records ${e.first}..${e.last} removed unsent: ${e.samples} samples, ${e.minTc / 128}..${e.maxTc / 128} C, ${e.outMin} min out of band`
        }
        case KIND.battery: {
            const v = r as BatteryRecord
            const ext = v.flags & BATTERY_FLAG.external ? ", external power" : ""
            return `battery ${v.mv} mV, ${BATTERY_LEVEL_NAME[v.level] ?? `level ${v.level}`}${ext}`
        }
        case KIND.lid: {
            const l = r as LidRecord
            const edges = l.count
                ? `${l.count} ${l.openEdge ? "opening" : "closing"}${l.count > 1 ? "s" : ""}, the first at t=${l.first}; `
                : ""
            return `${edges}lid ${l.open ? "open" : "closed"}${l.flags & 1 ? " (not watched before)" : ""}`
        }
        case KIND.ruleAlarm: {
            const a = r as RuleAlarmRecord
            return `rule ${a.rule} ${a.raise ? "raised" : "cleared"}${a.type === 6 ? ` at ${a.value} mV` : a.type === 7 || a.type === 5 ? "" : ` at ${a.value / 128} C`}`
        }
        default:
            return ""
    }
}

export interface CsvInput {
    model: ReportModel
    /** the records the model was built from, in seq order */
    records: LogRecord[]
    /** seq -> UTC ms (null: unplaced) */
    utc: Map<number, number | null>
}

/** The rule engine's recommendation and per-rule outcomes (docs/alarms.md) as header lines. */
function alarmRows(m: ReportModel): [string, string][] {
    const rec = m.alarms?.recommendation
    if (!rec) return []
    const rows: [string, string][] = [[`recommendation`, [rec.decision.toUpperCase(), ...rec.reasons].join("; ")]]
    for (const r of m.alarms.rules) if (r.outcome) rows.push([`rule ${r.id}`, `${outcomeWord(r.outcome)}; ${r.note}`])
    rows.push(["mkt (judged readings)", rec.mktC === null ? "" : `${rec.mktC.toFixed(2)} C`])
    rows.push(["not judged", rec.notJudged.join("; ")])
    if (m.alarms.deviceCheck)
        rows.push([
            "device alarm records",
            m.alarms.deviceCheck.agree ? "agree with its band" : `DISAGREE: ${m.alarms.deviceCheck.findings.join("; ")}`,
        ])
    return rows
}

function headerBlock(m: ReportModel): string[] {
    const zone = zoneOf(m)
    const t0 = timeMs(m.started)
    const t1 = timeMs(m.ended)
    const range = Number.isFinite(t0) ? `${isoUtc(t0)} to ${isoUtc(t1)}` : "no placed samples"
    const rows: [string, string][] = [
        ["coldtrace report", CSV_FORMAT],
        ["device", m.deviceId],
        ...(m.shipment ? ([["shipment", m.shipment.shipmentId]] as [string, string][]) : []),
        ["records", m.fingerprint.firstSeq === null ? "none" : `seq ${m.fingerprint.firstSeq}..${m.fingerprint.lastSeq}`],
        ["range (UTC)", range],
        ["time zone", zoneLabel(zone, t0)],
        ["alarm band", `${fmtBand(m.alarmBand)} (${m.preset.name}${m.preset.source === "default" ? ", default" : ""})`],
        ["verdict", overallVerdict(m).word],
        ["verification", chainWord(m.chain.status)],
        ["fingerprint", fingerprintLine(m)],
        ...alarmRows(m),
    ]
    return rows.map(r => line(r))
}

/** The CSV text (with BOM). Positions appear only where the model may show them. */
export function renderReportCsv(inp: CsvInput): string {
    const m = inp.model
    const zone = zoneOf(m)
    const positions = new Map(m.route.shown ? m.route.points.map(p => [p.seq, p]) : [])
    const out = headerBlock(m)
    out.push("")
    out.push(line([...CSV_COLUMNS]))
    let boot = 0
    for (const r of inp.records) {
        if (r.kind === KIND.boot) boot = (r as BootRecord).boot
        const kind = OF_INTEREST[r.kind]
        if (!kind) continue
        const t = inp.utc.get(r.seq) ?? null
        const sample = r.kind === KIND.sample ? (r as SampleRecord) : null
        const temp = sample && !isFaulted(sample) ? sample.tc / 128 : ""
        const bits = sample ? faultBits(sample) : FAULT_COLUMNS.map(() => "")
        const pos = positions.get(r.seq)
        out.push(
            line([
                r.seq,
                boot,
                kind,
                t === null ? "" : isoUtc(t),
                t === null ? "" : isoLocal(t, zone),
                temp,
                ...bits,
                pos?.lat ?? "",
                pos?.lon ?? "",
                detail(r),
            ]),
        )
    }
    return "\uFEFF" + out.join("\r\n") + "\r\n"
}
