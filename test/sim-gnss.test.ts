import { describe, it, expect, beforeAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync, readFileSync } from "node:fs"
import Database from "better-sqlite3"
import { runScenario, type RunResult } from "../src/sim/run.js"
import { loadScenario, interpolate } from "../src/sim/scenario.js"
import { ROOT } from "../src/sim/vm.js"
import { decodeRecord, decryptLoc, KIND, type LogRecord, type FixRecord, type StopRecord } from "../src/format/index.js"
import { placeRecords } from "../src/verify/timeline.js"
import { mergeLogs } from "../src/verify/chain.js"
import { decodeExport } from "../src/sim/export.js"

// GNSS end to end: the real u-blox driver polls the register-level receiver model fed by the route;
// UTC reaches the host only through time records; positions only through encrypted fix records.
describe("GNSS route: time base, positions and stops (gnss-route scenario)", () => {
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/gnss-route.json"))
    const start = Date.parse(scenario.start)
    let r: RunResult
    let records: LogRecord[]
    let lockey: Buffer
    let devid: string
    /** the simulator's ground truth: world UTC at each boot (printed by the sim entry only) */
    let bootUtc: number[]

    beforeAll(async () => {
        const out = mkdtempSync(path.join(os.tmpdir(), "coldtrace-gnss-"))
        r = await runScenario({ scenario, outDir: out })
        const secret = JSON.parse(readFileSync(path.join(out, "device-secret.json"), "utf8"))
        lockey = Buffer.from(secret.lockey, "hex")
        devid = secret.devid
        const db = new Database(r.dbPath, { readonly: true })
        const server = (db.prepare("SELECT seq, bytes FROM records ORDER BY seq").all() as { seq: number; bytes: Buffer }[]).map(x => ({
            ...x,
        }))
        db.close()
        const device = decodeExport(JSON.parse(readFileSync(path.join(out, "device-export.json"), "utf8"))).entries
        records = mergeLogs(server, device).merged.map(e => decodeRecord(e.bytes))
        bootUtc = r.observed.console.tagged("world-boot").map(x => Number(x.line.fields.utc))
    }, 300_000)

    /**
     * true UTC of each sample: its boot's world instant (printed by the sim entry only) plus the VM
     * milliseconds since that boot at which the firmware stamped it (`up=` of its console line)
     */
    function truth(): Map<number, number> {
        const m = new Map<number, number>()
        const lines = r.observed.console.tagged("sample")
        const boots = r.observed.console.tagged("world-boot").map(x => x.utc)
        for (const { line, utc } of lines) {
            // the boot this line belongs to: the last world-boot printed before it
            let b = 0
            while (b + 1 < boots.length && boots[b + 1] <= utc) b++
            m.set(Number(line.fields.seq), bootUtc[b] + Number(line.fields.up))
        }
        return m
    }

    it("has two boots, both starting without a fix", () => {
        // the program starts at every wake too (a deep sleep loses RAM), in the same VM process: one
        // origin per power-on
        expect(new Set(bootUtc).size).toBe(2)
        expect(records.filter(x => x.kind === KIND.boot).length).toBe(2)
        // the first time record of each boot comes after samples of that boot
        let boot = -1
        const firstSampleBeforeTime: boolean[] = []
        let seenTime = false
        for (const rec of records) {
            if (rec.kind === KIND.boot) {
                boot++
                seenTime = false
            }
            if (rec.kind === KIND.time) seenTime = true
            if (rec.kind === KIND.sample && firstSampleBeforeTime[boot] === undefined) firstSampleBeforeTime[boot] = !seenTime
        }
        expect(firstSampleBeforeTime).toEqual([true, true])
    })

    it("places every record in UTC within 1 s of world time, including those before the first fix of a boot", () => {
        const t = truth()
        const placed = placeRecords(records)
        expect(placed.every(p => p.utc !== null)).toBe(true)
        // samples: within 1 s (the clock counts whole seconds; set at a UTC second boundary, samples
        // after the set are placed up to 1 s early, those before it by the old count's phase)
        let worst = 0
        let n = 0
        for (const p of placed) {
            const truthUtc = t.get(p.seq)
            if (truthUtc === undefined) continue
            n++
            worst = Math.max(worst, Math.abs(truthUtc - (p.utc as number)))
        }
        expect(n).toBeGreaterThan(500)
        expect(worst).toBeLessThan(1000)
        // anchors come from GNSS
        const times = records.filter(x => x.kind === KIND.time) as { source: number }[]
        // one at the first fix of each boot, then every 12 h (TIME_ANCHOR_EVERY): 1.5 h, 13.5 h; 26 h, 38 h
        expect(times.length).toBeGreaterThanOrEqual(4)
        expect(times.every(x => x.source === 1)).toBe(true)
    })

    it("records positions on the route at their time (to the second), encrypted (the key is needed to read them)", () => {
        const placed = new Map(placeRecords(records).map(p => [p.seq, p.utc as number]))
        const fixes = records.filter(x => x.kind === KIND.fix) as FixRecord[]
        expect(fixes.length).toBeGreaterThan(100)
        // a fix's time is whole seconds of its poll's instant, the receiver's solution is of its last
        // 1 s navigation epoch, and a fix polled while the clock was being set (the set waits for a
        // UTC second boundary) is stamped at the set: the position lies on the route within 3 s before
        // and 2 s after its time (its whole second, and the poll's own duration)
        const hAt = (ms: number) => (ms - start) / 3_600_000
        for (const f of fixes) {
            const p = decryptLoc(lockey, f.seq, f.loc)
            const u = placed.get(f.seq)!
            for (const axis of [1, 2] as const) {
                const v = (axis === 1 ? p.lat : p.lon) / 1e7
                // the ends of the window and every waypoint inside it (the route turns there: a fix
                // right after a turn lies beyond both ends)
                const inside = [
                    hAt(u - 3000),
                    hAt(u),
                    hAt(u + 2000),
                    ...scenario.route!.map(w => w[0]).filter(h => h > hAt(u - 3000) && h < hAt(u + 2000)),
                ]
                const on = inside.map(h => interpolate(scenario.route!, h, axis))
                expect(v).toBeGreaterThanOrEqual(Math.min(...on) - 1e-6)
                expect(v).toBeLessThanOrEqual(Math.max(...on) + 1e-6)
            }
        }
        // no fix is recorded inside a fix-loss window
        for (const f of fixes) {
            const h = hAt(placed.get(f.seq)!)
            expect(scenario.gpsLoss!.some(w => h >= w.from && h < w.to)).toBe(false)
        }
        expect(() => decryptLoc(Buffer.alloc(32, 7), fixes[0].seq, fixes[0].loc)).toThrow()
    })

    it("puts the receiver into software standby between fix attempts; the ledger charges standby, not tracking", () => {
        const standbys = r.observed.console.tagged("gnss-standby").map(x => Number(x.line.fields.ms))
        const e = r.summary.energy!
        // one standby after every attempt but the last (a fix attempt every fixmv or fix seconds: >= 1 an hour)
        expect(standbys.length).toBeGreaterThan(48)
        // each ends 5 s before the next attempt (the receiver hot-starts while the logger sleeps)
        const dev = scenario.device as unknown as { fixmv: number; fix: number }
        expect(standbys.every(ms => ms === dev.fixmv * 1000 - 5000 || ms === dev.fix * 1000 - 5000)).toBe(true)
        // the receiver model obeyed every one of them (a power cut ends the one it lands in)
        expect(e.counts.gnssStandbys).toBe(standbys.length)
        // tracking all the time (gnss.tracking 12.3 mA at the cell through v1's converter) would be
        // about 13.7 mA, 650 mAh over these 48 h; asleep between fixes it is a few percent of that
        expect(e.byUse.gnss).toBeLessThan(0.05 * 13.7 * 48)
        // and nothing was lost: every attempt that had a sky found a fix
        expect(records.filter(x => x.kind === KIND.fix).length).toBeGreaterThan(100)
    })

    it("reports exactly the two stops longer than the threshold, where and when they were", () => {
        const stops = r.summary.stops!
        expect(stops.length).toBe(2)
        const expected = [
            { from: 5.0, to: 6.0, at: scenario.route![4] },
            { from: 10.0, to: 12.0, at: scenario.route![8] },
        ]
        // a stop begins at the first slow fix (polled every fixmv while moving) and ends at the first
        // fast one (polled every fix once the stop is older than 2 x stopt): docs/timebase.md
        const dev = scenario.device as unknown as { fixmv: number; fix: number }
        const lag = 0
        stops.forEach((s, i) => {
            const [a, b] = [start + expected[i].from * 3_600_000, start + expected[i].to * 3_600_000]
            expect(s.start as number).toBeGreaterThanOrEqual(a)
            expect(s.start as number).toBeLessThanOrEqual(a + dev.fixmv * 1000 + lag)
            expect(s.end as number).toBeGreaterThanOrEqual(b)
            expect(s.end as number).toBeLessThanOrEqual(b + dev.fix * 1000 + lag)
            expect(s.lat).toBeCloseTo(expected[i].at[1], 5)
            expect(s.lon).toBeCloseTo(expected[i].at[2], 5)
        })
        expect(records.filter(x => x.kind === KIND.stop).length).toBe(2)
        expect((records.filter(x => x.kind === KIND.stop) as StopRecord[]).every(s => s.loc.length === 24)).toBe(true)
    })
})
