// The logger's own alarm records against the host's evaluation of the rule it was configured with
// (docs/alarms.md, "Device and host agree"). Today's firmware knows one band with 0.5 °C hysteresis
// and keeps its state in RAM: it is the `band` rule with `perBoot`, evaluated over every sample in
// seq order (placed in UTC or not: the band needs no durations).
import { ALARM_TYPE, KIND, type AlarmRecord, type LogRecord, type SampleRecord, isFaulted } from "../format/index.js"
import { AlarmEngine } from "./engine.js"
import { legacyBandRule } from "./presets.js"
import type { BandRule } from "./types.js"

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
    const findings: string[] = []
    const same = (x: Ev, y: Ev) => x.boot === y.boot && x.uptime === y.uptime && x.type === y.type && x.tc === y.tc
    let i = 0
    let j = 0
    let mismatches = 0
    const last = records.length ? records[records.length - 1].seq : -1
    while (i < recorded.length || j < expected.length) {
        const d = recorded[i]
        const h = expected[j]
        if (d && h && same(d, h)) {
            i++
            j++
            continue
        }
        // an expected event the logger had no time to record: the log ends, or power went, right after its sample
        if (h && (!d || h.seq < d.seq) && (h.seq === last || lastOfBoot.get(h.boot) === h.seq)) {
            notes.push(
                `sample seq ${h.seq} (${c2(h.tc)} °C) should raise "${TYPE_TEXT[h.type]}", but the log or the boot ends right after it`,
            )
            j++
            continue
        }
        mismatches++
        const note = (line: string) => findings.length < 20 && findings.push(line)
        if (d && h && d.boot === h.boot && d.uptime === h.uptime) {
            note(
                `seq ${d.seq}: the logger recorded "${TYPE_TEXT[d.type] ?? `type ${d.type}`}" at ${c2(d.tc)} °C; the band rule expects "${TYPE_TEXT[h.type]}" at ${c2(h.tc)} °C`,
            )
            i++
            j++
        } else if (d && (!h || d.seq < h.seq)) {
            note(
                `seq ${d.seq}: the logger recorded "${TYPE_TEXT[d.type] ?? `type ${d.type}`}" at ${c2(d.tc)} °C; the band rule expects no alarm record there`,
            )
            i++
        } else {
            note(`sample seq ${h.seq} (${c2(h.tc)} °C): the band rule expects "${TYPE_TEXT[h.type]}"; the logger recorded none`)
            j++
        }
    }
    if (mismatches > findings.length) findings.push(`(and ${mismatches - findings.length} more disagreements)`)
    return { rule, samples, recorded: recorded.length, expected: expected.length, agree: mismatches === 0, findings, notes }
}
