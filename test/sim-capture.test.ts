import { describe, it, expect, beforeAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import Database from "better-sqlite3"
import { runScenario, type RunResult } from "../src/sim/run.js"
import { loadScenario, MAX_CAPTURE_BYTES, ScenarioError } from "../src/sim/scenario.js"
import { decodeRecord, decryptLoc, KIND, type FixRecord, type TimeRecord } from "../src/format/index.js"
import { navPvtFrame, navPvtTime, parseUbxStream, ID_NAV_PVT } from "../src/gnss/ubx.js"
import { mergeLogs } from "../src/verify/chain.js"
import { decodeExport } from "../src/sim/export.js"

// A recorded receiver stream (raw UBX with NMEA text, other UBX and line noise) replayed through
// the u-blox model: the real driver must find each NAV-PVT in it, the logger record those
// positions and anchor its time on the recording's UTC, including the last solution of a capture
// whose tail is longer than the receiver's 4 KB TX buffer (the model used to drop it).

const START = Date.parse("2026-05-04T06:00:00Z")
const FIXES = 24
/** the recording: one solution every 5 minutes, a car heading north at 10 m/s, with a long tail */
function makeCapture(): { bytes: Buffer; fixes: { lat: number; lon: number; utc: number }[] } {
    const parts: Buffer[] = []
    const fixes: { lat: number; lon: number; utc: number }[] = []
    let noise = 7
    for (let i = 0; i < FIXES; i++) {
        const utc = Date.parse("2025-11-20T13:00:00Z") + i * 300_000
        const fix = { lat: 505000000 + i * 100000, lon: 43500000 + i * 3000, utc }
        fixes.push(fix)
        parts.push(Buffer.from(`$GNGGA,130000.00,5030.00000,N,00421.00000,E,1,09,1.0,55.0,M,46.0,M,,*4A\r\n`))
        // line noise between messages, as on a real DDC read of a busy receiver
        const junk = Buffer.alloc(5 + (i % 7))
        for (let k = 0; k < junk.length; k++) junk[k] = noise = (noise * 73 + 41) & 0xff
        parts.push(junk)
        parts.push(
            navPvtFrame({
                ...navPvtTime(utc),
                fixType: 3,
                gnssFixOK: true,
                numSV: 9,
                lat: fix.lat,
                lon: fix.lon,
                hAccMm: 2500,
                gSpeedMmS: 10_000,
            }),
        )
    }
    for (let i = 0; parts.reduce((n, p) => n + p.length, 0) < 12_500; i++)
        parts.push(Buffer.from(`$GNGSV,3,1,11,0${i % 10},45,120,40,05,30,060,38,13,70,300,45,15,20,210,33*7C\r\n`))
    return { bytes: Buffer.concat(parts), fixes }
}

describe("a recorded receiver stream replayed through the u-blox model (gnss.capture)", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "coldtrace-capture-"))
    const cap = makeCapture()
    let r: RunResult
    let fixes: FixRecord[]
    let times: TimeRecord[]
    let lockey: Buffer
    let devid: string

    beforeAll(async () => {
        writeFileSync(path.join(dir, "drive.ubx"), cap.bytes)
        const scenario = {
            name: "Capture replay: a recorded drive",
            start: new Date(START).toISOString(),
            hours: 3,
            device: { interval: 300, upload: 3600, low: -80, high: -60, tc: "T", fix: 900, fixmv: 300, stopv: 1, stopt: 900 },
            probe: [[0, -75]],
            board: [[0, 5]],
            gnss: { capture: "drive.ubx" },
        }
        writeFileSync(path.join(dir, "scenario.json"), JSON.stringify(scenario))
        r = await runScenario({ scenario: loadScenario(path.join(dir, "scenario.json")), outDir: path.join(dir, "out") })
        const secret = JSON.parse(readFileSync(path.join(dir, "out/device-secret.json"), "utf8"))
        lockey = Buffer.from(secret.lockey, "hex")
        devid = secret.devid
        const db = new Database(r.dbPath, { readonly: true })
        const server = db.prepare("SELECT seq, bytes FROM records ORDER BY seq").all() as { seq: number; bytes: Buffer }[]
        db.close()
        const device = decodeExport(JSON.parse(readFileSync(path.join(dir, "out/device-export.json"), "utf8"))).entries
        const records = mergeLogs(server, device).merged.map(e => decodeRecord(e.bytes))
        fixes = records.filter(x => x.kind === KIND.fix) as FixRecord[]
        times = records.filter(x => x.kind === KIND.time) as TimeRecord[]
    }, 300_000)

    it("the capture is what a receiver sends: UBX among NMEA and noise, a tail longer than the TX buffer", () => {
        const s = parseUbxStream(cap.bytes, { final: true })
        expect(s.frames.filter(f => f.id === ID_NAV_PVT).length).toBe(FIXES)
        expect(s.skipped).toBeGreaterThan(FIXES * 60)
        const lastPvtEnd = cap.bytes.lastIndexOf(navPvtFrame({ ...navPvtTime(cap.fixes.at(-1)!.utc) }).subarray(0, 6))
        expect(cap.bytes.length - lastPvtEnd).toBeGreaterThan(4096)
        expect(cap.bytes.length).toBeLessThanOrEqual(MAX_CAPTURE_BYTES)
    })

    it("records the recording's positions, every one, in order, to the 1e-7 degree", () => {
        const got = fixes.map(f => decryptLoc(lockey, f.seq, f.loc))
        expect(got.map(p => [p.lat, p.lon])).toEqual(cap.fixes.map(f => [f.lat, f.lon]))
    })

    it("anchors its time on the recording's UTC", () => {
        expect(times.length).toBeGreaterThan(0)
        expect(times.every(t => t.source === 1)).toBe(true) // GNSS
        // the first time record sets the clock at the UTC second boundary after the recording's first
        // fix: its UTC is that fix's plus the time since, to the millisecond a whole second
        expect(times[0].utc - cap.fixes[0].utc).toBeGreaterThanOrEqual(0)
        expect(times[0].utc - cap.fixes[0].utc).toBeLessThan(2000)
        expect(times[0].utc % 1000).toBe(0)
        expect(r.summary.chain.status, r.summary.chain.detail).toBe("ok")
    })

    it("refuses a scenario field nobody reads, and a capture too big for the model", () => {
        const base = {
            name: "x",
            start: "2026-01-01T00:00:00Z",
            hours: 1,
            device: { interval: 60, upload: 600, low: 2, high: 8 },
            probe: [[0, 5]],
            board: [[0, 5]],
        }
        const write = (o: object) => {
            const f = path.join(dir, `s${Math.random()}.json`)
            writeFileSync(f, JSON.stringify(o))
            return f
        }
        expect(() => loadScenario(write({ ...base, speed: 2400 }))).toThrow(/unknown field "speed"/)
        expect(() => loadScenario(write({ ...base, gnss: { capture: "drive.ubx", rate: 2 } }))).toThrow(/gnss: unknown field "rate"/)
        expect(() => loadScenario(write({ ...base, device: { ...base.device, intervall: 5 } }))).toThrow(
            /device: unknown field "intervall"/,
        )
        writeFileSync(path.join(dir, "big.ubx"), Buffer.alloc(MAX_CAPTURE_BYTES + 1))
        expect(() => loadScenario(write({ ...base, gnss: { capture: "big.ubx" } }))).toThrow(ScenarioError)
        expect(() => loadScenario(write({ ...base, gnss: { capture: "missing.ubx" } }))).toThrow(/cannot read/)
    })
})
