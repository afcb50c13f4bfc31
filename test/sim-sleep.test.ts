import { describe, it, expect, beforeAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync } from "node:fs"
import Database from "better-sqlite3"
import { runScenario, type RunResult } from "../src/sim/run.js"
import { loadScenario } from "../src/sim/scenario.js"
import { ROOT } from "../src/sim/vm.js"
import { decodeRecord, KIND, BOOT_REASON, type LogRecord, type BootRecord } from "../src/format/index.js"

// The duty cycle (issue 10 items 1 and 6): the logger sleeps between its wakes and a sleep loses its
// RAM. The same shipment runs twice: the fast path (the runtime restarts the program in the VM's
// process at every sleep) and true process restarts (the world kills the VM's process at every sleep
// and starts a new one at the wake, as the board's reset would). Both must give the same log: samples
// at the same instants, one boot record per power-on (a wake is not a boot), the alarm's raise and
// clear, every record uploaded and verified.
describe("sleeping between samples loses RAM and nothing else (sleep-short scenario, both ways)", () => {
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/sleep-short.json"))
    const runs: Record<"program" | "process", { r: RunResult; records: LogRecord[] }> = {} as any

    beforeAll(async () => {
        for (const sleep of ["program", "process"] as const) {
            const r = await runScenario({
                scenario: { ...scenario, sleep },
                outDir: mkdtempSync(path.join(os.tmpdir(), `coldtrace-sleep-${sleep}-`)),
            })
            const db = new Database(r.dbPath, { readonly: true })
            const rows = db.prepare("SELECT bytes FROM records ORDER BY seq").all() as { bytes: Buffer }[]
            db.close()
            runs[sleep] = { r, records: rows.map(x => decodeRecord(x.bytes)) }
        }
    }, 400_000)

    const tagged = (sleep: "program" | "process", tag: string) => runs[sleep].r.observed.console.tagged(tag)

    it("sleeps between samples and wakes without a boot record; a power cut during a sleep is a boot", () => {
        for (const sleep of ["program", "process"] as const) {
            const sleeps = tagged(sleep, "sleep").length
            const wakes = tagged(sleep, "wake").length
            // 3 h of 5-min samples: a wake for (nearly) every one
            expect(wakes).toBeGreaterThan(30)
            // every wake follows a sleep; every sleep ends in a wake but one the power cut or the end ended
            const life = runs[sleep].r.observed.vmLines.filter(l => /^ct:(sleep|wake|boot) /.test(l)).map(l => l.slice(3, l.indexOf(" ")))
            life.forEach((tag, i) => tag === "wake" && expect(life[i - 1]).toBe("sleep"))
            expect(wakes).toBeGreaterThanOrEqual(sleeps - 2)
            const boots = runs[sleep].records.filter(x => x.kind === KIND.boot) as BootRecord[]
            expect(boots.map(b => b.reason)).toEqual([BOOT_REASON.powerOn, BOOT_REASON.interrupted])
            expect(runs[sleep].records.filter(x => x.kind === KIND.config).length).toBe(2)
        }
    })

    it("really loses RAM: the program starts again at every wake (and, the other way, the VM's process)", () => {
        for (const sleep of ["program", "process"] as const) {
            const starts = runs[sleep].r.observed.vmLines.filter(l => l.startsWith("start: coldtrace-logger")).length
            expect(starts).toBeGreaterThan(tagged(sleep, "wake").length)
        }
        // VM processes: the first, the one after the power cut, and, with true restarts, one per wake
        // in the world (a logger asleep at the end wakes on the bench, in its process)
        const end = Date.parse(scenario.start) + scenario.hours * 3_600_000
        expect(runs.program.r.observed.boots).toBe(2)
        expect(runs.process.r.observed.boots).toBe(2 + tagged("process", "wake").filter(w => w.utc < end).length)
    })

    it("gives the same log both ways: samples at the same instants, the same readings, the same alarms", () => {
        const samples = (sleep: "program" | "process") =>
            runs[sleep].records.filter(x => x.kind === KIND.sample).map(x => ({ t: x.t, tc: (x as { tc: number }).tc }))
        const a = samples("program")
        const b = samples("process")
        expect(b.length).toBe(a.length)
        // the same readings, within what the probe moves in a second (its fastest ramp: ~8 counts/s)
        b.forEach((x, i) => expect(Math.abs(x.tc - a[i].tc)).toBeLessThanOrEqual(16))
        // the same second, or the next: a new VM process starts its program later (the bus bridge
        // learns where its answers go from the VM's first announce: docs/simulator.md, "Sleep")
        b.forEach((x, i) => expect(x.t - a[i].t).toBeGreaterThanOrEqual(0))
        b.forEach((x, i) => expect(x.t - a[i].t).toBeLessThanOrEqual(1))
        const alarms = (sleep: "program" | "process") =>
            runs[sleep].records.filter(x => x.kind === KIND.alarm).map(x => (x as { type: number }).type)
        expect(alarms("process")).toEqual(alarms("program"))
        expect(alarms("program").length).toBe(2)
        // on the absolute schedule: one sample every interval, none missed but those the cut took
        for (const sleep of ["program", "process"] as const) {
            const t = samples(sleep).map(x => x.t)
            // (a boot starts its schedule at its own instant: after the power-on, after the power cut)
            const offGrid = t.slice(1).filter((x, i) => (x - t[i]) % scenario.device.interval !== 0)
            // (and, in a new VM process, the first wake after a boot a second later: see above)
            expect(offGrid.length).toBeLessThanOrEqual(4)
            expect(t.length).toBeGreaterThanOrEqual(
                Math.floor((scenario.hours * 3600) / scenario.device.interval) - Math.ceil((0.2 * 3600) / scenario.device.interval) - 1,
            )
        }
    })

    it("loses nothing: every record on the server, one verified chain, each way", () => {
        for (const sleep of ["program", "process"] as const) {
            const r = runs[sleep].r
            expect(r.summary.samples.lost).toBe(0)
            expect(r.summary.chain.status, r.summary.chain.detail).toBe("ok")
        }
    })

    it("charges the cell what the wakes cost: the sleep floor and each wake's measured time", () => {
        for (const sleep of ["program", "process"] as const) {
            const e = runs[sleep].r.summary.energy!
            expect(e.mode).toBe("duty-cycled")
            expect(e.counts.awakeIntervals).toBe(tagged(sleep, "sleep").length - 1)
            expect(e.byUse.awake).toBeGreaterThan(0)
        }
    })
})
