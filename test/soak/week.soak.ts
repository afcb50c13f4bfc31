import { describe, it, expect, beforeAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync } from "node:fs"
import { runScenario, type RunResult } from "../../src/sim/run.js"
import { loadScenario } from "../../src/sim/scenario.js"
import { ROOT } from "../../src/sim/vm.js"
import { expectFaultWindowsExact, expectNoDrift } from "../helpers/world-checks.js"

// Long runs: `npm run soak`. The short versions are in test/sim-faults.test.ts and test/sim-e2e.test.ts.
describe("soak: a simulated week with faults, an outage and a power cut", () => {
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/week-faults.json"))
    let r: RunResult
    beforeAll(async () => {
        r = await runScenario({ scenario, outDir: mkdtempSync(path.join(os.tmpdir(), "coldtrace-week-")) })
    }, 900_000)

    it("flags every fault window exactly and nothing else", () => expectFaultWindowsExact(scenario, r.summary))
    it("keeps its schedule over the week (no drift beyond one interval)", () => {
        // the power cut leaves a hole: check each boot's run of samples on its own grid
        const cut = Date.parse(scenario.start) + scenario.powerCuts![0].at * 3_600_000
        const before = { ...r.summary, series: r.summary.series.filter(p => (p.t as number) < cut) }
        const after = { ...r.summary, series: r.summary.series.filter(p => (p.t as number) > cut) }
        expectNoDrift({ ...scenario, hours: scenario.powerCuts![0].at }, before)
        expectNoDrift({ ...scenario, hours: scenario.hours - scenario.powerCuts![0].at - scenario.powerCuts![0].off - 0.2 }, after)
    })
    it("loses nothing and keeps one chain", () => {
        expect(r.summary.samples.lost).toBe(0)
        expect(r.summary.chain.status).toBe("ok")
        expect(r.summary.samples.taken).toBe(r.summary.samples.acknowledged + r.summary.samples.onDevice)
    })
})

describe("soak: the default scenario (what npm start runs)", () => {
    it("stores at least 800 samples and accounts for every one", async () => {
        const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/puurs-to-nursing-home.json"))
        const r = await runScenario({ scenario, outDir: mkdtempSync(path.join(os.tmpdir(), "coldtrace-default-")) })
        expect(r.summary.samples.stored).toBeGreaterThanOrEqual(800)
        expect(r.summary.samples.lost).toBe(0)
        expect(r.summary.samples.taken).toBe(r.summary.samples.acknowledged + r.summary.samples.onDevice)
        expect(r.summary.chain.status).toBe("ok")
        expect(r.summary.excursions.length).toBe(1)
    }, 600_000)
})

describe("soak: a month in a thermal shipper (30 days, re-iced every 5 days, sea freight without a fix)", () => {
    it("sleeps between its wakes, survives a power cut and a hung socket, stores everything, loses nothing, one verified chain", async () => {
        const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/month-thermal-shipper.json"))
        const r = await runScenario({ scenario, outDir: mkdtempSync(path.join(os.tmpdir(), "coldtrace-month-")) })
        const n = r.summary.samples
        expect(n.taken).toBeGreaterThanOrEqual(30 * 288 - 14) // less the hour without power
        expect(n.lost).toBe(0)
        expect(n.taken).toBe(n.acknowledged + n.onDevice)
        expect(n.onDevice).toBeLessThanOrEqual(13) // at most the last upload period
        expect(r.summary.chain.status, r.summary.chain.detail).toBe("ok")
        // the duty cycle: thousands of wakes; an upload that hangs ends in the watchdog's reset (a boot),
        // as often as one starts inside the 1.2 h window (hourly uploads: at least once)
        expect(r.observed.console.tagged("wake").length).toBeGreaterThan(29 * 288)
        const fired = r.observed.console.tagged("watchdog").map(w => w.line.fields.fiber)
        expect(fired.length).toBeGreaterThan(0)
        expect(fired.every(f => f === "1")).toBe(true)
        expect(r.summary.energy?.mode).toBe("duty-cycled")
        console.log(`a month: ${n.taken} samples, ${(r.wallMs / 1000).toFixed(1)} s wall (world ${(r.worldWallMs / 1000).toFixed(1)} s)`)
    }, 900_000)
})

describe("soak: crash consistency, 200 SIGKILLs at random moments", () => {
    it("keeps one verifiable chain and loses nothing stored", async () => {
        const { expectCrashConsistent } = await import("../helpers/chaos-checks.js")
        const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/chaos-long.json"))
        const r = await runScenario({ scenario, outDir: mkdtempSync(path.join(os.tmpdir(), "coldtrace-chaos-long-")) })
        const { kills, missing } = expectCrashConsistent(scenario, r)
        expect(kills).toBeGreaterThanOrEqual(200)
        console.log(`${kills} SIGKILLs: ${missing} sample slots not taken, 0 lost`)
    }, 1_800_000)
})
