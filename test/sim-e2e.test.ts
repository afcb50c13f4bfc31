import { describe, it, expect, beforeAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync, readFileSync, existsSync } from "node:fs"
import Database from "better-sqlite3"
import { runScenario, type RunResult } from "../src/sim/run.js"
import { loadScenario } from "../src/sim/scenario.js"
import { decodeRecord, KIND } from "../src/format/index.js"
import { ROOT } from "../src/sim/vm.js"

// One real simulated shipment: the firmware in the DeviceScript VM, the ingest server on loopback,
// SQLite on disk, an outage cut at the TCP level and a SIGKILL power cut.
describe("simulated shipment (short smoke scenario)", () => {
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/short-smoke.json"))
    let r: RunResult
    let rows: { seq: number; kind: number; bytes: Buffer }[]

    beforeAll(async () => {
        const out = mkdtempSync(path.join(os.tmpdir(), "coldtrace-e2e-"))
        r = await runScenario({ scenario, outDir: out })
        const db = new Database(r.dbPath, { readonly: true })
        rows = db.prepare("SELECT seq, kind, bytes FROM records ORDER BY seq").all() as typeof rows
        db.close()
    }, 240_000)

    it("accounts for every sample: taken = acknowledged + still on the device, none lost", () => {
        const n = r.summary.samples
        expect(n.lost).toBe(0)
        expect(n.taken).toBe(n.acknowledged + n.onDevice)
        // 12 world-hours at 5 minutes, less the half hour without power
        expect(n.taken).toBeGreaterThan(125)
        expect(n.taken).toBeLessThanOrEqual(12 * 12)
        // everything the device printed as stored exists somewhere
        expect(r.observed.sampleLines.size).toBe(n.taken)
    })

    it("stores each record exactly once, in one unbroken chain", () => {
        expect(r.summary.chain.status).toBe("ok")
        rows.forEach((row, i) => expect(row.seq).toBe(i))
        expect(rows.length).toBeGreaterThan(100)
    })

    it("resumes sequence and chain after the SIGKILL power cut", () => {
        expect(r.observed.boots).toBe(2)
        const boots = rows.map(x => decodeRecord(x.bytes)).filter(x => x.kind === KIND.boot) as { seq: number; boot: number }[]
        expect(boots.map(b => b.boot)).toEqual([1, 2])
        // the second boot record directly follows the last record of the first boot
        const before = rows.filter(x => x.seq < boots[1].seq)
        expect(before.length).toBe(boots[1].seq)
        expect(r.summary.powerCuts.length).toBe(1)
    })

    it("keeps logging through the network outage and delivers the backlog afterwards", () => {
        expect(r.summary.uploads.failed).toBeGreaterThan(0)
        expect(r.summary.samples.stored).toBe(r.summary.samples.acknowledged)
        expect(r.summary.samples.onDevice).toBeLessThan(12) // at most the last upload period
    })

    it("reports the warm excursion from raw readings, with alarm records in the chain", () => {
        expect(r.summary.excursions.length).toBe(1)
        expect(r.summary.maxC!).toBeCloseTo(-58, 1)
        expect(r.summary.minC!).toBeCloseTo(-78.5, 1)
        const alarms = rows.map(x => decodeRecord(x.bytes)).filter(x => x.kind === KIND.alarm) as { type: number }[]
        expect(alarms.map(a => a.type)).toEqual([1, 3])
    })

    it("writes summary.json and a self-contained report.html", () => {
        const summary = JSON.parse(readFileSync(r.summaryPath, "utf8"))
        expect(summary.samples.taken).toBe(r.summary.samples.taken)
        const html = readFileSync(r.reportPath, "utf8")
        expect(html).toContain("<svg")
        expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/)
        expect(existsSync(path.join(path.dirname(r.reportPath), "device-secret.json"))).toBe(true)
        // no key ever reaches a log, the report or the device export
        const secret = JSON.parse(readFileSync(path.join(path.dirname(r.reportPath), "device-secret.json"), "utf8"))
        const keys = [secret.k0, secret.ackkey, secret.lockey]
        keys.forEach(k => expect(k).toMatch(/^[0-9a-f]{64}$/))
        for (const f of ["device-console.log", "ingest.log", "summary.json", "report.html", "device-export.json"]) {
            const text = readFileSync(path.join(path.dirname(r.reportPath), f), "utf8")
            for (const k of keys) expect(text).not.toContain(k)
        }
    })
})
