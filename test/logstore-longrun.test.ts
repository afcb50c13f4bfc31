import { describe, it, expect, beforeAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync } from "node:fs"
import { runLongRuns, type LongRunsResult } from "./helpers/longrun-store.js"

// Issue 11, the short version of the 400-day soak (test/soak/logstore.soak.ts): the real LogStore on
// the runtime's real settings store in the VM, 8 days of each temperature profile (devs/soak/
// logstore-8.ts: hourly uploads and acks, a 3-day outage every 4 days that forces evictions from the
// 2 blocks held, a power cut every 3 days), run as a program (no test-mode GC stress); the store is read out of the flash file every
// 2 days.
describe("the log store on the runtime's settings store, 8 days of each profile", () => {
    let r: LongRunsResult

    beforeAll(async () => {
        r = await runLongRuns("soak/logstore-8.ts", mkdtempSync(path.join(os.tmpdir(), "coldtrace-longrun-")), 600_000)
    }, 620_000)

    it("appends every sample, and reads every record back or counts it evicted, on every profile", () => {
        expect(r.done, r.run.lines.slice(-20).join("\n")).toBeDefined()
        expect(r.done!.passed).toBe("3")
        expect(r.profiles.map(p => p.profile)).toEqual(["stable", "fridge", "excursion"])
        for (const p of r.profiles)
            console.log(
                Object.entries(p)
                    .map(([k, v]) => `${k}=${v}`)
                    .join(" "),
            )
        // the outages fill the 2 blocks: evictions, each summarized, on every profile
        for (const p of r.profiles) expect(+p.evictions).toBeGreaterThan(0)
        for (const p of r.profiles) {
            expect(+p.appended).toBeGreaterThanOrEqual(8 * 288)
            expect(+p.verified + +p.evicted).toBe(+p.appended)
            expect(p.ok).toBe("1")
        }
    })

    it("the settings store is read at every checkpoint: the ring's deleted keys are bounded, space after compaction is there", () => {
        expect(r.checkpoints.length).toBe(3 * 4)
        for (const c of r.checkpoints) {
            // the ring of 64 block keys and a few others: a deleted key stays in the store for good
            expect(c.store.deleted).toBeLessThanOrEqual(64 + 4)
            expect(c.store.freeAfterCompaction).toBeGreaterThan(1024)
        }
        for (const c of r.checkpoints)
            console.log(
                `${c.profile} day ${c.day}: gen ${c.store.generation} entries ${c.store.entries.length} deleted ${c.store.deleted} free ${c.store.freeNow} after compaction ${c.store.freeAfterCompaction}`,
            )
        // the store compacted along the way (each compaction is a new generation)
        expect(r.checkpoints.at(-1)!.store.generation).toBeGreaterThan(r.checkpoints[0].store.generation)
    })
})
