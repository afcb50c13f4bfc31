import { describe, it, expect } from "vitest"
import { WorldTime } from "../src/sim/world.js"

// The uplink-faults stall, replayed exactly (issue 9): world time stuck at "day 4 10:55" while the
// device waited for 10:55:00.169. The harness log of that run, in world ms since the start:
//   device asks for 298500000 (the next sample), the world reaches it and holds;
//   device asks for 298500169 (the conversion wait), the world runs on to 298500057.75;
//   a second fiber's request for 298500000, computed before the sample woke and delivered late,
//   arrives last.
// The world went back to 298500000 and held there; the device's fibers waited for 298500169 forever.
// The world must never go back. (That the stale request is never sent is the firmware's part:
// devs/test/worldclock.test.ts.)
describe("world time in lockstep with the device's wake-up requests", () => {
    function replay() {
        let wall = 0
        const w = new WorldTime(4000, () => wall)
        const seen: number[] = []
        const advance = (ms: number) => {
            wall += ms
            seen.push(w.now())
        }
        w.resume("start")
        w.setLimit(298_500_000)
        advance(298_500_000 / 4000 + 5) // reaches the sample instant and holds there
        w.setLimit(298_500_169)
        advance(57.7519999 / 4000)
        const before = w.now()
        w.setLimit(298_500_000) // the late request of an instant the world has passed
        for (let i = 0; i < 10; i++) advance(1)
        return { seen, before, end: w.now() }
    }

    it("never goes back in time", () => {
        const { seen } = replay()
        for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1])
    })

    it("holds where it is when asked for an instant it has passed, and goes on at the next request", () => {
        let wall = 0
        const w = new WorldTime(4000, () => wall)
        w.resume("start")
        w.setLimit(1_000_000)
        wall += 1_000_000 / 4000 + 5
        expect(w.now()).toBe(1_000_000)
        w.setLimit(1_000_169)
        wall += 0.01
        const at = w.now()
        w.setLimit(999_000) // late: the world is already past it
        wall += 100
        expect(w.now()).toBe(at)
        w.setLimit(1_300_000)
        wall += 1000
        expect(w.now()).toBe(1_300_000)
    })
})
