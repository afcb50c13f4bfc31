import { describe, it, expect, beforeAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync, readFileSync } from "node:fs"
import Database from "better-sqlite3"
import { runScenario, type RunResult } from "../src/sim/run.js"
import { loadScenario } from "../src/sim/scenario.js"
import { ROOT } from "../src/sim/vm.js"
import { decodeExport } from "../src/sim/export.js"
import { decodeRecord, KIND, type LogRecord, type BatteryRecord } from "../src/format/index.js"
import { EnergyLedger } from "../src/sim/energy.js"
import { loadPowerModel } from "../src/hardware/power.js"

// The logger on its cell (issue 10 items 1, 4 and 6): the world's energy ledger draws what the
// duty-cycled firmware does (its sleep floor, its measured wakes, the receiver in standby between
// fixes) from a cell that starts 1712 mAh down, and the battery sense reads the
// cell's voltage. The firmware must go through every level (docs/platform.md, "The logger's battery"),
// record each, trade uploads for time, seal and send everything once at `final`, and stop at the
// cut-off with nothing lost: one verified chain, across a power cut.
describe("a logger on its last charge (battery-drain scenario)", () => {
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/battery-drain.json"))
    const start = Date.parse(scenario.start)
    let r: RunResult
    let records: LogRecord[]
    let summary: any

    beforeAll(async () => {
        const out = mkdtempSync(path.join(os.tmpdir(), "coldtrace-battery-"))
        r = await runScenario({ scenario, outDir: out })
        const db = new Database(r.dbPath, { readonly: true })
        const rows = db.prepare("SELECT seq, bytes FROM records ORDER BY seq").all() as { seq: number; bytes: Buffer }[]
        db.close()
        const bySeq = new Map(rows.map(x => [x.seq, x.bytes]))
        const dev = decodeExport(JSON.parse(readFileSync(path.join(out, "device-export.json"), "utf8"))).entries
        for (const e of dev) bySeq.set(e.seq, e.bytes)
        records = [...bySeq.entries()].sort((a, b) => a[0] - b[0]).map(([, b]) => decodeRecord(b))
        summary = JSON.parse(readFileSync(r.summaryPath, "utf8"))
    }, 300_000)

    const battery = () => records.filter((x): x is BatteryRecord => x.kind === KIND.battery)
    /** world hours of a console tag's lines */
    const hoursOf = (tag: string) => r.observed.console.tagged(tag).map(x => ({ f: x.line.fields, h: (x.utc - start) / 3_600_000 }))
    const firstAt = (level: number) => hoursOf("battery").find(x => +x.f.level === level)!.h

    it("records the cell at each boot and each new level, falling through every level in order", () => {
        const b = battery()
        const levels = b.map(x => x.level)
        expect(levels).toEqual([...levels].sort((a, c) => a - c))
        for (const level of [0, 1, 2, 3, 4]) expect(levels).toContain(level)
        for (let i = 1; i < b.length; i++) expect(b[i].mv).toBeLessThanOrEqual(b[i - 1].mv)
        // bounded rate: the first reading of each boot, the changes, and at most one every 6 h besides
        const boots = records.filter(x => x.kind === KIND.boot).length
        const changes = new Set(levels).size - 1
        expect(b.length).toBeGreaterThanOrEqual(boots + changes)
        expect(b.length).toBeLessThanOrEqual(boots + changes + Math.floor(scenario.hours / 6))
        expect(b.at(-1)!.mv).toBeLessThan(3400)
    })

    it("from a low cell the hourly uploads stop: 12 h apart while low, a day apart while critical", () => {
        const uploads = hoursOf("upload").map(u => u.h)
        expect(uploads.filter(h => h < firstAt(1)).length).toBeGreaterThan(0)
        // the first upload from a low cell is due 12 h after the last one, the next 12 h later
        const low = uploads.filter(h => h > firstAt(1) && h < firstAt(2))
        expect(low.length).toBeGreaterThan(0)
        const spaced = (hs: number[], from: number, gap: number) => {
            let last = from
            for (const h of hs) {
                expect(h - last).toBeGreaterThanOrEqual(gap - 0.01)
                last = h
            }
        }
        spaced(low, uploads.filter(h => h <= firstAt(1)).at(-1)!, 12)
        spaced(
            uploads.filter(h => h > firstAt(2) && h < firstAt(3)),
            uploads.filter(h => h <= firstAt(2)).at(-1)!,
            24,
        )
    })

    it("GNSS: fixes every 5 min while moving, then at most one in 3 h from a low cell, none from a critical one", () => {
        const fixes = hoursOf("fix").map(x => x.h)
        expect(fixes.filter(h => h < firstAt(1)).length).toBeGreaterThan(5)
        const low = fixes.filter(h => h > firstAt(1) + 0.1 && h < firstAt(2))
        for (let i = 1; i < low.length; i++) expect(low[i] - low[i - 1]).toBeGreaterThanOrEqual(3 - 0.01)
        expect(low.length).toBeLessThanOrEqual(Math.ceil((firstAt(2) - firstAt(1)) / 3))
        expect(fixes.filter(h => h > firstAt(2) + 0.1)).toEqual([])
    })

    it("entering final: the epoch is sealed and everything recorded goes out once, then the radio stays off", () => {
        const final = firstAt(3)
        const after = hoursOf("upload").filter(u => u.h >= final)
        expect(after.length).toBe(1)
        expect(hoursOf("upload-error").filter(u => u.h >= final)).toEqual([])
        const seal = hoursOf("seal").find(s => s.h >= final)!
        expect(+after[0].f.last).toBe(+seal.f.seq)
        // everything the server had not acknowledged (whole blocks from the one holding the next seq)
        const before = hoursOf("upload")
            .filter(u => u.h < final)
            .at(-1)!
        expect(+after[0].f.first).toBeLessThanOrEqual(+before.f.ack + 1)
        expect(after[0].f.ack).toBe(seal.f.seq)
    })

    it("at the cut-off: a last battery record, sealed, no sample after it, nothing lost, one verified chain", () => {
        const last = battery().at(-1)!
        expect(last.level).toBe(4)
        const i = records.findIndex(x => x.seq === last.seq)
        expect(records[i + 1].kind).toBe(KIND.seal)
        expect(records.slice(i + 1).filter(x => x.kind === KIND.sample)).toEqual([])
        expect(records.at(-1)!.seq).toBe(records[i + 1].seq)
        expect(r.summary.samples.lost).toBe(0)
        expect(r.summary.chain.status, r.summary.chain.detail).toBe("ok")
        expect(summary.battery.note).toContain("reached its battery cut-off")
        // sampled every 5 min until the cut-off, except during the power cut
        const cutoffH = firstAt(4)
        const expected = Math.floor((cutoffH * 60 - scenario.powerCuts![0].off * 60) / 5)
        expect(records.filter(x => x.kind === KIND.sample).length).toBeGreaterThanOrEqual(expected - 2)
    })

    it("summary.json carries the world's energy accounting: the sleep floor, the measured wakes, the life", () => {
        const e = summary.energy
        expect(e.board).toBe("v1")
        expect(e.mode).toBe("duty-cycled")
        expect(e.startMah).toBe(1712)
        const cut = scenario.powerCuts![0].off
        expect(e.poweredHours).toBeCloseTo(scenario.hours - cut, 1)
        // the floor the duty-cycled firmware sleeps on: the board's, with the receiver in software
        // standby (it tracks only for the seconds around each fix attempt)
        const ledger = new EnergyLedger(loadPowerModel(), { board: "v1", gnss: true, notecard: false })
        ledger.powerOn(0)
        ledger.sleep(0, 0)
        ledger.gnssStandby(0, Infinity)
        const base = ledger.usedMah(e.poweredHours * 3_600_000)
        expect(e.mAhUsed / base).toBeGreaterThan(0.99)
        expect(e.mAhUsed / base).toBeLessThan(1.05) // wakes, samples, uploads, fixes and the receiver's minutes awake on top
        expect(e.counts.gnssStandbys).toBe(r.observed.console.tagged("gnss-standby").length)
        // every wake after the first sleep is charged its measured awake time, and nothing else is
        const sleeps = r.observed.console.tagged("sleep")
        expect(e.counts.awakeIntervals).toBe(sleeps.length - 1)
        expect(e.byUse.awake).toBeGreaterThan(0)
        expect(e.byUse.awake).toBeLessThan(0.05 * e.mAhUsed)
        expect(e.byUse.wifi).toBeGreaterThan(0)
        expect(e.counts.samples).toBe(records.filter(x => x.kind === KIND.sample).length)
        expect(e.counts.uploadsHttps).toBe(hoursOf("upload").length)
        expect(e.standbyHours).toBeCloseTo(scenario.hours - firstAt(4), 1)
        expect(e.projectedLifeDays).toBeCloseTo(e.usableMah / e.mAhPerDay, 1)
        expect(e.cellVoltsEnd).toBeLessThan(3.4)
    })
})
