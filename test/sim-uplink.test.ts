import { describe, it, expect, beforeAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync, readFileSync } from "node:fs"
import Database from "better-sqlite3"
import { runScenario, type RunResult } from "../src/sim/run.js"
import { loadScenario } from "../src/sim/scenario.js"
import { ROOT } from "../src/sim/vm.js"
import { decodeExport } from "../src/sim/export.js"

// Exactly-once under a hostile network: the ingest server down for two world-days, then HTTP 500s,
// hangs, requests cut mid-body and acks lost after the server stored the batch (a TLS-terminating
// fault front between the real firmware and the real server).
describe("uplink faults and a 2-day outage (uplink-faults scenario)", () => {
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/uplink-faults.json"))
    let r: RunResult
    let out: string
    let db: { seq: number; bytes: Buffer }[]

    beforeAll(async () => {
        out = mkdtempSync(path.join(os.tmpdir(), "coldtrace-uplink-"))
        r = await runScenario({ scenario, outDir: out })
        const d = new Database(r.dbPath, { readonly: true })
        db = d.prepare("SELECT seq, bytes FROM records ORDER BY seq").all() as typeof db
        d.close()
    }, 600_000)

    it("met every kind of fault", () => {
        const counts = JSON.parse(readFileSync(path.join(out, "http-faults.json"), "utf8")).counts
        for (const f of ["error500", "hang", "dropMidBody", "dropAck", "pass"]) expect(counts[f], f).toBeGreaterThan(0)
        expect(r.summary.uploads.failed).toBeGreaterThan(10)
    })

    it("delivers everything after the outage, each record exactly once, in one verified chain", () => {
        expect(r.summary.chain.status, r.summary.chain.detail).toBe("ok")
        db.forEach((row, i) => expect(row.seq).toBe(i)) // no hole, no duplicate
        expect(r.summary.samples.lost).toBe(0)
        expect(r.summary.samples.taken).toBeGreaterThanOrEqual(84 * 12 - 2)
    })

    it("ends with the database equal to the device's log", () => {
        const dev = decodeExport(JSON.parse(readFileSync(path.join(out, "device-export.json"), "utf8"))).entries
        const bySeq = new Map(db.map(x => [x.seq, x.bytes]))
        // where both hold a record, the bytes are the same
        for (const e of dev) if (bySeq.has(e.seq)) expect(bySeq.get(e.seq)!.equals(e.bytes)).toBe(true)
        // what the server lacks is only the device's unsent tail (less than one upload period)
        const last = db.at(-1)!.seq
        const tail = dev.filter(e => e.seq > last)
        expect(tail.every((e, i) => e.seq === last + 1 + i)).toBe(true)
        expect(tail.length).toBeLessThanOrEqual(Math.ceil(scenario.device.upload / scenario.device.interval) + 4)
        expect(r.summary.samples.acknowledged + r.summary.samples.onDevice).toBe(r.summary.samples.taken)
    })
})
