import { describe, it, expect, beforeAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync } from "node:fs"
import Database from "better-sqlite3"
import { runScenario, type RunResult } from "../src/sim/run.js"
import { loadScenario } from "../src/sim/scenario.js"
import { ROOT } from "../src/sim/vm.js"
import { decodeRecord, KIND, BOOT_REASON, type LogRecord, type BootRecord } from "../src/format/index.js"

// The watchdog (issue 10 item 3): the I2C bus hangs at hour 3 (a chip holding SDA low), so the
// sample that reads the real-time clock then never returns. The logger's watchdog must reset it
// within two sample intervals; the next boot says why, the chain goes on unbroken, nothing stored is
// lost, and sampling resumes on the bus the reset freed. At hour 5 an upload hangs (a socket stuck
// below every deadline): the upload fiber's STEP_MAX (20 min) runs out and the watchdog resets again.
describe("watchdog: a hung I2C bus and a hung upload reset the logger (watchdog-hang scenario)", () => {
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/watchdog-hang.json"))
    const intervalMs = scenario.device.interval * 1000
    let r: RunResult
    let records: LogRecord[]
    let seqs: number[]

    beforeAll(async () => {
        r = await runScenario({ scenario, outDir: mkdtempSync(path.join(os.tmpdir(), "coldtrace-watchdog-")) })
        const db = new Database(r.dbPath, { readonly: true })
        const rows = db.prepare("SELECT seq, bytes FROM records ORDER BY seq").all() as { seq: number; bytes: Buffer }[]
        db.close()
        seqs = rows.map(x => x.seq)
        records = rows.map(x => decodeRecord(x.bytes))
    }, 240_000)

    it("fires for the sampling fiber within two sample intervals of the hung sample", () => {
        const fired = r.observed.console.tagged("watchdog")
        expect(fired.length).toBe(2)
        expect(fired[0].line.fields.fiber).toBe("0")
        const hangFrom = Date.parse(scenario.start) + scenario.busHangs![0].from * 3_600_000
        const before = r.observed.console.tagged("sample").filter(x => x.utc < hangFrom)
        const lastSample = before[before.length - 1].utc
        // the hung sample was due one interval after the last one taken; the reset is at most two after that
        expect(fired[0].utc - (lastSample + intervalMs)).toBeLessThanOrEqual(2 * intervalMs)
        expect(fired[0].utc).toBeGreaterThan(hangFrom)
    })

    it("fires for the upload fiber once a hung upload is 20 min past its start, and the next upload goes through", () => {
        const fired = r.observed.console.tagged("watchdog")[1]
        expect(fired.line.fields.fiber).toBe("1")
        const hang = scenario.uplinkHangs![0]
        const start = Date.parse(scenario.start)
        const h = (utc: number) => (utc - start) / 3_600_000
        // the hung upload began inside the window; the watchdog looks at sample instants
        expect(h(fired.utc)).toBeGreaterThan(hang.from + 20 / 60)
        expect(h(fired.utc)).toBeLessThan(hang.to + 20 / 60 + 2 * (intervalMs / 3_600_000))
        const after = r.observed.console.tagged("upload").filter(u => u.utc > fired.utc)
        expect(after.length).toBeGreaterThan(0)
        expect(after[0].line.fields.status).toBe("200")
    })

    it("records each reset as a boot of reason watchdog, and nothing else as one", () => {
        const boots = records.filter(x => x.kind === KIND.boot) as BootRecord[]
        expect(boots.map(b => b.reason)).toEqual([BOOT_REASON.powerOn, BOOT_REASON.watchdog, BOOT_REASON.watchdog])
        expect(r.observed.boots).toBe(3)
    })

    it("samples on after the reset, with no gap beyond the reset itself", () => {
        const samples = r.observed.console.tagged("sample")
        const boot2 = r.observed.console.tagged("watchdog")[0].utc
        const after = samples.filter(x => x.utc > boot2)
        expect(after.length).toBeGreaterThan(50) // about 4.8 h of 5-min samples
        let widest = 0
        for (let i = 1; i < samples.length; i++) widest = Math.max(widest, samples[i].utc - samples[i - 1].utc)
        // the last good sample, the hung one an interval later, the reset two after that, then a boot
        expect(widest).toBeLessThanOrEqual(3 * intervalMs + 5_000)
    })

    it("loses nothing stored: one chain, every seq on the server, verified", () => {
        expect(seqs).toEqual(seqs.map((_, i) => i))
        expect(r.summary.samples.lost).toBe(0)
        expect(r.summary.chain.status, r.summary.chain.detail).toBe("ok")
    })
})
