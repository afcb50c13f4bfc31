import { describe, it, expect, beforeAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync, readFileSync } from "node:fs"
import Database from "better-sqlite3"
import { decodeExport } from "../src/sim/export.js"
import { runScenario, type RunResult } from "../src/sim/run.js"
import { loadScenario } from "../src/sim/scenario.js"
import { ROOT } from "../src/sim/vm.js"

// A full store (docs/format.md 5.3, 5.5): 1-min samples of a noisy probe with the network gone from
// hour 2 to the end of day 3, so the logger's 20 blocks fill and its oldest unsent blocks are
// evicted, each summarized in an `evicted` record and sealed before its records go. The summaries
// must say exactly what the removed samples said; the verifier must accept the hole they explain;
// the rest is one verified chain.
describe("a full store evicts its oldest blocks into sealed summaries (evict-offline scenario)", () => {
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/evict-offline.json"))
    let r: RunResult

    beforeAll(async () => {
        r = await runScenario({ scenario, outDir: mkdtempSync(path.join(os.tmpdir(), "coldtrace-evict-")) })
    }, 300_000)

    it("evicts, one summary per evicted block, each sealed", () => {
        const said = r.observed.console.tagged("evicted")
        expect(said.length).toBeGreaterThan(5)
        expect(r.summary.evictions.length).toBe(said.length)
        for (const e of r.summary.evictions) expect(e.sealed).toBe(true)
    })

    it("each summary says what its samples said: count, lowest and highest reading", () => {
        const lines = r.observed.sampleLines
        for (const e of r.summary.evictions) {
            const tcs = [...lines.entries()].filter(([seq]) => seq >= e.first && seq <= e.last).map(([, l]) => l.tc)
            expect(e.samples).toBe(tcs.length)
            expect(e.minC).toBe(Math.min(...tcs) / 128)
            expect(e.maxC).toBe(Math.max(...tcs) / 128)
        }
    })

    it("every sample that exists nowhere any more lies inside an evicted summary; the chain verifies across the hole", () => {
        const db = new Database(r.dbPath, { readonly: true })
        const held = new Set((db.prepare("SELECT seq FROM records").all() as { seq: number }[]).map(x => x.seq))
        db.close()
        const exported = JSON.parse(readFileSync(path.join(path.dirname(r.summaryPath), "device-export.json"), "utf8"))
        for (const e of decodeExport(exported).entries) held.add(e.seq)
        const gone = [...r.observed.sampleLines.keys()].filter(seq => !held.has(seq))
        expect(gone.length).toBe(r.summary.samples.lost)
        expect(gone.length).toBeGreaterThan(1000)
        for (const seq of gone) expect(r.summary.evictions.some(e => seq >= e.first && seq <= e.last)).toBe(true)
        expect(r.summary.chain.status, r.summary.chain.detail).toBe("ok")
        // the first evicted block follows what the server holds: no hole between them (its first records
        // may be on the server too, acknowledged after the block was closed)
        const first = Math.min(...r.summary.evictions.map(e => e.first))
        expect(first).toBeLessThanOrEqual(Math.max(...held) + 1)
        expect(r.summary.chain.detail).toContain(`evicted seq ${first}..`)
    })
})
