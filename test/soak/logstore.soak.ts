import { describe, it, expect, beforeAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync } from "node:fs"
import { runLongRuns, type LongRunsResult } from "../helpers/longrun-store.js"

// Issue 11: the real LogStore on the runtime's real settings store in the VM, 400 days of each
// temperature profile (devs/soak/logstore-400.ts): 5-minute samples, hourly uploads and acks, a 3-day
// outage every 10 days (2 blocks held: evictions on every profile), a power cut every 3 days. Run as a program (no
// test-mode GC stress: ~5x faster); the settings store is read out of the flash file every 25 days.
const WALL = 3 * 3_600_000

describe("the log store on the runtime's settings store, 400 days of each profile", () => {
    let r: LongRunsResult

    beforeAll(async () => {
        r = await runLongRuns("soak/logstore-400.ts", mkdtempSync(path.join(os.tmpdir(), "coldtrace-soak-store-")), WALL)
        for (const p of r.profiles)
            console.log(
                Object.entries(p)
                    .map(([k, v]) => `${k}=${v}`)
                    .join(" "),
            )
        for (const c of r.checkpoints)
            console.log(
                `${c.profile} day ${c.day}: generation ${c.store.generation}, ${c.store.entries.length} entries, ${c.store.deleted} deleted keys, free ${c.store.freeNow} B, after compaction ${c.store.freeAfterCompaction} B`,
            )
    }, WALL + 60_000)

    it("0 failed appends in 400 days: every record read back or counted evicted, on every profile", () => {
        expect(r.done, r.run.lines.slice(-20).join("\n")).toBeDefined()
        expect(r.done!.passed).toBe("3")
        for (const p of r.profiles) {
            expect(+p.days).toBe(400)
            expect(+p.appended).toBeGreaterThanOrEqual(400 * 288)
            expect(+p.verified + +p.evicted).toBe(+p.appended)
            expect(+p.evictions).toBeGreaterThan(40 * 0.5) // the outages (40 of them) filled the store
            expect(p.ok).toBe("1")
        }
    })

    it("free space after compaction is flat after the first weeks, deleted keys stay bounded, compaction goes on", () => {
        for (const profile of ["stable", "fridge", "excursion"]) {
            const cs = r.checkpoints.filter(c => c.profile === profile)
            expect(cs.length).toBe(400 / 25)
            const later = cs.filter(c => c.day >= 50).map(c => c.store.freeAfterCompaction)
            // it moves with what is held at the checkpoint (the open block, a block or two more:
            // 248 B each), never down over the months: the last half is no lower than the first
            expect(Math.max(...later) - Math.min(...later)).toBeLessThanOrEqual(4 * 248)
            const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
            const half = Math.floor(later.length / 2)
            expect(mean(later.slice(half))).toBeGreaterThanOrEqual(mean(later.slice(0, half)) - 248)
            expect(Math.min(...later)).toBeGreaterThan(2048)
            for (const c of cs) expect(c.store.deleted).toBeLessThanOrEqual(64 + 4)
            for (let i = 1; i < cs.length; i++) expect(cs[i].store.generation).toBeGreaterThan(cs[i - 1].store.generation)
        }
    })
})
