import { describe, it, expect } from "vitest"
import { readFileSync } from "node:fs"
import {
    AlarmEngine,
    AlarmRuleError,
    MAX_STATE_LEN,
    PRESETS,
    aboveBound,
    belowBound,
    checkDeviceAlarms,
    checkRuleAlarms,
    presetRuleSet,
    decodeState,
    evaluate,
    parseRules,
    ruleProblems,
    stateLength,
    type AlarmEventOut,
    type RuleSet,
} from "../src/alarms/index.js"
import {
    ALARM_VECTORS_DS_PATH,
    ALARM_VECTORS_PATH,
    alarmCases,
    buildAlarmVectors,
    buildAlarmVectorsDs,
    expectedOf,
    inputsOf,
    samplesOf,
} from "../src/tools/gen-alarm-vectors.js"
import { compiledRuleSet, COMPILED_HEADER_LEN, COMPILED_RULE_LEN } from "../src/alarms/compiled.js"
import { provisionValues, newDeviceKeys, ProvisionError } from "../src/provision/provision.js"
import { ALARM_TYPE, KIND, type LogRecord } from "../src/format/index.js"
import { placeRecords } from "../src/verify/timeline.js"
import { evaluateForReport, placedBattery, placedOpenings } from "../src/alarms/report.js"
import { lidEdges } from "../src/alarms/engine.js"
import { shipmentLog } from "./helpers/shipment-log.js"
import { verifyLog } from "../src/verify/verify.js"
import { formatVerdict } from "../src/verify/cli.js"

// The rule engine (docs/alarms.md) against the shared vectors (docs/vectors/alarms.json), which the
// firmware's port is tested against too.
const root = new URL("../", import.meta.url)
const V = JSON.parse(readFileSync(new URL(ALARM_VECTORS_PATH, root), "utf8"))

describe("alarm vectors", () => {
    it("the vector file is up to date and the generator is stable (run: npx tsx src/tools/gen-alarm-vectors.ts)", () => {
        const a = buildAlarmVectors()
        expect(buildAlarmVectors()).toBe(a)
        expect(readFileSync(new URL(ALARM_VECTORS_PATH, root), "utf8")).toBe(a)
        // the same cases for the firmware's engine (devs/test/alarms.test.ts runs them in the VM)
        expect(readFileSync(new URL(ALARM_VECTORS_DS_PATH, root), "utf8")).toBe(buildAlarmVectorsDs())
    })

    it("compiles a rule set to the logger's integers (docs/alarms.md, the logger's rule set)", () => {
        const rs: RuleSet = {
            intervalS: 300,
            rules: [
                { id: "heat", type: "single", direction: "above", limitC: 29.9, inclusive: true, minDurationS: 3600, hysteresisC: 0.5 },
                { id: "mkt", type: "mkt", limitC: -60, windowS: 86400 },
                { id: "lid", type: "openings", maxPerDay: 2, maxOpenS: 60 },
            ],
        }
        const b = compiledRuleSet(rs)
        expect(b.length).toBe(COMPILED_HEADER_LEN + 3 * COMPILED_RULE_LEN)
        expect([b[0], b[1], b.readUInt32LE(4)]).toEqual([1, 3, 300])
        const rule = (i: number) => {
            const o = COMPILED_HEADER_LEN + COMPILED_RULE_LEN * i
            return [
                b[o],
                b.readInt8(o + 1),
                b.readInt32LE(o + 4),
                b.readInt32LE(o + 8),
                b.readInt32LE(o + 12),
                b.readInt32LE(o + 16),
                b.readInt32LE(o + 20),
            ]
        }
        // 29.9 °C inclusive: tc >= ceil(3827.2) = 3828; cleared at or below 3828 - 1 - 64 (0.5 °C)
        expect(rule(0)).toEqual([1, 1, 3828, 3763, 3600, 0, 0])
        // MKT over days, coverage a day, limit -60.00 °C
        expect(rule(1)).toEqual([3, 0, 0, 0, 86400, 86400, -6000])
        expect(rule(2)).toEqual([7, 0, 0, 0, 2, 60, 0])
    })

    it("covers every preset and the edges the issue names", () => {
        const names = V.cases.map((c: { name: string }) => c.name)
        for (const p of PRESETS) expect(names).toContain(`preset-${p.id}`)
        for (const n of ["threshold-inclusive", "power-cut-split", "faults-in-window", "cumulative-across-days", "mkt"])
            expect(names).toContain(n)
    })

    for (const c of V.cases) {
        it(`${c.name}: ${c.what}`, () => {
            const cs = alarmCases().find(x => x.name === c.name)!
            const res = evaluate(c.ruleSet, samplesOf(c), inputsOf(c))
            expect(expectedOf(res)).toEqual(c.expect)
            // the state bytes a logger would keep, and they read back
            expect(cs.ruleSet).toEqual(c.ruleSet)
            const st = Buffer.from(c.state, "hex")
            expect(st.length).toBe(stateLength(c.ruleSet))
            expect(st.length).toBeLessThanOrEqual(MAX_STATE_LEN)
            expect(new AlarmEngine(c.ruleSet, decodeState(c.ruleSet, st)).save().toString("hex")).toBe(c.state)
        })
    }

    it("the expected outcomes the issue states", () => {
        const by = (n: string) => V.cases.find((c: { name: string }) => c.name === n).expect.rules
        const rule = (n: string, id: string) => by(n).find((r: { id: string }) => r.id === id)
        // 30.0 triggers, 29.9 does not
        expect(rule("threshold-inclusive", "ge-30").events.map((e: unknown[]) => e[2])).toEqual([3840, 2560])
        expect(rule("threshold-inclusive", "gt-30").outcome).toBe("ok")
        // a power cut splits the excursion: no proven hour, but not a pass either
        expect(rule("power-cut-split", "heat-45")).toMatchObject({ outcome: "not-judged", notJudged: "unknown-time", events: [] })
        expect(rule("faults-in-window", "freeze")).toMatchObject({ outcome: "not-judged", events: [] })
        expect(rule("cumulative-across-days", "heat-30")).toMatchObject({ outcome: "alarm", active: true })
        expect(rule("mkt", "mkt").mktC).toBeGreaterThan(8)
        expect(rule("preset-ultracold-mrna", "openings").openings).toBe(4)
    })
})

describe("the incremental evaluation", () => {
    it("agrees with the batch one, with the state written to bytes and read back after every input (sleeps, power cuts)", () => {
        for (const c of alarmCases()) {
            const batch = evaluate(c.ruleSet, samplesOf(c), inputsOf(c))
            const inp = inputsOf(c)
            const inputs: { t: number; k: number; f: (e: AlarmEngine) => AlarmEventOut[] }[] = []
            samplesOf(c).forEach(s => inputs.push({ t: s.utcMs, k: 0, f: e => e.feed(s) }))
            for (const b of inp.battery ?? []) inputs.push({ t: b.utcMs, k: -1, f: e => e.feedBattery(b) })
            for (const o of inp.openings ?? []) {
                inputs.push({ t: o.startMs, k: -1, f: e => e.feedLid(o.startMs, true) })
                if (o.endMs !== null) inputs.push({ t: o.endMs, k: -1, f: e => e.feedLid(o.endMs!, false) })
            }
            // samples first at equal times, as the batch does (stable sort keeps log order)
            inputs.sort((a, b) => a.t - b.t || b.k - a.k)
            let bytes = new AlarmEngine(c.ruleSet).save()
            const events: AlarmEventOut[] = []
            let last: AlarmEngine | null = null
            const trace = { events: [], gaps: [], faults: [], samples: 0, haveOpenings: !!inp.openings }
            for (const x of inputs) {
                const eng = new AlarmEngine(c.ruleSet, bytes, { ...trace, events: [] })
                events.push(...x.f(eng))
                bytes = eng.save()
                last = eng
            }
            const fin = new AlarmEngine(c.ruleSet, bytes, {
                ...trace,
                events,
                haveOpenings: !!inp.openings,
                samples: last?.trace.samples ?? 0,
            })
            const inc = fin.finish({ nowMs: inp.nowMs })
            const strip = (r: typeof inc) =>
                r.rules.map(({ events: ev, ...rest }) => ({ ...rest, events: ev.map(({ seq: _s, boot: _b, uptimeMs: _u, ...e }) => e) }))
            expect(strip(inc), c.name).toEqual(strip(batch))
            expect([inc.mktC, inc.judgedS, inc.faultS, inc.gapS], c.name).toEqual([batch.mktC, batch.judgedS, batch.faultS, batch.gapS])
        }
    })
})

describe("rules", () => {
    it("compile thresholds to integer counts: inclusive and exclusive, above and below", () => {
        expect(aboveBound(30, true)).toBe(3840)
        expect(aboveBound(30, false)).toBe(3841)
        expect(aboveBound(29.9, true)).toBe(3828) // 29.9 * 128 = 3827.2
        expect(belowBound(-0.5, true)).toBe(-64)
        expect(belowBound(-0.5, false)).toBe(-65)
        expect(belowBound(2, false)).toBe(255)
    })

    it("every preset validates and its state fits a settings value", () => {
        for (const p of PRESETS) {
            expect(ruleProblems(p.rules, 300), p.id).toEqual([])
            expect(stateLength({ intervalS: 60, rules: p.rules })).toBeLessThanOrEqual(MAX_STATE_LEN)
            expect(p.source.length).toBeGreaterThan(20)
        }
        expect(parseRules("who-type-1", 300).rules.length).toBe(4)
    })

    it("refuses custom rules with messages that name the field", () => {
        const bad = [
            { id: "Heat", type: "single", direction: "up", limitC: 30.123, inclusive: "yes", minDurationS: -1 },
            { id: "c", type: "cumulative", direction: "above", limitC: 30, inclusive: true, budgetS: 90000, windowS: 86400, extra: 1 },
            { id: "c", type: "openings", maxPerDay: 20, maxOpenS: 60 },
            { id: "m", type: "warp" },
        ]
        let err: AlarmRuleError | null = null
        try {
            parseRules(bad, 300, "config.alarms")
        } catch (e) {
            err = e as AlarmRuleError
        }
        expect(err).toBeInstanceOf(AlarmRuleError)
        const text = err!.problems.join("\n")
        for (const want of [
            "config.alarms[0].id",
            "config.alarms[0].direction",
            "config.alarms[0].limitC must have at most 2 decimals",
            "config.alarms[0].inclusive must be true or false",
            "config.alarms[0].minDurationS",
            'config.alarms[1]: unknown field "extra"',
            "config.alarms[1].budgetS cannot exceed windowS",
            'config.alarms[2].id "c" is used twice',
            "config.alarms[2].maxPerDay must be 1..8",
            "config.alarms[3].type must be one of",
        ])
            expect(text).toContain(want)
        expect(() => parseRules("who-type-3", 300)).toThrow(/unknown preset "who-type-3"/)
        const many = Array.from({ length: 4 }, (_, i) => ({
            id: `r${i}`,
            type: "cumulative",
            direction: "above",
            limitC: 8,
            inclusive: false,
            budgetS: 3600,
            windowS: 86400,
        }))
        expect(ruleProblems(many, 300).join()).toMatch(/state for these rules would be \d+ bytes, at most 192/)
    })

    it("provisioning validates the configuration's alarm rules (a preset name or rules)", () => {
        const base = { ...newDeviceKeys(), endpoint: "https://ingest.example/v1/batch" }
        const values = provisionValues({ ...base, config: { interval: 600, upload: 3600, low: 2, high: 8, alarms: "who-30dtr" } })
        const cfg = values.get("cfg")!
        expect(JSON.parse(cfg.toString()).alarms).toBe("who-30dtr")
        // what the logger runs: the preset's rules compiled for the configured interval
        expect(values.get("alarms")).toEqual(compiledRuleSet(presetRuleSet("who-30dtr", 600)))
        expect(provisionValues({ ...base, config: { interval: 600, upload: 3600, low: 2, high: 8 } }).has("alarms")).toBe(false)
        expect(() => provisionValues({ ...base, config: { interval: 300, upload: 3600, low: 2, high: 8, alarms: "nope" } })).toThrow(
            ProvisionError,
        )
        expect(() =>
            provisionValues({
                ...base,
                config: { interval: 300, upload: 3600, low: 2, high: 8, alarms: [{ id: "x", type: "fault", minDurationS: 1.5 }] },
            }),
        ).toThrow(/config\.alarms\[0\]\.minDurationS must be whole seconds/)
        // without alarms the configuration text is what it was (the config hash of existing loggers does not change)
        const plain = provisionValues({ ...base, config: { interval: 300, upload: 3600, low: 2, high: 8 } }).get("cfg")!
        expect(JSON.parse(plain.toString())).not.toHaveProperty("alarms")
    })
})

describe("device and host agree", () => {
    const band = { low: 2, high: 8 }
    it("today's firmware band alarms in the test shipment log agree with the band rule", () => {
        const { w } = shipmentLog()
        const check = checkDeviceAlarms(w.records, band)
        expect(check.expected).toBe(2)
        expect(check.recorded).toBe(2)
        expect(check.findings).toEqual([])
        expect(check.agree).toBe(true)
    })

    it("a disagreement is a finding: a missing clear, an alarm without cause, another band", () => {
        const { w } = shipmentLog()
        const recs = w.records
        const firstAlarm = recs.findIndex(r => r.kind === KIND.alarm)
        // drop the clear record (a firmware that never clears), keeping seqs consecutive by renumbering is not needed: compare by content
        const noClear = recs.filter(r => !(r.kind === KIND.alarm && (r as { type: number }).type === ALARM_TYPE.backInBand))
        const c1 = checkDeviceAlarms(renumber(noClear), band)
        expect(c1.agree).toBe(false)
        expect(c1.findings.join("\n")).toMatch(/expects "back in band"; the logger recorded none/)
        // the same log judged against a band the device was not configured with
        const c2 = checkDeviceAlarms(recs, { low: 2, high: 10 })
        expect(c2.agree).toBe(false)
        expect(c2.findings[0]).toMatch(/the logger recorded "above band" at \d+\.\d\d °C; the band rule expects no alarm record there/)
        expect(firstAlarm).toBeGreaterThan(0)
    })

    it("compares from seq 0 or from a boot record: a log that starts mid-boot is compared from its next boot", () => {
        const { w } = shipmentLog()
        const tail = w.records.slice(200)
        const c = checkDeviceAlarms(tail, band)
        expect(c.notes.join()).toMatch(/before a known state were not compared/)
        expect(c.agree).toBe(true)
    })
})

describe("the verifier", () => {
    it("checks the logger's alarm records against its band: agreement is stated, a disagreement is a finding", () => {
        const { w } = shipmentLog()
        const records = w.bytes.map((bytes, seq) => ({ seq, bytes, head: w.heads[seq] }))
        const v = verifyLog({ devid: w.devid, k0: w.k0, records, deviceBand: { low: 2, high: 8 } })
        expect(v.ok).toBe(true)
        expect(v.alarmCheck).toMatchObject({ agree: true, recorded: 2 })
        expect(formatVerdict(v)).toMatch(/alarms: the logger's 2 alarm records agree with its band 2\.\.8 C/)
        const other = verifyLog({ devid: w.devid, k0: w.k0, records, deviceBand: { low: 2, high: 10 } })
        // the chain verdict stands; the finding is printed with it
        expect(other.ok).toBe(true)
        expect(other.alarmCheck?.agree).toBe(false)
        expect(formatVerdict(other)).toMatch(
            /alarms: FINDING: the logger's alarm records disagree with its band 2\.\.10 C:\n {4}seq \d+: the logger recorded "above band"/,
        )
        expect(verifyLog({ devid: w.devid, k0: w.k0, records }).alarmCheck).toBeUndefined()
    })
})

describe("in the report", () => {
    it("evaluates the shipment log against fridge-2-8: the excursion is an alarm, the open thermocouple and the power cut are not judged", () => {
        const { w, excursion } = shipmentLog()
        const utc = new Map(placeRecords(w.records).map(p => [p.seq, p.utc]))
        const deviceCheck = checkDeviceAlarms(w.records, { low: 2, high: 8 })
        const r = evaluateForReport(
            w.records,
            utc,
            { id: "refrigerated", low: 2, high: 8 },
            { verified: true, verdictWord: "VERIFIED", deviceCheck },
        )
        expect(r.presetId).toBe("fridge-2-8")
        expect(r.ruleSet.intervalS).toBe(300)
        const warm = r.rules.find(x => x.id === "fridge-2-8.warm")!
        expect(warm.outcome).toBe("alarm")
        expect(warm.windows[0]).toMatchObject({ start: excursion.start, end: excursion.end, type: "above" })
        // six OPEN readings 5 min apart: each counts the 5 min before it, 30 min in all
        expect(r.rules.find(x => x.id === "fridge-2-8.fault")!).toMatchObject({ outcome: "alarm", inConditionS: 1800 })
        expect(r.recommendation.decision).toBe("quarantine")
        expect(r.recommendation.reasons.join("\n")).toMatch(/> \+8 °C \(fridge-2-8\): ALARM/)
        expect(r.recommendation.notJudged.join("\n")).toMatch(/faulted readings .* to /)
        expect(r.recommendation.notJudged.join("\n")).toMatch(/no sample .* \(2 h/)
    })

    it("releases a clean log, and keeps back one whose gap could hide an excursion", () => {
        const w = shipmentLog().w
        // the same log with the excursion and the open thermocouple read as 5 °C
        const clean = w.records
            .filter(r => r.kind !== KIND.alarm)
            .map(r =>
                r.kind === KIND.sample && ((r as { tc: number }).tc > 8 * 128 || (r as { sr: number }).sr) ? { ...r, tc: 640, sr: 0 } : r,
            )
        const utc = new Map(placeRecords(clean).map(p => [p.seq, p.utc]))
        const ok = { verified: true, verdictWord: "VERIFIED" }
        const beforeCut = clean.filter(r => (utc.get(r.seq) ?? 0) < Date.parse("2025-03-30T12:00:00Z"))
        expect(evaluateForReport(beforeCut, utc, { id: "refrigerated", low: 2, high: 8 }, ok).recommendation).toMatchObject({
            decision: "release",
            reasons: [],
        })
        // with the 2-hour power cut: an immediate rule cannot say nothing happened in it
        const withCut = evaluateForReport(clean, utc, { id: "refrigerated", low: 2, high: 8 }, ok).recommendation
        expect(withCut.decision).toBe("quarantine")
        expect(withCut.reasons.join("\n")).toMatch(/NOT JUDGED \(gaps or faulted readings could hide an alarm\)/)
        // no placed sample: nothing to release
        expect(evaluateForReport([], new Map(), { id: "refrigerated", low: 2, high: 8 }, ok).recommendation.decision).toBe("quarantine")
        // a known band the logger's records disagree with keeps the goods back
        const wrongBand = checkDeviceAlarms(w.records, { low: 2, high: 10 })
        expect(
            evaluateForReport(beforeCut, utc, { id: "refrigerated", low: 2, high: 8 }, { ...ok, deviceCheck: wrongBand }).recommendation
                .reasons,
        ).toEqual(["the logger's alarm records disagree with the host's evaluation of its band"])
        // so does a logger whose rule alarm records disagree with its configured rules: this log has
        // none, and the fridge rules would have raised on it
        const rules = checkRuleAlarms(w.records, presetRuleSet("fridge-2-8", 300))
        expect(rules.agree).toBe(false)
        expect(rules.recorded).toBe(0)
        expect(
            evaluateForReport(beforeCut, utc, { id: "refrigerated", low: 2, high: 8 }, { ...ok, ruleCheck: rules }).recommendation.reasons,
        ).toEqual(["the logger's rule alarm records disagree with the host's evaluation of its rules"])
        // not verified: never released
        expect(
            evaluateForReport(beforeCut, utc, { id: "refrigerated", low: 2, high: 8 }, { verified: false, verdictWord: "TAMPERED" })
                .recommendation.reasons,
        ).toEqual(["the records are not verified (TAMPERED)"])
    })
})

/** Records with consecutive seqs again (for logs edited by a test). */
function renumber(recs: LogRecord[]): LogRecord[] {
    return recs.map((r, i) => ({ ...r, seq: i }))
}

export type { RuleSet }

describe("battery records in the report's evaluation", () => {
    it("those the timeline places in UTC become the battery rule's readings; unplaced ones are left out", () => {
        const T = Date.parse("2026-05-04T06:00:00Z")
        const battery = (seq: number, mv: number) => ({ seq, kind: KIND.battery, t: seq, mv, level: 0, flags: 0 })
        const records = [
            battery(0, 3650),
            { seq: 1, kind: KIND.sample, t: 1, tc: 640, cj: 0, sr: 0, sflags: 0 },
            battery(2, 3800),
            battery(3, 3900),
        ]
        const utc = new Map<number, number | null>([
            [0, T],
            [1, T + 1000],
            [2, T + 2000],
            [3, null],
        ])
        expect(placedBattery(records as LogRecord[], utc)).toEqual([
            { utcMs: T, mv: 3650 },
            { utcMs: T + 2000, mv: 3800 },
        ])
    })
})

describe("lid records (docs/format.md 2.5)", () => {
    const lid = (seq: number, t: number, first: number, openEdge: boolean, count: number, open: boolean) =>
        ({ seq, kind: KIND.lid, t, first, openEdge, count, open, flags: 0 }) as LogRecord

    it("a record's edges: the first at its stamp, the others at the record, then the level read", () => {
        // watched for the opening, one opening, still open: the opening only
        expect(lidEdges({ t: 100, first: 90, openEdge: true, count: 1, open: true })).toEqual([{ t: 90, open: true }])
        // three openings, closed at the read: opened at the stamp; closed and opened twice more at t; closed at t
        expect(lidEdges({ t: 100, first: 90, openEdge: true, count: 3, open: false })).toEqual([
            { t: 90, open: true },
            { t: 100, open: false },
            { t: 100, open: true },
            { t: 100, open: false },
            { t: 100, open: true },
            { t: 100, open: false },
        ])
        // watched for the closing, closed and open again: closed at the stamp, opened at t
        expect(lidEdges({ t: 100, first: 95, openEdge: false, count: 1, open: true })).toEqual([
            { t: 95, open: false },
            { t: 100, open: true },
        ])
        // nothing counted, the level not what the logger believed (a lid open at the power-on)
        expect(lidEdges({ t: 100, first: 0, openEdge: true, count: 0, open: true })).toEqual([{ t: 100, open: true }])
        expect(lidEdges({ t: 100, first: 0, openEdge: true, count: 0, open: false })).toEqual([])
    })

    it("the report's openings: placed in UTC by their records, one still open at the end", () => {
        const T = Date.parse("2026-05-04T06:00:00Z")
        const records = [
            lid(0, 1000, 0, true, 0, false),
            lid(1, 2000, 1990, true, 1, true),
            lid(2, 2100, 2040, false, 1, false),
            lid(3, 3000, 2500, true, 2, false),
            lid(4, 4000, 3995, true, 1, true),
        ]
        // the records' UTC: device time + a fixed offset, record 0 unplaced
        const utc = new Map<number, number | null>(records.map(r => [r.seq, r.seq === 0 ? null : T + r.t * 1000]))
        expect(placedOpenings(records, utc)).toEqual([
            { startMs: T + 1_990_000, endMs: T + 2_040_000 },
            { startMs: T + 2_500_000, endMs: T + 3_000_000 },
            { startMs: T + 3_000_000, endMs: T + 3_000_000 },
            { startMs: T + 3_995_000, endMs: null },
        ])
        // a log without lid records: no openings (the openings rules are then not judged)
        expect(placedOpenings([], utc)).toBeUndefined()
    })

    it("the engine takes a record's edges in order (the logger's own engine: scenario rules-ultracold)", () => {
        const rs = presetRuleSet("ultracold-mrna", 300)
        const eng = new AlarmEngine(rs)
        const events = [
            ...eng.feedLidRecord({ t: 1000, first: 990, openEdge: true, count: 2, open: false }),
            ...eng.feedLidRecord({ t: 5000, first: 4000, openEdge: true, count: 1, open: true }),
            ...eng.feedLidRecord({ t: 5300, first: 5200, openEdge: false, count: 1, open: false }),
        ]
        // the third opening of the day (t 4000) is one too many: raised at its start; open for 1200 s, it
        // is raised already; cleared when it closes
        expect(events.map(e => [e.kind, e.t, e.why ?? ""])).toEqual([
            ["raise", 4000, "count"],
            ["clear", 5200, ""],
        ])
    })
})
