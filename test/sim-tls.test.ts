import { describe, it, expect, beforeAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync, readFileSync } from "node:fs"
import Database from "better-sqlite3"
import { runScenario, type RunResult } from "../src/sim/run.js"
import { loadScenario } from "../src/sim/scenario.js"
import { ROOT } from "../src/sim/vm.js"
import { exportInput, readExportFile } from "../src/verify/inputs.js"

// A server whose certificate does not verify (issue 12 item 8): the logger's TLS refuses it (a man in
// the middle, or a production server without a certificate the board's root bundle accepts, see
// docs/security.md). Nothing reaches the server, every upload fails with the verification error, and
// every record stays on the logger, chained and verifiable.
describe("a server the logger cannot authenticate (untrusted-server scenario)", () => {
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/untrusted-server.json"))
    let r: RunResult
    let out: string

    beforeAll(async () => {
        out = mkdtempSync(path.join(os.tmpdir(), "coldtrace-tls-"))
        r = await runScenario({ scenario, outDir: out })
    }, 240_000)

    it("refuses the handshake: no request reaches the server, every attempt fails on the certificate", () => {
        const faults = JSON.parse(readFileSync(path.join(out, "http-faults.json"), "utf8"))
        expect(faults.counts.pass).toBe(0)
        const errors = r.observed.console.tagged("upload-error")
        expect(errors.length).toBeGreaterThan(3)
        expect(faults.tlsErrors).toBe(errors.length)
        const lines = r.observed.vmLines.filter(l => l.startsWith("ct:upload-error "))
        expect(lines).toHaveLength(errors.length)
        for (const l of lines) expect(l).toMatch(/unable to verify the first certifi/)
        expect(r.observed.console.tagged("upload")).toHaveLength(0)
        const db = new Database(r.dbPath, { readonly: true })
        try {
            expect((db.prepare("SELECT count(*) AS n FROM records").get() as { n: number }).n).toBe(0)
            expect((db.prepare("SELECT count(*) AS n FROM batches").get() as { n: number }).n).toBe(0)
        } finally {
            db.close()
        }
    })

    it("keeps every record on the logger, from seq 0, chained and verified", () => {
        const held = exportInput(readExportFile(path.join(out, "device-export.json"))).records ?? []
        expect(held.map(x => x.seq)).toEqual([...Array(held.length).keys()])
        for (const seq of r.observed.sampleLines.keys()) expect(held.some(x => x.seq === seq)).toBe(true)
        expect(r.summary.chain.status).toBe("ok")
    })
})
