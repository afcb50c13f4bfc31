// The logger's own alarm records against the host's evaluation of the rule it was configured with
// (docs/alarms.md, "Device and host agree"). Today's firmware knows one band with 0.5 °C hysteresis
// and keeps its state in RAM: it is the `band` rule with `perBoot`, evaluated over every sample in
// seq order (placed in UTC or not: the band needs no durations).
import {
    ALARM_TYPE,
    KIND,
    RULE_WHY,
    type AlarmRecord,
    type BatteryRecord,
    type LidRecord,
    type LogRecord,
    type RuleAlarmRecord,
    type SampleRecord,
    isFaulted,
} from "../format/index.js"
import { AlarmEngine } from "./engine.js"
import { legacyBandRule } from "./presets.js"
import type { AlarmRule, BandRule, EvalSample, RuleSet } from "./types.js"
import { inferIntervalS } from "./report.js"

export interface DeviceAlarmCheck {
    rule: BandRule
    /** samples compared (those whose preceding state is known) */
    samples: number
    /** alarm records of the logger, and events the rule expects, in the compared stretch */
    recorded: number
    expected: number
    agree: boolean
    /** disagreements, one line each (at most 20) */
    findings: string[]
    notes: string[]
}

interface Ev {
    seq: number
    boot: number
    uptime: number
    type: number
    tc: number
}

const TYPE_TEXT: Record<number, string> = {
    [ALARM_TYPE.aboveBand]: "above band",
    [ALARM_TYPE.belowBand]: "below band",
    [ALARM_TYPE.backInBand]: "back in band",
}
const c2 = (tc: number) => (tc / 128).toFixed(2)

/**
 * The logger's events against the host's, both in log order (each with the seq it follows): equal
 * ones pair off; an expected event the logger could not have recorded yet (`late` says why, into
 * `notes`) is passed over; anything else is a disagreement: a pair recorded `instead` of one another,
 * an `extra` record, or a `missing` one (at most 20 findings, then a count).
 */
function compareEvents<E extends { seq: number }>(
    recorded: E[],
    expected: E[],
    o: {
        same: (d: E, h: E) => boolean
        late: (h: E) => string | null
        instead: (d: E, h: E) => string | null
        extra: (d: E) => string
        missing: (h: E) => string
        notes: string[]
    },
): { mismatches: number; findings: string[] } {
    const findings: string[] = []
    let i = 0
    let j = 0
    let mismatches = 0
    while (i < recorded.length || j < expected.length) {
        const d = recorded[i]
        const h = expected[j]
        if (d && h && o.same(d, h)) {
            i++
            j++
            continue
        }
        const late = h && (!d || h.seq < d.seq) ? o.late(h) : null
        if (late !== null) {
            o.notes.push(late)
            j++
            continue
        }
        mismatches++
        const instead = d && h ? o.instead(d, h) : null
        let line: string
        if (instead !== null) {
            line = instead
            i++
            j++
        } else if (d && (!h || d.seq < h.seq)) {
            line = o.extra(d)
            i++
        } else {
            line = o.missing(h)
            j++
        }
        if (findings.length < 20) findings.push(line)
    }
    if (mismatches > findings.length) findings.push(`(and ${mismatches - findings.length} more disagreements)`)
    return { mismatches, findings }
}

/**
 * Compare. `records` in seq order (distinct). The state is known from seq 0, or from the first
 * boot record held; a hole in the seqs (records freed or evicted) leaves it unknown until the next
 * boot record, and alarm records there are not compared.
 */
export function checkDeviceAlarms(records: LogRecord[], band: { low: number; high: number }, hysteresisC = 0.5): DeviceAlarmCheck {
    const rule: BandRule = { ...(legacyBandRule(band) as BandRule), hysteresisC }
    const eng = new AlarmEngine({ intervalS: 1, rules: [rule] })
    const recorded: Ev[] = []
    const expected: Ev[] = []
    const notes: string[] = []
    let known = records.length > 0 && records[0].seq === 0
    let boot = 0
    let prevSeq = -1
    let samples = 0
    let skipped = 0
    const lastOfBoot = new Map<number, number>() // boot -> seq of its last sample
    for (const r of records) {
        if (prevSeq >= 0 && r.seq !== prevSeq + 1 && known) {
            known = false
            notes.push(`seq ${prevSeq + 1}..${r.seq - 1} not held: compared again from the next boot record`)
        }
        prevSeq = r.seq
        if (r.kind === KIND.boot && "boot" in r) {
            boot = r.boot
            known = true
            continue
        }
        if (!known) {
            if (r.kind === KIND.sample || r.kind === KIND.alarm) skipped++
            continue
        }
        if (r.kind === KIND.sample && "tc" in r) {
            const s = r as SampleRecord
            samples++
            lastOfBoot.set(boot, s.seq)
            for (const e of eng.feed({ utcMs: s.t * 1000, tc: s.tc, faulted: isFaulted(s), boot, uptimeMs: s.t * 1000, seq: s.seq })) {
                const type = e.kind === "clear" ? ALARM_TYPE.backInBand : e.why === "below" ? ALARM_TYPE.belowBand : ALARM_TYPE.aboveBand
                expected.push({ seq: s.seq, boot, uptime: s.t * 1000, type, tc: s.tc })
            }
        } else if (r.kind === KIND.alarm && "type" in r) {
            const a = r as AlarmRecord
            recorded.push({ seq: a.seq, boot, uptime: a.t * 1000, type: a.type, tc: a.tc })
        }
    }
    if (skipped) notes.push(`${skipped} samples and alarm records before a known state were not compared`)
    const same = (x: Ev, y: Ev) => x.boot === y.boot && x.uptime === y.uptime && x.type === y.type && x.tc === y.tc
    const last = records.length ? records[records.length - 1].seq : -1
    const recordedText = (d: Ev) => `seq ${d.seq}: the logger recorded "${TYPE_TEXT[d.type] ?? `type ${d.type}`}" at ${c2(d.tc)} °C`
    const { mismatches, findings } = compareEvents(recorded, expected, {
        same,
        // an expected event the logger had no time to record: the log ends, or power went, right after its sample
        late: h =>
            h.seq === last || lastOfBoot.get(h.boot) === h.seq
                ? `sample seq ${h.seq} (${c2(h.tc)} °C) should raise "${TYPE_TEXT[h.type]}", but the log or the boot ends right after it`
                : null,
        instead: (d, h) =>
            d.boot === h.boot && d.uptime === h.uptime
                ? `${recordedText(d)}; the band rule expects "${TYPE_TEXT[h.type]}" at ${c2(h.tc)} °C`
                : null,
        extra: d => `${recordedText(d)}; the band rule expects no alarm record there`,
        missing: h => `sample seq ${h.seq} (${c2(h.tc)} °C): the band rule expects "${TYPE_TEXT[h.type]}"; the logger recorded none`,
        notes,
    })
    return { rule, samples, recorded: recorded.length, expected: expected.length, agree: mismatches === 0, findings, notes }
}

// ---- the configured rules (docs/alarms.md 5.1; rule alarm records, docs/format.md kind 11) ----

export interface RuleAlarmCheck {
    ruleSet: RuleSet
    /** samples and battery readings fed, as the logger fed them */
    inputs: number
    recorded: number
    expected: number
    agree: boolean
    /** disagreements, one line each (at most 20) */
    findings: string[]
    notes: string[]
}

interface RuleEv {
    seq: number
    rule: number
    raise: boolean
    t: number
    value: number | undefined
    why: number
}

const WHY_CODE: Record<string, number> = {
    above: RULE_WHY.above,
    below: RULE_WHY.below,
    count: RULE_WHY.count,
    duration: RULE_WHY.duration,
}

/**
 * The logger's rule alarm records against the same rules fed what the logger fed its engine: every
 * sample (`t` the device time, the boot counter of its boot record, faulted when sr or sflags say so),
 * every battery record and every lid record's edges, in seq order (devs/app/alarms.ts). The engine's state goes on across
 * boots, so the comparison needs the log from seq 0: it stops at the first hole (records freed or
 * evicted). An event of the log's last input, or of the last input before a boot, may be missing
 * (power went between the record and its event).
 */
export function checkRuleAlarms(records: LogRecord[], given: { rules: AlarmRule[]; intervalS?: number }): RuleAlarmCheck {
    const ruleSet: RuleSet = { rules: given.rules, intervalS: given.intervalS ?? logIntervalS(records) }
    const eng = new AlarmEngine(ruleSet)
    const ids = ruleSet.rules.map(r => r.id)
    const recorded: RuleEv[] = []
    const expected: RuleEv[] = []
    const notes: string[] = []
    const lastOfBoot = new Set<number>()
    let boot = 0
    let prevSeq = -1
    let lastInput = -1
    let inputs = 0
    const take = (seq: number, evs: { rule: string; kind: string; t: number; tc?: number; why?: string }[]) => {
        for (const e of evs)
            expected.push({
                seq,
                rule: ids.indexOf(e.rule),
                raise: e.kind === "raise",
                t: e.t,
                value: e.tc,
                why: e.why ? WHY_CODE[e.why] : RULE_WHY.none,
            })
    }
    if (records.length && records[0].seq !== 0)
        notes.push(`the log starts at seq ${records[0].seq}: the rules' state before it is unknown, nothing compared`)
    else
        for (const r of records) {
            if (prevSeq >= 0 && r.seq !== prevSeq + 1) {
                notes.push(`seq ${prevSeq + 1}..${r.seq - 1} not held: compared up to seq ${prevSeq}`)
                break
            }
            prevSeq = r.seq
            if (r.kind === KIND.boot && "boot" in r) {
                if (lastInput >= 0) lastOfBoot.add(lastInput)
                boot = r.boot
            } else if (r.kind === KIND.sample && "tc" in r) {
                const s = r as SampleRecord
                inputs++
                lastInput = s.seq
                take(s.seq, eng.feed({ utcMs: s.t * 1000, tc: s.tc, faulted: isFaulted(s), boot, uptimeMs: s.t * 1000 }))
            } else if (r.kind === KIND.battery && "mv" in r) {
                inputs++
                lastInput = r.seq
                take(r.seq, eng.feedBattery({ utcMs: r.t * 1000, mv: (r as BatteryRecord).mv }))
            } else if (r.kind === KIND.lid && "openEdge" in r) {
                inputs++
                lastInput = r.seq
                take(r.seq, eng.feedLidRecord(r as LidRecord))
            } else if (r.kind === KIND.ruleAlarm && "rule" in r) {
                const a = r as RuleAlarmRecord
                recorded.push({ seq: a.seq, rule: a.rule, raise: a.raise, t: a.t, value: a.value, why: a.why })
            }
        }
    if (lastInput >= 0) lastOfBoot.add(lastInput)
    const word = (e: RuleEv) => `${ids[e.rule] ?? `rule ${e.rule}`} ${e.raise ? "raised" : "cleared"} at t ${e.t}`
    const { mismatches, findings } = compareEvents(recorded, expected, {
        same: (d, h) =>
            d.rule === h.rule && d.raise === h.raise && d.t === h.t && d.why === h.why && (h.value === undefined || d.value === h.value),
        late: h =>
            lastOfBoot.has(h.seq) ? `${word(h)} is expected after seq ${h.seq}, but the log or the boot ends right after it` : null,
        instead: () => null,
        extra: d => `seq ${d.seq}: the logger recorded ${word(d)}; the rules expect no event there`,
        missing: h => `after seq ${h.seq}: the rules expect ${word(h)}; the logger recorded no such event`,
        notes,
    })
    return { ruleSet, inputs, recorded: recorded.length, expected: expected.length, agree: mismatches === 0, findings, notes }
}

/** The sampling interval the log shows (the most common spacing of a boot's consecutive samples, s): the rules' gap cap. */
export function logIntervalS(records: LogRecord[]): number {
    const samples: EvalSample[] = []
    let boot = 0
    for (const r of records) {
        if (r.kind === KIND.boot && "boot" in r) boot = r.boot
        if (r.kind === KIND.sample && "tc" in r) samples.push({ utcMs: r.t * 1000, tc: r.tc, faulted: false, boot, uptimeMs: r.t * 1000 })
    }
    return inferIntervalS(samples)
}
