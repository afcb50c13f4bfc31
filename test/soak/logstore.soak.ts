import { describe, it, expect } from "vitest"
import { runSuite, parseSummary } from "../helpers/devs-suite.js"

// Issue 11: the real LogStore on the real settings store in the VM, 30 days of each temperature
// profile (devs/soak/logstore-long.test.ts): hourly acks, outages that force evictions, power cuts.
// The figures of each profile are printed (`ct:longrun ...`). About 6 minutes of wall time per profile.
const WALL = 2_700_000

describe("LogStore, 30 days of each profile (devs/soak/logstore-long.test.ts)", () => {
    it(
        "reads every record back or counts it evicted, on every profile",
        async () => {
            const r = await runSuite("soak/logstore-long.test.ts", WALL * 4, WALL)
            for (const line of r.out.split("\n")) if (line.includes("ct:longrun")) console.log(line.trim())
            const s = parseSummary(r.out)
            expect(s, r.out).toBeDefined()
            expect(s!.error, r.out).toBe(0)
            expect(s!.pass, r.out).toBe(3)
        },
        WALL,
    )
})
