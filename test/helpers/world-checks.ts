import { expect } from "vitest"
import type { Scenario, FaultKind } from "../../src/sim/scenario.js"
import type { ShipmentSummary } from "../../src/report/summary.js"

/** The fault name the logger must report for each injected fault kind (MAX31856 SR / sflags). */
export const EXPECTED_FAULT: Record<FaultKind, string> = {
    open: "OPEN",
    short_vcc: "OVUV",
    short_gnd: "OVUV",
    dead: "NO_READING",
    stuck0: "NO_READING",
}

/**
 * Every sample inside a scripted fault window carries that fault, every sample outside all windows
 * is clean: faults are neither hidden nor smeared onto neighbouring samples.
 */
export function expectFaultWindowsExact(s: Scenario, summary: ShipmentSummary) {
    const start = Date.parse(s.start)
    const H = 3_600_000
    for (const p of summary.series) {
        const t = p.t as number
        const w = (s.faults ?? []).find(f => t >= start + f.from * H && t < start + f.to * H)
        if (w) {
            expect(p.faulted, `sample at ${new Date(t).toISOString()} inside ${w.kind} window`).toBe(true)
            expect(p.fault).toContain(EXPECTED_FAULT[w.kind])
            expect(p.c).toBeNull()
        } else expect(p.faulted, `sample at ${new Date(t).toISOString()} outside every fault window: ${p.fault}`).toBe(false)
    }
    for (const f of s.faults ?? []) {
        const n = summary.series.filter(p => (p.t as number) >= start + f.from * H && (p.t as number) < start + f.to * H).length
        expect(n, `samples inside the ${f.kind} window ${f.from}..${f.to} h`).toBeGreaterThanOrEqual(
            Math.floor(((f.to - f.from) * 3600) / s.device.interval) - 1,
        )
    }
}

/** Sample k lies within one interval of t0 + k * interval: an absolute schedule, no drift. */
export function expectNoDrift(s: Scenario, summary: ShipmentSummary) {
    const t = summary.series.map(p => p.t as number)
    const interval = s.device.interval * 1000
    let worst = 0
    t.forEach((x, k) => (worst = Math.max(worst, Math.abs(x - (t[0] + k * interval)))))
    expect(worst).toBeLessThan(interval)
    expect(t.length).toBeGreaterThanOrEqual(Math.floor((s.hours * 3600) / s.device.interval) - 2)
}
