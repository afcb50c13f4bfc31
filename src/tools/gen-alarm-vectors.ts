// Generates the shared alarm vectors of docs/alarms.md: docs/vectors/alarms.json. Each case is a
// rule set, a sample series (and battery readings, lid openings) and what the evaluator must
// produce: per-rule events, outcome and figures, and the final state bytes the logger would keep.
// Deterministic (fixed times, no clock, no randomness): test/alarms.test.ts checks the file is
// up to date. Run: npx tsx src/tools/gen-alarm-vectors.ts
import { writeFileSync, mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { compiledRuleSet } from "../alarms/compiled.js"
import {
    AlarmEngine,
    PRESETS,
    evaluate,
    legacyBandRule,
    type AlarmRule,
    type EvalResult,
    type EvalSample,
    type RuleSet,
} from "../alarms/index.js"

export const ALARM_VECTORS_PATH = "docs/vectors/alarms.json"
/** the same cases for the firmware's engine (devs/alarm/engine.ts), as a DeviceScript module */
export const ALARM_VECTORS_DS_PATH = "devs/test/alarm-vectors.gen.ts"

/** 2026-01-01T00:00:00Z: every case starts here. */
export const T0 = 1767225600
const MIN = 60
const H = 3600

/** A sample row: [t (UTC s), tc, faulted 0/1, boot, uptime s]. */
export type Row = [number, number, number, number, number]

export interface AlarmCase {
    name: string
    what: string
    ruleSet: RuleSet
    samples: Row[]
    battery?: [number, number][]
    openings?: [number, number | null][]
    nowS?: number
}

const tc = (c: number) => Math.round(c * 128)

/** A profile builder: samples every `step` s of one boot; `gap` skips time and starts a new boot. */
class Profile {
    rows: Row[] = []
    t = T0
    boot = 1
    up = 0
    constructor(readonly step = 5 * MIN) {}
    /** `n` samples at `c` °C (null: faulted) */
    at(c: number | null, n = 1): this {
        for (let i = 0; i < n; i++) {
            this.rows.push([this.t, c === null ? 0 : tc(c), c === null ? 1 : 0, this.boot, this.up])
            this.t += this.step
            this.up += this.step
        }
        return this
    }
    /** ramp or hold for a duration */
    for(c: number | null, seconds: number): this {
        return this.at(c, Math.round(seconds / this.step))
    }
    /** a power cut of `seconds`: the next sample is in a new boot */
    cut(seconds: number): this {
        this.t += seconds
        this.boot++
        this.up = 3
        return this
    }
}

const preset = (id: string, intervalS = 5 * MIN): RuleSet => ({ intervalS, rules: PRESETS.find(p => p.id === id)!.rules })

export function alarmCases(): AlarmCase[] {
    const cases: AlarmCase[] = []
    cases.push({
        name: "preset-who-type-1",
        what: "70 min at 46 °C: the 45 °C single event raises after 1 h (12 readings of 5 min); 30 °C cumulative does not reach 10 h",
        ruleSet: preset("who-type-1"),
        samples: new Profile()
            .for(5, 2 * H)
            .for(46, 70 * MIN)
            .for(5, 2 * H).rows,
    })
    cases.push({
        name: "preset-who-type-2",
        what: "12 °C for 21 h: the 10 °C cumulative budget of 20 h is reached",
        ruleSet: preset("who-type-2"),
        samples: new Profile(10 * MIN)
            .for(5, H)
            .for(12, 21 * H)
            .for(5, H).rows,
    })
    cases.push({
        name: "preset-who-30dtr",
        what: "+8.5 °C for 9 h 50 min does not raise (> +8 °C needs 10 h continuous); then -1 °C for 65 min raises the freeze alarm",
        ruleSet: preset("who-30dtr", 10 * MIN),
        samples: new Profile(10 * MIN)
            .for(5, H)
            .for(8.5, 9 * H + 50 * MIN)
            .for(5, H)
            .for(-1, 65 * MIN)
            .for(4, H).rows,
    })
    cases.push({
        name: "preset-ultracold-mrna",
        what: "dry ice at -78 °C, one reading at -59.9 °C raises the warm alarm at once, the next at -70 °C clears it; openings at 1 h, 5 h, 9 h (the third within 24 h raises until it closes) and 26 h (third within 24 h of 5 h and 9 h; open 150 s)",
        ruleSet: preset("ultracold-mrna"),
        samples: new Profile()
            .for(-78, 6 * H)
            .at(-59.9)
            .for(-70, H)
            .for(-78, 20 * H).rows,
        openings: [
            [T0 + H, T0 + H + 40],
            [T0 + 5 * H, T0 + 5 * H + 50],
            [T0 + 9 * H, T0 + 9 * H + 30],
            [T0 + 26 * H, T0 + 26 * H + 150],
        ],
    })
    cases.push({
        name: "preset-frozen",
        what: "-20 °C, a reading at -14.5 °C (warm) and one at -25.5 °C (cold)",
        ruleSet: preset("frozen"),
        samples: new Profile()
            .for(-20, 2 * H)
            .at(-14.5)
            .for(-20, H)
            .at(-25.5)
            .for(-20, H).rows,
    })
    cases.push({
        name: "preset-fridge-2-8",
        what: "5 °C with 30 min at 9 °C: warm raises and clears; MKT stays below 8 °C",
        ruleSet: preset("fridge-2-8"),
        samples: new Profile()
            .for(5, 12 * H)
            .for(9, 30 * MIN)
            .for(5, 12 * H).rows,
    })
    const at30: AlarmRule[] = [
        { id: "ge-30", type: "single", direction: "above", limitC: 30, inclusive: true, minDurationS: 0 },
        { id: "gt-30", type: "single", direction: "above", limitC: 30, inclusive: false, minDurationS: 0 },
        { id: "le-m05", type: "single", direction: "below", limitC: -0.5, inclusive: true, minDurationS: 0 },
    ]
    cases.push({
        name: "threshold-inclusive",
        what: "29.9 °C (count 3827) does not trigger >= 30; 30.0 °C (3840) does, > 30 does not; -0.5 °C triggers <= -0.5, -0.49 does not",
        ruleSet: { intervalS: 300, rules: at30 },
        samples: new Profile().at(20, 3).at(29.9, 3).at(20).at(30, 2).at(20).at(-0.49, 2).at(-0.5).at(20).rows,
    })
    cases.push({
        name: "power-cut-split",
        what: "45 min at 46 °C, a 2 h power cut (new boot), 45 min at 46 °C: no single event of 1 h is proven, so not judged (the gap could hide it)",
        ruleSet: preset("who-type-1"),
        samples: new Profile()
            .for(20, H)
            .for(46, 45 * MIN)
            .cut(2 * H)
            .for(46, 45 * MIN)
            .for(20, H).rows,
    })
    cases.push({
        name: "faults-in-window",
        what: "-1 °C for 40 min, 3 faulted readings, -1 °C for 40 min: the freeze run restarts after the fault (no alarm, not judged); the fault rule of 60 min is not reached",
        ruleSet: preset("who-30dtr", 5 * MIN),
        samples: new Profile()
            .for(4, H)
            .for(-1, 40 * MIN)
            .at(null, 3)
            .for(-1, 40 * MIN)
            .for(4, H).rows,
    })
    {
        const p = new Profile(15 * MIN)
        for (let d = 0; d < 4; d++)
            p.for(5, 18 * H)
                .for(31, 3 * H)
                .for(5, 3 * H)
        cases.push({
            name: "cumulative-across-days",
            what: "3 h a day at 31 °C, sampled every 15 min: the 30 °C budget of 10 h is reached on day 4, 1 h into that day's excursion (3 + 3 + 3 + 1 h); it latches",
            ruleSet: preset("who-type-1", 15 * MIN),
            samples: p.rows,
        })
    }
    {
        const p = new Profile(15 * MIN)
        for (let d = 0; d < 3; d++)
            p.for(5, 20 * H)
                .for(9, (d === 1 ? 5 : 2) * H)
                .for(5, (d === 1 ? -1 : 2) * H)
        cases.push({
            name: "cumulative-rolling",
            what: "> 8 °C for 4 h within any 24 h (12 buckets of 2 h): 2 h a day does not raise, 5 h on day 2 does; it clears once the window has moved past",
            ruleSet: {
                intervalS: 15 * MIN,
                rules: [
                    {
                        id: "warm-24h",
                        type: "cumulative",
                        direction: "above",
                        limitC: 8,
                        inclusive: false,
                        budgetS: 4 * H,
                        windowS: 24 * H,
                    },
                ],
            },
            samples: p.rows,
        })
    }
    cases.push({
        name: "mkt",
        what: "MKT of 4 °C for 20 h and 25 °C for 4 h (an arithmetic mean would be 7.5 °C): above 8 °C over the trip",
        ruleSet: { intervalS: 600, rules: [{ id: "mkt", type: "mkt", limitC: 8, minCoverageS: 24 * H }] },
        samples: new Profile(10 * MIN)
            .for(4, 20 * H)
            .for(25, 4 * H)
            .at(4).rows,
    })
    cases.push({
        name: "device-band",
        what: "today's firmware band 2..8 °C, 0.5 °C hysteresis, state per boot: raise at 8.1, no clear at 7.6, clear at 7.5; a new boot while out raises again",
        ruleSet: { intervalS: 300, rules: [legacyBandRule({ low: 2, high: 8 })] },
        samples: new Profile().at(5, 2).at(8.1).at(7.6).at(7.5).at(1.9).at(9).at(5).at(9).cut(600).at(9).at(5).rows,
    })
    {
        // boot 2 saw no time source until 30 min in: its first samples were placed later from that
        // anchor, and the next anchor corrected the device clock by 2 s. Durations come from
        // uptime within a boot, so the placement does not change what is counted.
        const rows = new Profile()
            .for(5, H)
            .cut(10 * MIN)
            .for(46, 70 * MIN)
            .for(5, 30 * MIN).rows
        const placed = rows.map(([t, c, f, b, up]) => [b === 2 && up >= 40 * MIN ? t + 2 : t, c, f, b, up] as Row)
        cases.push({
            name: "before-first-fix",
            what: "a boot whose first samples got their UTC from a later time anchor, and a 2 s clock correction mid-excursion: the 45 °C hour is counted in uptime (12 readings of 5 min after the first) and raises",
            ruleSet: preset("who-type-1"),
            samples: placed,
        })
    }
    cases.push({
        name: "gap-and-battery",
        what: "server side: nothing for 3 h between samples and 2 h since the last one (gap > 1 h); battery below 3300 mV raises, clears at 3400 mV",
        ruleSet: {
            intervalS: 300,
            rules: [
                { id: "gap", type: "gap", maxGapS: H },
                { id: "battery", type: "battery", minMv: 3300 },
            ],
        },
        samples: new Profile()
            .for(5, H)
            .cut(3 * H)
            .for(5, H).rows,
        battery: [
            [T0 + 10 * MIN, 3600],
            [T0 + 4 * H, 3250],
            [T0 + 4 * H + 30 * MIN, 3350],
            [T0 + 5 * H, 3420],
        ],
        nowS: T0 + 5 * H + 2 * H,
    })
    return cases
}

export function samplesOf(c: AlarmCase): EvalSample[] {
    return c.samples.map(([t, tcount, f, boot, up]) => ({ utcMs: t * 1000, tc: tcount, faulted: f === 1, boot, uptimeMs: up * 1000 }))
}

export function inputsOf(c: AlarmCase) {
    return {
        battery: c.battery?.map(([t, mv]) => ({ utcMs: t * 1000, mv })),
        openings: c.openings?.map(([a, b]) => ({ startMs: a * 1000, endMs: b === null ? null : b * 1000 })),
        nowMs: c.nowS === undefined ? undefined : c.nowS * 1000,
    }
}

const r3 = (x: number | null) => (x === null ? null : Math.round(x * 1000) / 1000)

/** What a vector states about a result (MKT to 0.001 °C). */
export function expectedOf(res: EvalResult) {
    return {
        rules: res.rules.map(r => ({
            id: r.id,
            outcome: r.outcome,
            ...(r.notJudged ? { notJudged: r.notJudged } : {}),
            active: r.active,
            events: r.events.map(e => [e.kind, e.t, ...(e.tc !== undefined ? [e.tc] : []), ...(e.why ? [e.why] : [])]),
            inConditionS: r.inConditionS,
            worstTc: r.worstTc,
            ...(r.mktC !== null ? { mktC: r3(r.mktC) } : {}),
            ...(r.openings !== null ? { openings: r.openings } : {}),
        })),
        mktC: r3(res.mktC),
        judgedS: res.judgedS,
        faultS: res.faultS,
        gapS: res.gapS,
    }
}

/** One input to the engine, in the order it is fed: a sample, a battery reading or a lid event. */
export type Input =
    { kind: "sample"; sample: EvalSample } | { kind: "battery"; utcMs: number; mv: number } | { kind: "lid"; utcMs: number; open: boolean }

/** The case's inputs one at a time: battery and lid inputs merged by time, samples first at equal times. */
export function feedOrder(c: AlarmCase): Input[] {
    const inp = inputsOf(c)
    const others: Input[] = []
    for (const b of inp.battery ?? []) others.push({ kind: "battery", utcMs: b.utcMs, mv: b.mv })
    for (const o of inp.openings ?? []) {
        others.push({ kind: "lid", utcMs: o.startMs, open: true })
        if (o.endMs !== null) others.push({ kind: "lid", utcMs: o.endMs, open: false })
    }
    others.sort((a, b) => (a as { utcMs: number }).utcMs - (b as { utcMs: number }).utcMs)
    const out: Input[] = []
    let k = 0
    for (const s of samplesOf(c)) {
        while (k < others.length && (others[k] as { utcMs: number }).utcMs < s.utcMs) out.push(others[k++])
        out.push({ kind: "sample", sample: s })
    }
    while (k < others.length) out.push(others[k++])
    return out
}

/** The engine fed the case one input at a time. */
function fedEngine(c: AlarmCase): AlarmEngine {
    const eng = new AlarmEngine(c.ruleSet)
    for (const x of feedOrder(c)) {
        if (x.kind === "sample") eng.feed(x.sample)
        else if (x.kind === "battery") eng.feedBattery({ utcMs: x.utcMs, mv: x.mv })
        else eng.feedLid(x.utcMs, x.open)
    }
    return eng
}

/** Final state bytes after feeding the case sample by sample (battery and lid inputs merged by time). */
export function finalState(c: AlarmCase): string {
    return fedEngine(c).save().toString("hex")
}

/** A lid record row (docs/format.md 2.5): [t, first, openEdge 0/1, count, open 0/1] (device s). */
export type LidRow = [number, number, number, number, number]

export interface LidRecordCase {
    name: string
    what: string
    ruleSet: RuleSet
    records: LidRow[]
}

/**
 * Lid records fed to the engine as the logger feeds them (`feedLidRecord`): the edges each states,
 * in order (docs/format.md 2.5). The same derivation on both sides is what these pin.
 */
export function lidRecordCases(): LidRecordCase[] {
    const rules: RuleSet = {
        intervalS: 300,
        rules: [{ id: "openings", type: "openings", maxPerDay: 2, maxOpenS: 60 }],
    }
    return [
        {
            name: "lid-records",
            what:
                "the first start (nothing counted, closed); an opening and its closing in two records, open 90 s (raised at +60 s); " +
                "three openings between two looks (the third too many, all closed at the look); the lid open at a power-on (no edge counted); " +
                "a closing and a reopening between two looks; then closed",
            ruleSet: rules,
            records: [
                [T0, 0, 1, 0, 0],
                [T0 + 1000, T0 + 1000, 1, 1, 1],
                [T0 + 1090, T0 + 1090, 0, 1, 0],
                [T0 + 30 * H, T0 + 30 * H - 200, 1, 3, 0],
                [T0 + 60 * H, 0, 1, 0, 1],
                [T0 + 60 * H + 300, T0 + 60 * H + 100, 0, 1, 1],
                [T0 + 60 * H + 330, T0 + 60 * H + 320, 0, 1, 0],
            ],
        },
    ]
}

/** The engine fed a lid record case's records in order. */
export function fedLidEngine(c: LidRecordCase): AlarmEngine {
    const eng = new AlarmEngine(c.ruleSet)
    for (const [t, first, openEdge, count, open] of c.records)
        eng.feedLidRecord({ t, first, openEdge: openEdge === 1, count, open: open === 1 })
    return eng
}

const WHY: Record<string, number> = { above: 1, below: 2, count: 3, duration: 4 }
/** an event value the host does not state (a gap's, an opening's) */
export const NO_VALUE = 0x7fffffff

/**
 * The cases for the firmware's engine (DeviceScript cannot read JSON files): per case the compiled
 * rule set, the inputs in feed order as 16-byte rows (kind u8: 0 sample, 1 battery, 2 lid; flag u8:
 * faulted / open; boot u16; t u32 UTC s; value i32: tc or mV; uptime u32 s), the events in the order
 * the host's engine emitted them as 16-byte rows (rule u8, raise u8, why u8, 0; t u32; value i32,
 * NO_VALUE when the host states none; 0), and the final state.
 */
export function buildAlarmVectorsDs(): string {
    const lines = [
        "// GENERATED by src/tools/gen-alarm-vectors.ts from the cases of docs/vectors/alarms.json. Do not edit.",
        "// Hex strings only (DeviceScript cannot import JSON): layouts in the generator's buildAlarmVectorsDs.",
        `export const NO_VALUE = ${NO_VALUE}`,
        "export const ALARM_CASES = [",
    ]
    for (const c of alarmCases()) {
        const order = feedOrder(c)
        const inputs = Buffer.alloc(16 * order.length)
        order.forEach((x, i) => {
            const o = 16 * i
            if (x.kind === "sample") {
                const s = x.sample
                inputs.writeUInt8(0, o)
                inputs.writeUInt8(s.faulted ? 1 : 0, o + 1)
                inputs.writeUInt16LE(s.boot!, o + 2)
                inputs.writeUInt32LE(Math.floor(s.utcMs / 1000), o + 4)
                inputs.writeInt32LE(s.tc, o + 8)
                inputs.writeUInt32LE(Math.floor(s.uptimeMs! / 1000), o + 12)
            } else {
                inputs.writeUInt8(x.kind === "battery" ? 1 : 2, o)
                inputs.writeUInt8(x.kind === "lid" && x.open ? 1 : 0, o + 1)
                inputs.writeUInt32LE(Math.floor(x.utcMs / 1000), o + 4)
                inputs.writeInt32LE(x.kind === "battery" ? x.mv : 0, o + 8)
            }
        })
        const eng = fedEngine(c)
        const events = eventRows(eng, c.ruleSet)
        lines.push(
            `    {`,
            `        name: ${JSON.stringify(c.name)},`,
            `        rules: "${compiledRuleSet(c.ruleSet).toString("hex")}",`,
            `        inputs: "${inputs.toString("hex")}",`,
            `        events: "${events.toString("hex")}",`,
            `        state: "${eng.save().toString("hex")}",`,
            `    },`,
        )
    }
    lines.push("]")
    // lid records: rows of 16 bytes (t u32, first u32, openEdge u8, count u8, open u8, 0 x5), events as above
    lines.push("export const LID_RECORD_CASES = [")
    for (const c of lidRecordCases()) {
        const rows = Buffer.alloc(16 * c.records.length)
        c.records.forEach(([t, first, openEdge, count, open], i) => {
            rows.writeUInt32LE(t, 16 * i)
            rows.writeUInt32LE(first, 16 * i + 4)
            rows.writeUInt8(openEdge, 16 * i + 8)
            rows.writeUInt8(count, 16 * i + 9)
            rows.writeUInt8(open, 16 * i + 10)
        })
        const eng = fedLidEngine(c)
        lines.push(
            `    {`,
            `        name: ${JSON.stringify(c.name)},`,
            `        rules: "${compiledRuleSet(c.ruleSet).toString("hex")}",`,
            `        records: "${rows.toString("hex")}",`,
            `        events: "${eventRows(eng, c.ruleSet).toString("hex")}",`,
            `        state: "${eng.save().toString("hex")}",`,
            `    },`,
        )
    }
    lines.push("]", "")
    return lines.join("\n")
}

/** an engine's events as 16-byte rows (rule u8, raise u8, why u8, 0; t u32; value i32 or NO_VALUE; 0) */
function eventRows(eng: AlarmEngine, ruleSet: RuleSet): Buffer {
    const ids = ruleSet.rules.map(r => r.id)
    const events = Buffer.alloc(16 * eng.trace.events.length)
    eng.trace.events.forEach((e, i) => {
        const o = 16 * i
        events.writeUInt8(ids.indexOf(e.rule), o)
        events.writeUInt8(e.kind === "raise" ? 1 : 0, o + 1)
        events.writeUInt8(e.why ? WHY[e.why] : 0, o + 2)
        events.writeUInt32LE(e.t, o + 4)
        events.writeInt32LE(e.tc ?? NO_VALUE, o + 8)
    })
    return events
}

export function buildAlarmVectors(): string {
    const cases = alarmCases().map(c => {
        const res = evaluate(c.ruleSet, samplesOf(c), inputsOf(c))
        return {
            name: c.name,
            what: c.what,
            ruleSet: c.ruleSet,
            samples: c.samples,
            ...(c.battery ? { battery: c.battery } : {}),
            ...(c.openings ? { openings: c.openings } : {}),
            ...(c.nowS !== undefined ? { nowS: c.nowS } : {}),
            expect: expectedOf(res),
            state: finalState(c),
        }
    })
    const doc = {
        format: "coldtrace-alarm-vectors-v1",
        spec: "docs/alarms.md",
        samples: "[t UTC seconds, tc (1/128 °C), faulted 0/1, boot, uptime seconds]",
        events: "[kind, t UTC seconds, tc?, why?]",
        cases,
        lidRecords: lidRecordCases().map(c => {
            const eng = fedLidEngine(c)
            return {
                name: c.name,
                what: c.what,
                ruleSet: c.ruleSet,
                records: c.records,
                events: eng.trace.events.map(e => [e.kind, e.t, ...(e.why ? [e.why] : [])]),
                state: eng.save().toString("hex"),
            }
        }),
        lidRecordRows: "[t, first, openEdge 0/1, count, open 0/1] (docs/format.md 2.5)",
    }
    // one sample per line keeps the file readable and diffs small
    return (
        JSON.stringify(doc, null, 1).replace(
            /\[\n\s+(-?[\d.]+|"[a-z]+"|null),\n\s+(-?[\d.]+|null)(?:,\n\s+(-?[\d.]+|"[a-z-]+"))?(?:,\n\s+(-?[\d.]+|"[a-z-]+"))?(?:,\n\s+(-?[\d.]+))?\n\s+\]/g,
            m => JSON.stringify(JSON.parse(m)),
        ) + "\n"
    )
}

function main(): void {
    const root = fileURLToPath(new URL("../../", import.meta.url))
    const text = buildAlarmVectors()
    const path = root + ALARM_VECTORS_PATH
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, text)
    console.log(`wrote ${ALARM_VECTORS_PATH} (${Buffer.byteLength(text)} bytes)`)
    const ds = buildAlarmVectorsDs()
    writeFileSync(root + ALARM_VECTORS_DS_PATH, ds)
    console.log(`wrote ${ALARM_VECTORS_DS_PATH} (${Buffer.byteLength(ds)} bytes)`)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main()
