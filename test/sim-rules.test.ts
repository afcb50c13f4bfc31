import { describe, it, expect, beforeAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync, readFileSync } from "node:fs"
import Database from "better-sqlite3"
import { runScenario, type RunResult } from "../src/sim/run.js"
import { loadScenario, type Scenario } from "../src/sim/scenario.js"
import { ROOT } from "../src/sim/vm.js"
import { decodeExport } from "../src/sim/export.js"
import { mergeLogs } from "../src/verify/chain.js"
import {
    decodeRecord,
    KIND,
    LID_FLAG,
    RULE_WHY,
    type LidRecord,
    type LogRecord,
    type RuleAlarmRecord,
    type SampleRecord,
} from "../src/format/index.js"
import { checkRuleAlarms, presetRuleSet, evaluate, type EvalSample } from "../src/alarms/index.js"
import { configHash } from "../src/provision/provision.js"

/** Run the scenario; the whole log: what the server holds merged with what the device still holds. */
async function runAndRead(scenario: Scenario, prefix: string): Promise<{ r: RunResult; records: LogRecord[] }> {
    const out = mkdtempSync(path.join(os.tmpdir(), prefix))
    const r = await runScenario({ scenario, outDir: out })
    const db = new Database(r.dbPath, { readonly: true })
    const server = db.prepare("SELECT seq, bytes, head FROM records ORDER BY seq").all() as { seq: number; bytes: Buffer; head: Buffer }[]
    db.close()
    const device = decodeExport(JSON.parse(readFileSync(path.join(out, "device-export.json"), "utf8"))).entries
    return { r, records: mergeLogs(server, device).merged.map(e => decodeRecord(e.bytes)) }
}

// The alarm rules on the logger (issue 13 items 2 and 3): a refrigerated shipment under the
// fridge-2-8 preset. The firmware's engine (devs/alarm/engine.ts) runs at every sample and records
// each raise and clear in the chain (kind 11); the host's engine, fed what the logger fed its own,
// must give exactly those events; every raise goes out at once; the state survives the power cut.
describe("alarm rules on the logger (rules-fridge scenario)", () => {
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/rules-fridge.json"))
    const rules = presetRuleSet("fridge-2-8", scenario.device.interval)
    let r: RunResult
    let records: LogRecord[]
    let summary: any

    beforeAll(async () => {
        ;({ r, records } = await runAndRead(scenario, "coldtrace-rules-"))
        summary = JSON.parse(readFileSync(r.summaryPath, "utf8"))
    }, 300_000)

    const ruleAlarms = () => records.filter((x): x is RuleAlarmRecord => x.kind === KIND.ruleAlarm)

    it("records every rule's raise and clear in the chain: warm, cold, freeze after an hour, the faulted probe", () => {
        const byRule = (id: string) => ruleAlarms().filter(a => a.rule === rules.rules.findIndex(x => x.id === id))
        for (const id of ["warm", "cold", "freeze", "fault"]) {
            expect(
                byRule(id).map(a => a.raise),
                id,
            ).toEqual([true, false])
        }
        // the freeze rule raises after an hour at -1 °C, not at the first reading (the cold rule does):
        // each reading stands for the 5 min before it, so the twelfth reading completes the hour
        // (docs/alarms.md 2.2), 55 min after the first
        const cold = byRule("cold")[0]
        const freeze = byRule("freeze")[0]
        expect(freeze.t - cold.t).toBe(3600 - scenario.device.interval)
        // the warm excursion never reached 1 h, MKT over the trip stays below +8 °C: no other rule
        expect(ruleAlarms().length).toBe(8)
        expect(r.summary.samples.lost).toBe(0)
        expect(r.summary.chain.status, r.summary.chain.detail).toBe("ok")
    })

    it("the host's engine, fed what the logger fed its own, gives exactly the logger's events (also the verifier's check)", () => {
        const check = checkRuleAlarms(records, rules)
        expect(check.findings).toEqual([])
        expect(check.agree).toBe(true)
        expect(check.recorded).toBe(8)
        expect(check.expected).toBe(8)
        expect(check.inputs).toBeGreaterThan(90)
        // the run's own verification (summary.json) made the same check on the server's copy
        const server = summary.verification.find((v: { what: string }) => v.what.startsWith("server database"))
        expect(server.ruleCheck.agree).toBe(true)
        expect(server.ruleCheck.recorded).toBe(8)
        expect(r.summary.chain.detail).toContain("alarm rules: the logger's 8 rule alarm records agree")
    })

    it("a tampered record is a finding: the host does not simply copy what the logger says", () => {
        const forged = records.map(x => {
            const a = x as RuleAlarmRecord
            return x.kind === KIND.ruleAlarm && a.rule === 0 && a.raise ? { ...a, t: a.t + 300 } : x
        })
        const check = checkRuleAlarms(forged, rules)
        expect(check.agree).toBe(false)
        expect(check.findings.join("\n")).toContain("warm raised")
    })

    it("the host's own placement (UTC, the report's view) gives the same rules the same outcome", () => {
        // the clock holds UTC from the first fix: the placed evaluation and the logger's agree on which rules raised
        let boot = 0
        const samples: EvalSample[] = []
        for (const x of records) {
            if (x.kind === KIND.boot && "boot" in x) boot = x.boot
            if (x.kind === KIND.sample && "tc" in x)
                samples.push({ utcMs: x.t * 1000, tc: x.tc, faulted: x.sr !== 0 || x.sflags !== 0, boot, uptimeMs: x.t * 1000 })
        }
        const res = evaluate(rules, samples)
        for (const id of ["warm", "cold", "freeze", "fault"]) expect(res.rules.find(x => x.id === id)!.outcome, id).toBe("alarm")
    })

    it("every raise goes out at once: an upload within the minute that follows it", () => {
        const uploads = r.observed.console.tagged("upload").map(x => x.utc)
        const raises = r.observed.console.tagged("rule-alarm").filter(x => x.line.fields.raise === "1")
        expect(raises.length).toBe(4)
        for (const a of raises)
            expect(
                uploads.some(u => u >= a.utc && u - a.utc < 60_000),
                `raise at ${a.utc}`,
            ).toBe(true)
    })

    it("the rules are part of the configuration: the config record's hash covers the compiled rule set", () => {
        // the server registered configHash(config, endpoint), which covers the compiled rules
        // (src/provision/provision.ts); the verifier finds the logger's config record equal to it
        expect(r.summary.chain.detail).toMatch(/configuration from seq 1: [0-9a-f]{32} \(as provisioned\)/)
        const config = records.find(x => x.kind === KIND.config) as { hash: Buffer }
        const endpoint = "https://example.invalid/v1/batch"
        const withRules = configHash(scenario.device, endpoint)
        const without = configHash({ ...scenario.device, alarms: undefined }, endpoint)
        expect(withRules.equals(without)).toBe(false)
        expect(config.hash.length).toBe(16)
    })
})

// The same check on a preset with a cumulative budget: the WHO type I shipping indicator on a hot
// transit. 70 min at 46 °C raise the 1-h 45 °C event (and count for the 30 °C budget), 31 °C for the
// rest of the day uses up the 10-h budget, which latches; a 30-min power cut in between is unknown
// time (it neither counts nor breaks the budget).
describe("alarm rules on the logger (rules-who-type-1 scenario)", () => {
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/rules-who-type-1.json"))
    const rules = presetRuleSet("who-type-1", scenario.device.interval)
    let r: RunResult
    let records: LogRecord[]

    beforeAll(async () => {
        ;({ r, records } = await runAndRead(scenario, "coldtrace-rules-who-"))
    }, 300_000)

    it("raises and clears the 45 °C event, raises the 30 °C budget once (it latches), nothing else; the host agrees", () => {
        const events = records.filter((x): x is RuleAlarmRecord => x.kind === KIND.ruleAlarm)
        const of = (id: string) => events.filter(a => a.rule === rules.rules.findIndex(x => x.id === id)).map(a => a.raise)
        expect(of("heat-45")).toEqual([true, false])
        expect(of("heat-30")).toEqual([true])
        expect(of("freeze")).toEqual([])
        expect(of("fault")).toEqual([])
        // the budget: 10 h of readings at or above 30 °C. Each hot reading stands for the time since the
        // one before it (the first too: since the last cool one); the power cut's gap stands for nothing
        const raise30 = events.find(a => a.rule === rules.rules.findIndex(x => x.id === "heat-30"))!
        const samples = records.filter((x): x is SampleRecord => x.kind === KIND.sample)
        const firstHot = samples.findIndex(x => x.tc >= 30 * 128)
        const boot2 = records.findIndex(x => x.kind === KIND.boot && "boot" in x && x.boot === 2)
        const after = samples.findIndex(x => x.seq > records[boot2].seq)
        const gap = samples[after].t - samples[after - 1].t
        expect(gap).toBeGreaterThan(1800)
        const counted = raise30.t - samples[firstHot - 1].t - gap
        expect(counted).toBeGreaterThanOrEqual(36000)
        expect(counted).toBeLessThan(36000 + scenario.device.interval)
        const check = checkRuleAlarms(records, rules)
        expect(check.findings).toEqual([])
        expect(check.agree).toBe(true)
        expect(check.recorded).toBe(3)
        expect(r.summary.samples.lost).toBe(0)
        expect(r.summary.chain.status, r.summary.chain.detail).toBe("ok")
    })
})

// The shipper's lid (issue 13 item 5) on the ultracold-mrna preset: the Hall switch drives the clock's
// event input, whose interrupt wakes the sleeping logger at every edge (hardware/README.md, v2), so
// each opening and closing is a lid record at its own instant (docs/format.md 2.5). Three openings in
// a day: the second stays open 90 s (more than the preset's minute), the third is one too many.
describe("the shipper's lid on the logger (rules-ultracold scenario)", () => {
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/rules-ultracold.json"))
    const rules = presetRuleSet("ultracold-mrna", scenario.device.interval)
    const startS = Date.parse(scenario.start) / 1000
    const openings = scenario.lid!.map(o => ({ open: startS + o.at * 3600, close: startS + o.at * 3600 + o.openS }))
    let r: RunResult
    let records: LogRecord[]
    let summary: any

    beforeAll(async () => {
        ;({ r, records } = await runAndRead(scenario, "coldtrace-lid-"))
        summary = JSON.parse(readFileSync(r.summaryPath, "utf8"))
    }, 300_000)

    const lids = () => records.filter((x): x is LidRecord => x.kind === KIND.lid)

    it("records every opening and closing at its instant, woken by the edge itself", () => {
        const [watch, ...edges] = lids()
        // the first start: the clock's event input starts watching, the lid closed
        expect(watch.flags & LID_FLAG.unwatched).toBe(LID_FLAG.unwatched)
        expect([watch.count, watch.open]).toEqual([0, false])
        // then one record per edge: the clock's stamp within a second of the world's instant (the
        // counter's phase), the record written at once (the interrupt ended the sleep); the power cut
        // with the lid closed adds none (the clock watched on its backup cell)
        expect(edges.length).toBe(2 * openings.length)
        openings.forEach((o, i) => {
            const [opened, closed] = [edges[2 * i], edges[2 * i + 1]]
            expect([opened.openEdge, opened.count, opened.open], `opening ${i}`).toEqual([true, 1, true])
            expect([closed.openEdge, closed.count, closed.open], `closing ${i}`).toEqual([false, 1, false])
            expect(Math.abs(opened.first - o.open), `opening ${i}`).toBeLessThanOrEqual(1)
            expect(Math.abs(closed.first - o.close), `closing ${i}`).toBeLessThanOrEqual(1)
            for (const e of [opened, closed]) expect(e.t - e.first, `woken by edge ${e.seq}`).toBeLessThanOrEqual(3)
        })
        expect(r.summary.samples.lost).toBe(0)
        expect(r.summary.chain.status, r.summary.chain.detail).toBe("ok")
        // a rule alarm's instant may precede the record before it: not the clock going back
        expect(r.summary.chain.detail).not.toContain("time-backwards")
    })

    it("raises the openings rule for the opening held too long and for the third in a day; the host agrees", () => {
        const rule = rules.rules.findIndex(x => x.id === "openings")
        const events = records.filter((x): x is RuleAlarmRecord => x.kind === KIND.ruleAlarm)
        expect(events.map(a => [a.rule, a.raise, a.why])).toEqual([
            [rule, true, RULE_WHY.duration],
            [rule, false, RULE_WHY.none],
            [rule, true, RULE_WHY.count],
            [rule, false, RULE_WHY.none],
        ])
        const [long, tooMany] = [lids()[3], lids()[5]]
        // too long: raised the minute after it opened, cleared when it closed; too many: at the third opening
        expect(events[0].t).toBe(long.first + 60)
        expect(events[1].t).toBe(lids()[4].first)
        expect(events[2].t).toBe(tooMany.first)
        const check = checkRuleAlarms(records, rules)
        expect(check.findings).toEqual([])
        expect(check.agree).toBe(true)
        expect(check.recorded).toBe(4)
        // a forged lid record (an opening moved by a minute) is a finding
        const forged = records.map(x => (x.kind === KIND.lid && x.seq === long.seq ? { ...long, first: long.first + 60 } : x))
        expect(checkRuleAlarms(forged, rules).agree).toBe(false)
    })

    it("the report judges the configured rules from the placed lid records: three openings, the rule in alarm", () => {
        const openingsRule = summary.alarms.rules.find((x: { id: string }) => x.id === "configured.openings")
        expect(openingsRule.outcome).toBe("alarm")
        expect(openingsRule.openings).toBe(3)
        expect(openingsRule.inConditionS).toBe(openings.reduce((n, o) => n + o.close - o.open, 0))
        // next to the host's judgement, what the logger itself recorded for the rule, placed in UTC
        const at = (s: number) => new Date(s * 1000).toISOString().slice(11, 19)
        expect(openingsRule.note).toContain(`the logger recorded raised (open too long) ${scenario.start.slice(0, 10)}`)
        expect(openingsRule.note).toContain(at(openings[1].open + 60))
        expect(openingsRule.note).toContain("raised (too many openings)")
        const warm = summary.alarms.rules.find((x: { id: string }) => x.id === "configured.warm")
        expect(warm.note).toContain("the logger recorded no event")
        expect(summary.alarms.recommendation.reasons.join("\n")).toContain("openings a day")
        // the report's openings section: each opening with its start and end, as the scenario had them
        expect(summary.openings.recorded).toBe(true)
        expect(summary.openings.events.map((o: { start: number; end: number }) => (o.end - o.start) / 1000)).toEqual(
            scenario.lid!.map(o => o.openS),
        )
        expect(summary.openings.note).toContain("3 openings")
    })
})

// One scenario per remaining preset, each with its known answer (issue 13 item 4): the logger's rule
// alarm records, the host's check of them, and the instants the rules' definitions give.
describe("alarm rules on the logger: the other presets (who-type-2, who-30dtr, frozen), and before the first time fix", () => {
    const run = async (name: string) => {
        const scenario = loadScenario(path.join(ROOT, `src/sim/scenarios/${name}.json`))
        const rules = presetRuleSet(scenario.device.alarms as string, scenario.device.interval)
        const { r, records } = await runAndRead(scenario, `coldtrace-${name}-`)
        const events = records.filter((x): x is RuleAlarmRecord => x.kind === KIND.ruleAlarm)
        const of = (id: string) => events.filter(a => a.rule === rules.rules.findIndex(x => x.id === id))
        const samples = records.filter((x): x is SampleRecord => x.kind === KIND.sample)
        const check = checkRuleAlarms(records, rules)
        expect(check.findings).toEqual([])
        expect(check.agree).toBe(true)
        expect(check.recorded).toBe(events.length)
        expect(r.summary.samples.lost).toBe(0)
        expect(r.summary.chain.status, r.summary.chain.detail).toBe("ok")
        return { scenario, of, samples, events }
    }

    it("who-type-2: 12 °C uses up the 10 °C budget after 20 h, which latches; nothing else", async () => {
        const { scenario, of, samples, events } = await run("rules-who-type-2")
        expect(of("heat-10").map(a => a.raise)).toEqual([true])
        expect(events.length).toBe(1)
        // each warm reading stands for the time since the one before it
        const firstWarm = samples.findIndex(x => x.tc >= 10 * 128)
        const counted = of("heat-10")[0].t - samples[firstWarm - 1].t
        expect(counted).toBeGreaterThanOrEqual(20 * 3600)
        expect(counted).toBeLessThan(20 * 3600 + scenario.device.interval)
    }, 300_000)

    it("who-30dtr at its thresholds: +8.0 °C is not above +8 °C; 1/128 °C above is, for 10 h; exactly -0.5 °C freezes after 60 min", async () => {
        const { scenario, of, samples } = await run("rules-who-30dtr")
        expect(samples.some(x => x.tc === 8 * 128)).toBe(true)
        expect(of("heat").map(a => a.raise)).toEqual([true, false])
        expect(of("freeze").map(a => a.raise)).toEqual([true, false])
        expect(of("fault")).toEqual([])
        const firstAbove = samples.find(x => x.tc > 8 * 128)!
        const firstFreeze = samples.find(x => x.tc === -64)!
        // a reading stands for the interval before it: the run reaches 10 h (60 min) one interval after its first reading's start
        expect(of("heat")[0].t - firstAbove.t).toBe(10 * 3600 - scenario.device.interval)
        expect(of("freeze")[0].t - firstFreeze.t).toBe(3600 - scenario.device.interval)
    }, 300_000)

    it("frozen: a warm and a cold excursion raise and clear at once; the trip's MKT stays inside", async () => {
        const { of, samples } = await run("rules-frozen")
        expect(of("warm").map(a => a.raise)).toEqual([true, false])
        expect(of("cold").map(a => a.raise)).toEqual([true, false])
        expect(of("mkt")).toEqual([])
        expect(of("fault")).toEqual([])
        expect(of("warm")[0].t).toBe(samples.find(x => x.tc > -15 * 128)!.t)
        expect(of("cold")[0].t).toBe(samples.find(x => x.tc < -25 * 128)!.t)
    }, 300_000)

    it("before the first time fix: the clock unset, the warm spell's rule runs on device time, placed later; the host agrees", async () => {
        const { of, samples } = await run("rules-before-fix")
        expect(of("warm").map(a => a.raise)).toEqual([true, false])
        expect(of("cold").map(a => a.raise)).toEqual([true, false])
        // the warm spell's records carry the unset clock's time (counted from its power-on), the cold's UTC
        const warm = of("warm")[0]
        expect(warm.t).toBeLessThan(86400)
        expect(of("cold")[0].t).toBeGreaterThan(Date.parse("2026-04-06T00:00:00Z") / 1000)
        expect(warm.t).toBe(samples.find(x => x.tc > 8 * 128)!.t)
    }, 300_000)
})
