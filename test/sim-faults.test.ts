import { describe, it, expect, beforeAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync, readFileSync } from "node:fs"
import { runScenario, type RunResult } from "../src/sim/run.js"
import { loadScenario } from "../src/sim/scenario.js"
import { ROOT } from "../src/sim/vm.js"
import { expectFaultWindowsExact, expectNoDrift } from "./helpers/world-checks.js"

// The real MAX31856 driver against the register-level chip model in the VM, fed by the world:
// dry ice, an open thermocouple for 30 minutes, a chip that stops answering, a short to ground.
describe("sensor faults in the simulator (sensor-faults scenario)", () => {
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/sensor-faults.json"))
    const start = Date.parse(scenario.start)
    const H = 3_600_000
    let r: RunResult
    const inWin = (t: number, from: number, to: number) => t >= start + from * H && t < start + to * H

    beforeAll(async () => {
        r = await runScenario({ scenario, outDir: mkdtempSync(path.join(os.tmpdir(), "coldtrace-faults-")) })
    }, 240_000)

    it("reads dry ice (-78.5 C probe, -10 C cold junction) within one LSB", () => {
        const good = [...r.observed.sampleLines.values()].filter(s => s.sr === 0 && s.fl === 0)
        expect(good.length).toBeGreaterThan(70)
        for (const s of good) {
            expect(Math.abs(s.tc / 128 - -78.5)).toBeLessThanOrEqual(1 / 128)
            expect(Math.abs(s.cj / 64 - -10)).toBeLessThanOrEqual(1 / 64)
        }
        expect(r.summary.minC).toBeCloseTo(-78.5, 2)
        expect(r.summary.maxC).toBeCloseTo(-78.5, 2) // faulted readings never count as temperatures
    })

    it("flags OPEN for exactly the 30-minute open-thermocouple window, then recovers", () => {
        const s = r.summary.series
        const open = s.filter(p => p.fault?.includes("OPEN"))
        expect(open.length).toBe(6)
        for (const p of s) expect(p.fault?.includes("OPEN") ?? false).toBe(inWin(p.t as number, 2.0, 2.5))
        expect(open.every(p => p.c === null)).toBe(true)
        const after = s.filter(p => (p.t as number) >= start + 2.5 * H && (p.t as number) < start + 4 * H)
        expect(after.length).toBeGreaterThan(15)
        expect(after.every(p => !p.faulted)).toBe(true)
    })

    it("records NO_READING while the chip does not answer, and reconfigures it when it returns", () => {
        const s = r.summary.series
        for (const p of s) expect(p.fault === "NO_READING").toBe(inWin(p.t as number, 4.0, 4.5))
        expect(s.filter(p => p.fault === "NO_READING").length).toBe(6)
        expect(r.observed.console.tagged("sensor-fault").length).toBeGreaterThan(0)
        expect(r.observed.console.tagged("sensor-ok").length).toBeGreaterThan(0)
    })

    it("flags a short to ground as OV/UV; every sample carries exactly the faults of its moment", () => {
        const s = r.summary.series
        for (const p of s) expect(p.fault?.includes("OVUV") ?? false).toBe(inWin(p.t as number, 6.0, 6.25))
        expectFaultWindowsExact(scenario, r.summary)
    })

    it("lists the fault windows in the summary and the report, and keeps every faulted sample", () => {
        expect(r.summary.faults!.map(f => f.fault.split("+")[0])).toEqual(["OPEN", "NO_READING", "OVUV"])
        expect(r.summary.samples.faulted).toBe(r.summary.series.filter(p => p.faulted).length)
        expect(r.summary.samples.lost).toBe(0)
        const html = readFileSync(r.reportPath, "utf8")
        expect(html).toContain("Sensor faults")
        expect(html).toContain("NO_READING")
    })

    it("keeps the sampling schedule while faults come and go: no drift beyond one interval", () => {
        expectNoDrift(scenario, r.summary)
    })
})
