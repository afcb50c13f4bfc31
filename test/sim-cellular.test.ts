import { describe, it, expect, beforeAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync, readFileSync } from "node:fs"
import Database from "better-sqlite3"
import { runScenario, type RunResult } from "../src/sim/run.js"
import { loadScenario } from "../src/sim/scenario.js"
import { ROOT } from "../src/sim/vm.js"
import { decodeExport } from "../src/sim/export.js"

// Both transports end to end: HTTPS while Wi-Fi reaches the server, the Notecard (register-level
// model over I2C, its syncs through a relay that delays, reorders and duplicates) on the road.
describe("Wi-Fi to cellular and back (wifi-cellular scenario)", () => {
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/wifi-cellular.json"))
    let r: RunResult
    let out: string

    beforeAll(async () => {
        out = mkdtempSync(path.join(os.tmpdir(), "coldtrace-cell-"))
        r = await runScenario({ scenario, outDir: out })
    }, 600_000)

    const start = Date.parse(scenario.start)
    /** upload attempts (`ct:upload` and `ct:upload-error`) with the world hour they were printed at */
    const attempts = () =>
        [...r.observed.console.tagged("upload"), ...r.observed.console.tagged("upload-error")].map(x => ({
            f: x.line.fields,
            at: (x.utc - start) / 3_600_000,
        }))

    it("uploads over Wi-Fi at the depot, over cellular on the road, and over Wi-Fi again at the end", () => {
        const u = attempts().filter(x => x.f.status === "200")
        expect(u.filter(x => x.f.via === "wifi" && x.at < 3.5).length).toBeGreaterThan(0)
        expect(u.filter(x => x.f.via === "cellular" && x.at > 3.5 && x.at < 20.5).length).toBeGreaterThan(3)
        expect(u.filter(x => x.f.via === "wifi" && x.at > 20.5).length).toBeGreaterThan(0)
        const hub = JSON.parse(readFileSync(path.join(out, "notehub.json"), "utf8"))
        expect(hub.relay.duplicates).toBeGreaterThan(0) // the relay really duplicated notes
        expect(hub.relay.delivered).toBeGreaterThan(hub.relay.pushed)
    })

    it("transmits nothing inside the radio-off window (flight), and logs on", () => {
        const flight = scenario.radioOff![0]
        const inFlight = attempts().filter(x => x.at > flight.from + 0.01 && x.at < flight.to - 0.01)
        expect(inFlight).toEqual([])
        const during = r.summary.series.filter(
            p =>
                (p.t as number) >= Date.parse(scenario.start) + flight.from * 3.6e6 &&
                (p.t as number) < Date.parse(scenario.start) + flight.to * 3.6e6,
        )
        expect(during.length).toBeGreaterThanOrEqual(11)
    })

    it("keeps an excursion raised in flight for the first instant the radio may send again", () => {
        const flight = scenario.radioOff![0]
        const raised = r.observed.console
            .tagged("alarm")
            .map(x => (x.utc - start) / 3_600_000)
            .filter(h => h > flight.from && h < flight.to)
        expect(raised.length).toBeGreaterThan(0)
        // the logger looks again a minute at a time: the first attempt after the window is the alarm's
        const after = attempts()
            .filter(x => x.at >= flight.to)
            .sort((a, b) => a.at - b.at)[0]
        expect(after.at).toBeLessThan(flight.to + 2 / 60)
    })

    it("ends with the database equal to the device's log, each record once, verified", () => {
        expect(r.summary.chain.status, r.summary.chain.detail).toBe("ok")
        const d = new Database(r.dbPath, { readonly: true })
        const db = d.prepare("SELECT seq, bytes FROM records ORDER BY seq").all() as { seq: number; bytes: Buffer }[]
        d.close()
        db.forEach((row, i) => expect(row.seq).toBe(i))
        const dev = decodeExport(JSON.parse(readFileSync(path.join(out, "device-export.json"), "utf8"))).entries
        const bySeq = new Map(db.map(x => [x.seq, x.bytes]))
        for (const e of dev) if (bySeq.has(e.seq)) expect(bySeq.get(e.seq)!.equals(e.bytes)).toBe(true)
        const last = db.at(-1)!.seq
        expect(dev.filter(e => e.seq > last).every((e, i) => e.seq === last + 1 + i)).toBe(true)
        expect(r.summary.samples.lost).toBe(0)
    })
})
