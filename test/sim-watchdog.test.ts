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
// wake that reads the real-time clock then never gets to its sample. The logger's watchdog must reset it
// within two sample intervals; the next boot says why, the chain goes on unbroken, nothing stored is
// lost, and sampling resumes on the bus the reset freed. At hour 5 an upload hangs (a socket stuck
// below every deadline): the upload fiber's STEP_MAX (20 min) runs out and the watchdog resets again.
/** devs/app/watchdog.ts START_MAX: how long the start of a run may take */
const START_MAX_MS = 2 * 60_000

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

    it("fires at the first wake on the hung bus (its start never ends), within two sample intervals of the hung sample, and again while the bus stays hung", () => {
        // the duty-cycled logger reads the clock chip first thing at every wake: the start hangs (the
        // watchdog's slot 3, START_MAX 2 min); the start after each reset hangs again until the bus is free
        const onBus = r.observed.console.tagged("watchdog").filter(f => f.line.fields.fiber === "3")
        expect(onBus.length).toBeGreaterThan(0)
        const start = Date.parse(scenario.start)
        const hangFrom = start + scenario.busHangs![0].from * 3_600_000
        const hangTo = start + scenario.busHangs![0].to * 3_600_000
        const before = r.observed.console.tagged("sample").filter(x => x.utc < hangFrom)
        const lastSample = before[before.length - 1].utc
        // the hung sample was due one interval after the last one taken; the reset is at most two after that
        expect(onBus[0].utc - (lastSample + intervalMs)).toBeLessThanOrEqual(2 * intervalMs)
        for (const f of onBus) {
            expect(f.utc).toBeGreaterThan(hangFrom)
            expect(f.utc).toBeLessThanOrEqual(hangTo + START_MAX_MS)
        }
    })

    it("fires for the upload fiber once a hung upload is 20 min past its start, and the next upload goes through", () => {
        const uploads = r.observed.console.tagged("watchdog").filter(f => f.line.fields.fiber !== "3")
        expect(uploads.length).toBe(1)
        const fired = uploads[0]
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
        // the VM started once, then again after each reset (a reset in a wake's start wrote no boot
        // record yet: the next start that gets through does, with reason watchdog)
        expect(r.observed.boots).toBe(1 + r.observed.console.tagged("watchdog").length)
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
