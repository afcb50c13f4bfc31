// The rule engine in the report (docs/alarms.md, "In the report"): the samples of a log placed in
// UTC, evaluated against the shipment's preset; per-rule outcomes in the report model's shape, and
// a release / quarantine recommendation with its reasons and what could not be judged.
import { KIND, isFaulted, type BatteryRecord, type LidRecord, type LogRecord, type SampleRecord } from "../format/index.js"
import { evaluate, lidEdges } from "./engine.js"
import { PRESETS, REPORT_PRESET_MAP, bandRules } from "./presets.js"
import type { DeviceAlarmCheck, RuleAlarmCheck } from "./device.js"
import type { AlarmRule, BatteryReading, EvalResult, EvalSample, OpeningInterval, Outcome, RuleResult, RuleSet } from "./types.js"

/** Samples placed in UTC, with their boot and uptime; `unplaced` counts those left out. */
export function placedSamples(records: LogRecord[], utc: Map<number, number | null>): { samples: EvalSample[]; unplaced: number } {
    const samples: EvalSample[] = []
    let unplaced = 0
    let boot = 0
    for (const r of records) {
        if (r.kind === KIND.boot && "boot" in r) boot = r.boot
        if (r.kind !== KIND.sample || !("tc" in r)) continue
        const s = r as SampleRecord
        const t = utc.get(s.seq)
        if (t == null) {
            unplaced++
            continue
        }
        samples.push({ utcMs: t, tc: s.tc, faulted: isFaulted(s), boot, uptimeMs: s.t * 1000, seq: s.seq })
    }
    return { samples, unplaced }
}

/** The battery records the timeline places in UTC, as the rule engine's battery readings. */
export function placedBattery(records: LogRecord[], utc: Map<number, number | null>): BatteryReading[] {
    const out: BatteryReading[] = []
    for (const r of records) {
        if (r.kind !== KIND.battery || !("mv" in r)) continue
        const t = utc.get(r.seq)
        if (t != null) out.push({ utcMs: t, mv: (r as BatteryRecord).mv })
    }
    return out
}

/**
 * The lid's openings from the log's lid records (docs/format.md 2.5) placed in UTC (each edge at its
 * record's UTC less the seconds it lies before the record's `t`); undefined when the log has no lid
 * records (a logger without a lid sensor: the openings rules are not judged).
 */
export function placedOpenings(records: LogRecord[], utc: Map<number, number | null>): OpeningInterval[] | undefined {
    let out: OpeningInterval[] | undefined
    let start: number | null = null
    for (const r of records) {
        if (r.kind !== KIND.lid || !("openEdge" in r)) continue
        out ??= []
        const at = utc.get(r.seq)
        if (at == null) continue
        for (const e of lidEdges(r as LidRecord)) {
            const ms = at - (r.t - e.t) * 1000
            if (e.open && start === null) start = ms
            else if (!e.open && start !== null) {
                out.push({ startMs: start, endMs: ms })
                start = null
            }
        }
    }
    if (out && start !== null) out.push({ startMs: start, endMs: null })
    return out
}

/** The sampling interval a log shows: the most common spacing of consecutive samples of one boot (s). */
export function inferIntervalS(samples: EvalSample[], fallback = 300): number {
    const count = new Map<number, number>()
    for (let i = 1; i < samples.length; i++) {
        const a = samples[i - 1]
        const b = samples[i]
        if (a.boot !== b.boot || a.uptimeMs === undefined || b.uptimeMs === undefined) continue
        const d = Math.round((b.uptimeMs - a.uptimeMs) / 1000)
        if (d > 0) count.set(d, (count.get(d) ?? 0) + 1)
    }
    let best = fallback
    let n = 0
    for (const [d, c] of count) if (c > n || (c === n && d < best)) [best, n] = [d, c]
    return best
}

/** The engine preset behind a report preset (or a band of its own). */
export function reportRuleSet(
    preset: { id: string; low: number; high: number },
    intervalS: number,
): { id: string; name: string; ruleSet: RuleSet } {
    const id = PRESETS.some(p => p.id === preset.id) ? preset.id : REPORT_PRESET_MAP[preset.id]
    const p = id ? PRESETS.find(x => x.id === id) : undefined
    if (p) return { id: p.id, name: p.name, ruleSet: { intervalS, rules: p.rules } }
    return { id: "band", name: `band ${preset.low} to ${preset.high} °C`, ruleSet: { intervalS, rules: bandRules(preset) } }
}

const dirOf = (r: AlarmRule): "above" | "below" => ("direction" in r && r.direction === "below" ? "below" : "above")

/** What the report shows for one engine rule (a RuleOutcome of src/report/model.ts, with the engine's figures). */
export interface EngineRuleOutcome {
    id: string
    name: string
    source: "host"
    recorded: boolean
    triggered: boolean
    windows: { start: number; end: number | null; type: "above" | "below"; peakC: number | null }[]
    events: never[]
    note: string
    outcome: Outcome
    notJudged?: "input" | "unknown-time"
    inConditionS: number
    worstC: number | null
    mktC: number | null
    openings: number | null
}

function windowsOf(r: RuleResult, rule: AlarmRule): EngineRuleOutcome["windows"] {
    const out: EngineRuleOutcome["windows"] = []
    // temperature windows only (above/below a threshold): faults, gaps, battery, openings and MKT are told in the note
    if (rule.type !== "single" && rule.type !== "cumulative" && rule.type !== "band") return out
    let open: EngineRuleOutcome["windows"][number] | null = null
    for (const e of r.events) {
        if (e.kind === "raise") {
            if (open) continue
            const type = e.why === "below" ? "below" : dirOf(rule)
            open = { start: e.t * 1000, end: null, type, peakC: r.worstTc === null ? null : r.worstTc / 128 }
            out.push(open)
        } else if (open) {
            open.end = e.t * 1000
            open = null
        }
    }
    return out
}

/** "ALARM", "NOT JUDGED", "OK" */
export const outcomeWord = (o: Outcome) => o.toUpperCase().replace("-", " ")
/** "−58.50 °C" with a real minus sign, as the report writes temperatures */
const degC = (c: number) => `${c.toFixed(2).replace(/^-/, "−")} °C`
const hm = (s: number) => (s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min` : `${Math.round(s / 60)} min`)

export function engineOutcomes(presetId: string, ruleSet: RuleSet, res: EvalResult): EngineRuleOutcome[] {
    return res.rules.map((r, i) => {
        const rule = ruleSet.rules[i]
        const bits = [`outcome ${outcomeWord(r.outcome)}`]
        if (rule.type === "openings") bits.push(`${r.openings ?? 0} openings, open ${hm(r.inConditionS)} in all`)
        else if (rule.type === "mkt") bits.push(`MKT ${r.mktC === null ? "—" : degC(r.mktC)}`)
        else bits.push(`${hm(r.inConditionS)} in condition`)
        if (r.worstTc !== null) bits.push(`worst ${degC(r.worstTc / 128)}`)
        bits.push(...r.notes)
        return {
            id: `${presetId}.${r.id}`,
            name: `${rule.name ?? r.id} (${presetId})`,
            source: "host",
            recorded: true,
            triggered: r.outcome === "alarm",
            windows: windowsOf(r, rule),
            events: [],
            note: `rule engine (docs/alarms.md): ${bits.join("; ")}`,
            outcome: r.outcome,
            ...(r.notJudged ? { notJudged: r.notJudged } : {}),
            inConditionS: r.inConditionS,
            worstC: r.worstTc === null ? null : r.worstTc / 128,
            mktC: r.mktC,
            openings: r.openings,
        }
    })
}

export interface Recommendation {
    decision: "release" | "quarantine"
    reasons: string[]
    /** what could not be judged: gaps, faulted readings, missing inputs */
    notJudged: string[]
    /** MKT of every judged reading (°C) */
    mktC: number | null
}

const iso = (s: number) => new Date(s * 1000).toISOString().replace(".000Z", "Z")

/** Release only when the records verify, every rule is ok and the logger's alarms agree with the host's evaluation. */
export function recommend(
    res: EvalResult,
    outcomes: EngineRuleOutcome[],
    o: {
        verified: boolean
        verdictWord: string
        deviceCheck?: DeviceAlarmCheck | null
        ruleCheck?: RuleAlarmCheck | null
        unplaced?: number
        lost?: number
    },
): Recommendation {
    const reasons: string[] = []
    const notJudged: string[] = []
    if (!o.verified) reasons.push(`the records are not verified (${o.verdictWord})`)
    if (!res.samples) reasons.push("no sample placed in time: nothing to judge")
    if (o.lost) reasons.push(`${o.lost} samples lost`)
    for (const r of outcomes) if (r.outcome === "alarm") reasons.push(`${r.name}: ALARM`)
    // time without a judged reading that could hide an alarm keeps the goods back; an input this
    // logger does not have (lid, battery) or too short a log for MKT is listed, not a reason
    for (const r of outcomes)
        if (r.notJudged === "unknown-time") reasons.push(`${r.name}: NOT JUDGED (gaps or faulted readings could hide an alarm)`)
    if (o.deviceCheck && !o.deviceCheck.agree) reasons.push("the logger's alarm records disagree with the host's evaluation of its band")
    if (o.ruleCheck && !o.ruleCheck.agree) reasons.push("the logger's rule alarm records disagree with the host's evaluation of its rules")
    for (const g of res.gaps) notJudged.push(`no sample ${iso(g.from)} to ${iso(g.to)} (${hm(g.to - g.from)})`)
    for (const f of res.faults) notJudged.push(`faulted readings ${iso(f.from)} to ${iso(f.to)}`)
    if (o.unplaced) notJudged.push(`${o.unplaced} samples without a UTC time (not evaluated)`)
    for (const r of outcomes) if (r.notJudged === "input") notJudged.push(`${r.name}: ${r.note.split("; ").at(-1)}`)
    return { decision: reasons.length ? "quarantine" : "release", reasons, notJudged, mktC: res.mktC }
}

/** Everything the report needs from the engine for one log. */
export function evaluateForReport(
    records: LogRecord[],
    utc: Map<number, number | null>,
    preset: { id: string; low: number; high: number },
    o: {
        verified: boolean
        verdictWord: string
        deviceCheck?: DeviceAlarmCheck | null
        ruleCheck?: RuleAlarmCheck | null
        lost?: number
        openings?: OpeningInterval[]
        /** the rules the logger was configured with, judged instead of the preset's */
        rules?: AlarmRule[]
    },
): { presetId: string; ruleSet: RuleSet; result: EvalResult; rules: EngineRuleOutcome[]; recommendation: Recommendation } {
    const { samples, unplaced } = placedSamples(records, utc)
    const intervalS = inferIntervalS(samples)
    const rs = o.rules ? { id: "configured", ruleSet: { intervalS, rules: o.rules } } : reportRuleSet(preset, intervalS)
    const openings = o.openings ?? placedOpenings(records, utc)
    const result = evaluate(rs.ruleSet, samples, { openings, battery: placedBattery(records, utc) })
    const rules = engineOutcomes(rs.id, rs.ruleSet, result)
    return { presetId: rs.id, ruleSet: rs.ruleSet, result, rules, recommendation: recommend(result, rules, { ...o, unplaced }) }
}
