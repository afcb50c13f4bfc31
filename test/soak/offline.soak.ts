import { describe, it, expect, beforeAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync } from "node:fs"
import type { ProgramRun } from "../../src/sim/devs-program.js"
import { runOffline } from "../../bench/offline.js"

// Issue 11 item 4: 60 days offline from the start with the simulator's 20 blocks (devs/soak/
// offline-60.ts): the real LogStore fills and evicts its oldest blocks into summaries; when the
// network comes back, what does it still hold in full detail, and how much more only as summaries?
describe("60 days offline: days held in full detail and only as evicted summaries", () => {
    let run: ProgramRun
    let profiles: Record<string, string>[]

    beforeAll(async () => {
        const r = await runOffline(mkdtempSync(path.join(os.tmpdir(), "coldtrace-soak-offline-")))
        run = r.run
        profiles = r.profiles
        for (const p of profiles)
            console.log(`${p.profile}: ${(+p.full).toFixed(1)} days in full detail, ${(+p.summaries).toFixed(1)} more as summaries`)
    }, 1_260_000)

    it("every record read back or counted evicted; the newest days in full detail, the days before them as summaries", () => {
        expect(run.done, run.lines.slice(-20).join("\n")).toBeDefined()
        expect(profiles.map(p => p.profile)).toEqual(["stable", "fridge", "excursion"])
        for (const p of profiles) {
            expect(p.ok).toBe("1")
            expect(+p.evictions).toBeGreaterThan(10)
            // full detail ends at the last sample; summaries cover what was evicted while the held blocks filled
            expect(+p.full).toBeGreaterThan(5)
            expect(+p.summaries).toBeGreaterThan(0.7 * +p.full)
            expect(+p.full + +p.summaries).toBeLessThan(60)
        }
        // the quieter the temperature, the more days a block holds
        expect(+profiles[0].full).toBeGreaterThan(+profiles[2].full)
    })
})
