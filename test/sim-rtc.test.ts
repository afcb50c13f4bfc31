import { describe, it, expect, beforeAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync } from "node:fs"
import Database from "better-sqlite3"
import { runScenario, type RunResult } from "../src/sim/run.js"
import { loadScenario } from "../src/sim/scenario.js"
import { ROOT } from "../src/sim/vm.js"
import { decodeRecord, KIND, BOOT_RTC, TIME_FLAG, type LogRecord, type BootRecord, type TimeRecord } from "../src/format/index.js"
import { placeRecords } from "../src/verify/timeline.js"

// The RV-3028 through the whole system (issue 10 item 2): the real driver against the register-level
// model whose state the world keeps across power cuts. A cut that drains the backup supply loses the
// time (the next boot says LOST and the logger sets the clock again); a cut it rides out keeps it (the
// boot says BACKUP, no new SET, the records before that boot's first time record are still placed);
// the clock runs 20 ppm fast and every sample is still placed within the drift since its time record.
describe("real-time clock: lost backup, kept time, drift (rtc-faults scenario)", () => {
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/rtc-faults.json"))
    let r: RunResult
    let records: LogRecord[]

    beforeAll(async () => {
        r = await runScenario({ scenario, outDir: mkdtempSync(path.join(os.tmpdir(), "coldtrace-rtc-")) })
        const db = new Database(r.dbPath, { readonly: true })
        records = (db.prepare("SELECT bytes FROM records ORDER BY seq").all() as { bytes: Buffer }[]).map(x => decodeRecord(x.bytes))
        db.close()
    }, 240_000)

    it("says what the clock said at each boot: new and unset, lost, ridden out on backup", () => {
        const boots = records.filter(x => x.kind === KIND.boot) as BootRecord[]
        expect(boots.length).toBe(3)
        expect(boots[0].rtc & BOOT_RTC.lost).toBeTruthy() // factory-new: power-on reset
        expect(boots[1].rtc & BOOT_RTC.lost).toBeTruthy() // the backup supply was drained
        expect(boots[2].rtc & (BOOT_RTC.lost | BOOT_RTC.unset)).toBe(0)
        expect(boots[2].rtc & BOOT_RTC.backup).toBeTruthy()
    })

    it("sets the clock once per lost time, never after a cut it rode out", () => {
        const sets = records.filter(x => x.kind === KIND.time && (x as TimeRecord).flags & TIME_FLAG.set) as TimeRecord[]
        expect(sets.length).toBe(2)
        // each SET is at a UTC second boundary
        for (const s of sets) expect(s.utc % 1000).toBe(0)
        const third = records.findIndex(x => x.kind === KIND.boot && (x as BootRecord).boot === 3)
        expect(records.slice(third).some(x => x.kind === KIND.time && (x as TimeRecord).flags & TIME_FLAG.set)).toBe(false)
    })

    it("places every sample in UTC, within 1 s plus the clock's drift since its time record", () => {
        const placed = new Map(placeRecords(records).map(p => [p.seq, p.utc]))
        const lines = r.observed.console.tagged("sample")
        const boots = r.observed.console.tagged("world-boot").map(x => ({ at: x.utc, utc: Number(x.line.fields.utc) }))
        expect(lines.length).toBeGreaterThan(130)
        let worst = 0
        let n = 0
        for (const { line, utc } of lines) {
            let b = 0
            while (b + 1 < boots.length && boots[b + 1].at <= utc) b++
            const truth = boots[b].utc + Number(line.fields.up)
            const seq = Number(line.fields.seq)
            if (!placed.has(seq)) continue // still on the device at the end (not uploaded)
            const p = placed.get(seq)
            expect(p, `seq ${seq}`).not.toBeNull()
            worst = Math.max(worst, Math.abs((p as number) - truth))
            n++
        }
        expect(n).toBeGreaterThan(lines.length - 15)
        // 20 ppm over at most 12 h since a time record: 0.86 s, plus the clock's whole seconds
        expect(worst).toBeLessThan(1000 + 0.00002 * 12 * 3_600_000)
        expect(r.summary.chain.status, r.summary.chain.detail).toBe("ok")
    })
})
