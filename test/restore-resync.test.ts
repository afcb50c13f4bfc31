// Recovery after the ingest server's database is restored from an older backup (issue 12 item 4,
// server side and the proposed device behaviour of docs/uplink.md, modelled host-side by
// test/helpers/resync-uploader.ts): the server's 409 carries an ack MAC'd with the device's ack key
// that says what it holds; the device resends from there. Every record ends in the database exactly
// once, or the verifier names the exact gap.
import { copyFileSync, rmSync } from "node:fs"
import path from "node:path"
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { recordsFor, registerDevice } from "../src/ingest/db.js"
import { startIngestServer, type IngestServer } from "../src/ingest/server.js"
import { verifyLog } from "../src/verify/verify.js"
import { dbInput, openIngestDb } from "../src/verify/inputs.js"
import { ResyncUploader } from "./helpers/resync-uploader.js"
import { scratchDir, shipmentLog } from "./helpers/shipment-log.js"

let dir: string
beforeAll(() => {
    dir = scratchDir("resync")
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function verifyDb(file: string, w: ReturnType<typeof shipmentLog>["w"]) {
    const d = openIngestDb(file)
    try {
        return verifyLog(dbInput(d, w.devid, { devid: w.devid, k0: w.k0, lockey: w.lockey, configHash: null }))
    } finally {
        d.close()
    }
}

/** Upload to 299 with a backup taken at 149, restore it, record on to 349 and upload again. */
async function restoreRun(name: string, keep: number) {
    const w = shipmentLog(`c01d7aceb00000${name}`).w
    const db = path.join(dir, `${name}.sqlite`)
    const backup = path.join(dir, `${name}-backup.sqlite`)
    let srv: IngestServer = await startIngestServer({ dbPath: db, log: () => {} })
    registerDevice(srv.db, { devid: w.devid, k0: w.k0, ackkey: w.ackkey })
    const dev = new ResyncUploader(w, srv.url, keep)
    expect(await dev.uploadTo(149)).toBe(true)
    await srv.db.backup(backup)
    expect(await dev.uploadTo(299)).toBe(true)
    expect(dev.ackSeq).toBe(299)
    await srv.close()
    // ransomware: the database is restored from the backup, the server started again on it
    copyFileSync(backup, db)
    rmSync(db + "-wal", { force: true })
    rmSync(db + "-shm", { force: true })
    srv = await startIngestServer({ dbPath: db, log: () => {} })
    dev.url = srv.url
    const ok = await dev.uploadTo(349)
    const rows = recordsFor(srv.db, w.devid)
    await srv.close()
    return { w, db, dev, ok, rows }
}

describe("after the server's database is restored from an older backup", () => {
    test("the device still holds the records: it resends from what the server holds, every record once", async () => {
        const { w, db, dev, ok, rows } = await restoreRun("a1", 1000)
        expect(ok).toBe(true)
        // the first batch after the restore is refused with the server's ack of seq 149, then the resend
        const after = dev.events.slice(dev.events.findIndex(e => e.status === 409))
        expect(after[0]).toMatchObject({ first: 300, status: 409, ackSeq: 149 })
        expect(after[1]).toMatchObject({ first: 150, prev: false, status: 200 })
        expect(dev.lost).toBeNull()
        expect(rows.map(r => r.seq)).toEqual([...Array(350).keys()])
        rows.forEach(r => expect(r.bytes).toEqual(w.bytes[r.seq]))
        const v = verifyDb(db, w)
        expect(v.problems).toEqual([])
        expect(v.ok).toBe(true)
    })

    test("the device freed them after their ack: it resends from its first held record with PREV, the gap is named exactly", async () => {
        const { w, db, dev, ok, rows } = await restoreRun("a2", 20)
        expect(ok).toBe(true)
        // the device kept the last 20 acknowledged records (280..299): 150..279 are gone on both sides
        expect(dev.lost).toEqual({ first: 150, last: 279 })
        expect(dev.events.find(e => e.prev)).toMatchObject({ first: 280, status: 200 })
        const seqs = rows.map(r => r.seq)
        expect(seqs).toEqual([...Array(150).keys(), ...Array.from({ length: 70 }, (_, i) => 280 + i)])
        expect(new Set(seqs).size).toBe(seqs.length) // exactly once
        const v = verifyDb(db, w)
        expect(v.status).toBe("tampered")
        expect(v.problems).toEqual([expect.objectContaining({ kind: "deleted", seq: 150, last: 279 })])
        expect(v.firstBad).toBe(150)
    })
})
