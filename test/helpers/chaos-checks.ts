import { expect } from "vitest"
import type { Scenario } from "../../src/sim/scenario.js"
import { allPowerCuts } from "../../src/sim/scenario.js"
import type { RunResult } from "../../src/sim/run.js"

/**
 * After SIGKILLs at random moments: the verifier accepts the server's database and the device's
 * flash, nothing the device reported as stored is missing, and the samples that were never taken
 * are at most one in-flight sample per kill.
 */
export function expectCrashConsistent(s: Scenario, r: RunResult) {
    const kills = allPowerCuts(s).length
    expect(r.observed.boots).toBe(kills + 1)
    expect(r.summary.chain.status, r.summary.chain.detail).toBe("ok")
    expect(r.summary.samples.lost).toBe(0)
    expect(r.summary.samples.taken).toBe(r.summary.samples.acknowledged + r.summary.samples.onDevice)
    const slots = Math.floor((s.hours * 3600) / s.device.interval)
    const missing = slots - r.summary.samples.taken
    // one boot record per kill, and at most the sample in flight lost at each
    expect(missing).toBeLessThanOrEqual(kills + 1)
    return { kills, slots, missing }
}
