import { expect } from "vitest"
import path from "node:path"
import { readFileSync } from "node:fs"
import Database from "better-sqlite3"
import type { RunResult } from "../../src/sim/run.js"
import type { Scenario } from "../../src/sim/scenario.js"
import { decodeExport } from "../../src/sim/export.js"

/**
 * Exactly-once under a hostile network (the uplink-faults scenario), checked on one run: every
 * fault met, everything delivered after the outage once and in one verified chain, and the database
 * equal to the device's log. Shared by test/sim-uplink.test.ts and the soak that repeats it.
 */
export function expectExactlyOnce(scenario: Scenario, r: RunResult) {
    const out = path.dirname(r.summaryPath)
    const d = new Database(r.dbPath, { readonly: true })
    const db = d.prepare("SELECT seq, bytes FROM records ORDER BY seq").all() as { seq: number; bytes: Buffer }[]
    d.close()
    const counts = JSON.parse(readFileSync(path.join(out, "http-faults.json"), "utf8")).counts
    for (const f of ["error500", "hang", "dropMidBody", "dropAck", "pass"]) expect(counts[f], f).toBeGreaterThan(0)
    expect(r.summary.uploads.failed).toBeGreaterThan(10)
    expect(r.summary.chain.status, r.summary.chain.detail).toBe("ok")
    db.forEach((row, i) => expect(row.seq).toBe(i)) // no hole, no duplicate
    expect(r.summary.samples.lost).toBe(0)
    expect(r.summary.samples.taken).toBeGreaterThanOrEqual(scenario.hours * 12 - 2)
    const dev = decodeExport(JSON.parse(readFileSync(path.join(out, "device-export.json"), "utf8"))).entries
    const bySeq = new Map(db.map(x => [x.seq, x.bytes]))
    // where both hold a record, the bytes are the same
    for (const e of dev) if (bySeq.has(e.seq)) expect(bySeq.get(e.seq)!.equals(e.bytes)).toBe(true)
    // what the server lacks is only the device's unsent tail (less than one upload period)
    const last = db.at(-1)!.seq
    const tail = dev.filter(e => e.seq > last)
    expect(tail.every((e, i) => e.seq === last + 1 + i)).toBe(true)
    expect(tail.length).toBeLessThanOrEqual(Math.ceil(scenario.device.upload / scenario.device.interval) + 4)
    expect(r.summary.samples.acknowledged + r.summary.samples.onDevice).toBe(r.summary.samples.taken)
}
