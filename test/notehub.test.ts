// The simulator's Notehub: devices sync notes over HTTP, batch notes go through a lossless but late,
// reordering, duplicating relay to a real ingest server (real SQLite), and the server's acks come
// back to the right device as inbound notes on its next sync. The relay runs on a virtual clock that
// the tests move (as the simulator's world does): what is delivered when depends on the seed and
// the steps, never on how fast the machine is.
import http from "node:http"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, test } from "vitest"
import { decodeAck } from "../src/format/index.js"
import { recordsFor, registerDevice } from "../src/ingest/db.js"
import { startIngestServer, type IngestServer } from "../src/ingest/server.js"
import { startNotehub, type Notehub, type NotehubOptions } from "../src/uplink/notehub.js"
import { batchOf, key, makeChain, mustReply, type Chain } from "./helpers/ingest-client.js"

/** the relay's clock (ms): moved only by advance() */
let clock = 0

/** move the relay's clock on and deliver everything due (each delivery finished: the POST answered) */
async function advance(h: Notehub, ms: number) {
    clock += ms
    await h.relay.pump()
}

interface Device {
    devid: string
    k0: Buffer
    ackkey: Buffer
    chain: Chain
}

function device(devid: string, n: number): Device {
    return { devid, k0: key(`k0 ${devid}`), ackkey: key(`ackkey ${devid}`), chain: makeChain(devid, n) }
}

interface SyncReply {
    status: number
    headers: http.IncomingHttpHeaders
    inbound: { file: string; body: { first: number; n: number; status: number }; payload: string }[]
}

async function sync(hub: Notehub, sn: string, notes: { file: string; body?: unknown; payload: string }[]): Promise<SyncReply> {
    const r = await mustReply(hub.url, { method: "POST", body: JSON.stringify({ sn, notes }) })
    return { status: r.status, headers: r.headers, inbound: r.status === 200 ? JSON.parse(r.text).inbound : [] }
}

/** the note a CellularUplink sends for records first..last */
function batchNote(d: Device, first: number, last: number) {
    return { file: "batch.qo", body: { first, n: last - first + 1 }, payload: batchOf(d.chain, d.k0, first, last).toString("base64") }
}

let dir: string
let ingest: IngestServer
let hubs: Notehub[]

beforeEach(async () => {
    clock = 0
    dir = mkdtempSync(join(tmpdir(), "coldtrace-notehub-"))
    ingest = await startIngestServer({ dbPath: join(dir, "ingest.sqlite"), log: () => {} })
    hubs = []
})
afterEach(async () => {
    for (const h of hubs) await h.close()
    await ingest.close()
    rmSync(dir, { recursive: true, force: true })
})

async function hub(o: Partial<NotehubOptions> = {}) {
    const h = await startNotehub({ ingestUrl: `${ingest.url}/v1/batch`, ...o, relay: { ...o.relay, now: () => clock }, pumpMs: 0 })
    hubs.push(h)
    return h
}

function register(d: Device) {
    registerDevice(ingest.db, { devid: Buffer.from(d.devid, "hex"), k0: d.k0, ackkey: d.ackkey })
}

/**
 * Devices the way CellularUplink and the logger behave, taking turns: each round every device that
 * is not done sends its unacknowledged records in batches of `per` (up to `notesPerSync` notes in one
 * sync), then the relay's clock moves 25 ms at a time (at most 20 steps) while it syncs for acks;
 * it frees up to the highest authenticated ack seq. The rounds are a guard against a bug, not a
 * timing budget: with the relay's clock virtual, every run takes the same rounds.
 */
async function runDevices(h: Notehub, devices: { d: Device; per: number; notesPerSync: number }[]) {
    const state = devices.map(() => ({ acked: -1, rounds: 0, acks: 0 }))
    const done = (i: number) => state[i].acked >= devices[i].d.chain.bytes.length - 1
    while (devices.some((_, i) => !done(i))) {
        for (let i = 0; i < devices.length; i++) {
            if (done(i)) continue
            const { d, per, notesPerSync } = devices[i]
            const st = state[i]
            if (++st.rounds > 200) throw new Error(`device ${d.devid}: not acknowledged after 200 rounds (acked ${st.acked})`)
            const n = d.chain.bytes.length
            const notes = []
            for (let f = st.acked + 1; f < n && notes.length < notesPerSync; f += per)
                notes.push(batchNote(d, f, Math.min(f + per - 1, n - 1)))
            let got = await sync(h, d.devid, notes)
            for (let k = 0; k < 20 && got.inbound.length === 0; k++) {
                await advance(h, 25)
                got = await sync(h, d.devid, [])
            }
            for (const a of got.inbound) {
                expect(a.file).toBe("ack.qi")
                const ack = decodeAck(Buffer.from(a.payload, "base64"), d.ackkey) // throws unless it is this device's
                expect(ack.devid).toBe(d.devid)
                expect([200, 409]).toContain(a.body.status)
                expect(typeof a.body.first).toBe("number")
                st.acks++
                if (ack.ackSeq !== null) st.acked = Math.max(st.acked, ack.ackSeq)
            }
        }
    }
    return state
}

function expectDbEqualsChain(d: Device) {
    const rows = recordsFor(ingest.db, d.devid)
    expect(rows.map(r => r.seq)).toEqual(d.chain.bytes.map((_, i) => i))
    rows.forEach((r, i) => {
        expect(r.bytes.equals(d.chain.bytes[i])).toBe(true)
        expect(r.head.equals(d.chain.heads[i])).toBe(true)
    })
}

describe("notehub stand-in", () => {
    test("one batch: delivered to the ingest server, the ack comes back on the next sync", async () => {
        const d = device("0123456789abcdef", 12)
        register(d)
        const h = await hub({ relay: { delayMs: 30 } })
        const first = await sync(h, d.devid, [batchNote(d, 0, 11)])
        expect(first.status).toBe(200)
        expect(first.headers["content-length"]).toBeDefined()
        expect(first.headers["connection"]).toBe("close")
        expect(first.inbound).toEqual([]) // the relay is still holding it
        await advance(h, 29)
        expect(h.waiting(d.devid)).toBe(0) // not yet due
        await advance(h, 1)
        expect(h.waiting(d.devid)).toBe(1)
        const second = await sync(h, d.devid, [])
        expect(second.inbound.length).toBe(1)
        const a = second.inbound[0]
        expect(a.body).toEqual({ first: 0, n: 12, status: 200 })
        expect(decodeAck(Buffer.from(a.payload, "base64"), d.ackkey).ackSeq).toBe(11)
        expect((await sync(h, d.devid, [])).inbound).toEqual([]) // handed over once
        expectDbEqualsChain(d)
        expect(h.stats).toMatchObject({ syncs: 3, notesUp: 1, batchesUp: 1, acksQueued: 1, acksDown: 1, ingestErrors: 0 })
        expect(h.stats.ingest).toEqual({ 200: 1 })
    })

    test("duplicated and reordered notes from two devices: each record in the DB exactly once", async () => {
        const a = device("a1a2a3a4a5a6a7a8", 230)
        const b = device("b1b2b3b4b5b6b7b8", 170)
        register(a)
        register(b)
        const h = await hub({
            relay: { seed: 7, delayMs: 0, jitterMs: 40, reorder: 0.4, holdMs: 80, duplicate: 0.6, duplicateLagMs: 20 },
        })
        const [ra, rb] = await runDevices(h, [
            { d: a, per: 20, notesPerSync: 4 },
            { d: b, per: 25, notesPerSync: 3 },
        ])
        await h.drain() // late copies still in the relay land too, and change nothing
        expectDbEqualsChain(a)
        expectDbEqualsChain(b)
        const st = h.relay.stats
        expect(st.duplicates).toBeGreaterThan(5)
        expect(st.heldBack).toBeGreaterThan(3)
        expect(st.delivered).toBe(st.pushed + st.duplicates) // nothing lost, nothing extra
        // reordering makes the server refuse some batches with 409 (gap): the device resent them
        expect(h.stats.ingest[409] ?? 0).toBeGreaterThan(0)
        expect(h.stats.ingest[422] ?? 0).toBe(0)
        expect(ra.acks + rb.acks).toBeGreaterThan(0)
        console.log(`notehub relay: ${JSON.stringify(st)}; ingest ${JSON.stringify(h.stats.ingest)}; rounds a=${ra.rounds} b=${rb.rounds}`)
    })

    test("acks go only to the device that sent the batch", async () => {
        const a = device("1111111111111111", 5)
        const b = device("2222222222222222", 5)
        register(a)
        register(b)
        const h = await hub({ relay: { delayMs: 0 } })
        await sync(h, a.devid, [batchNote(a, 0, 4)])
        await advance(h, 0)
        expect(h.waiting(a.devid)).toBe(1)
        expect(h.waiting(b.devid)).toBe(0)
        expect((await sync(h, b.devid, [])).inbound).toEqual([])
        const got = await sync(h, a.devid, [])
        expect(got.inbound.length).toBe(1)
        expect(decodeAck(Buffer.from(got.inbound[0].payload, "base64")).devid).toBe(a.devid)
    })

    test("ingest server failing for a while: the relay retries, nothing is lost", async () => {
        const d = device("3333333333333333", 40)
        register(d)
        // a front that answers 503 to the first three requests, then forwards
        let seen = 0
        const front = http.createServer((req, res) => {
            const chunks: Buffer[] = []
            req.on("data", (c: Buffer) => chunks.push(c))
            req.on("end", async () => {
                if (++seen <= 3) {
                    res.writeHead(503, { "Content-Length": 4, Connection: "close" })
                    res.end("busy")
                    return
                }
                const r = await mustReply(`${ingest.url}/v1/batch`, { method: "POST", body: Buffer.concat(chunks) })
                res.writeHead(r.status, { "Content-Length": r.body.length, Connection: "close" })
                res.end(r.body)
            })
        })
        await new Promise<void>(r => front.listen(0, "127.0.0.1", () => r()))
        try {
            const port = (front.address() as { port: number }).port
            const h = await hub({ ingestUrl: `http://127.0.0.1:${port}/v1/batch`, relay: { delayMs: 0, retryMs: 20 } })
            await sync(h, d.devid, [batchNote(d, 0, 19), batchNote(d, 20, 39)])
            await advance(h, 0) // both tried: the first is refused (503) and rescheduled, then the second, ...
            await advance(h, 20) // ... tried again 20 ms later
            await advance(h, 20)
            expect(h.waiting(d.devid)).toBe(2)
            expect(h.stats.ingestErrors).toBe(3)
            expect(h.relay.stats.retries).toBe(3)
            // both got through in the end; a retried note can be overtaken (then it is a 409 gap,
            // and the device resends from the ack, as the logger does)
            const got = await sync(h, d.devid, [])
            expect(got.inbound.map(n => n.body.status).sort()).toEqual(h.stats.ingest[409] ? [200, 409] : [200, 200])
            await runDevices(h, [{ d, per: 20, notesPerSync: 2 }])
            expectDbEqualsChain(d)
        } finally {
            front.closeAllConnections()
            await new Promise<void>(r => front.close(() => r()))
        }
    })

    test("refused batches (bad MAC) are not retried and send nothing back", async () => {
        const d = device("4444444444444444", 5)
        register(d)
        const h = await hub({ relay: { delayMs: 0 } })
        const forged = batchOf(d.chain, key("not the key"), 0, 4)
        await sync(h, d.devid, [{ file: "batch.qo", body: { first: 0, n: 5 }, payload: forged.toString("base64") }])
        await advance(h, 0)
        expect(h.stats.ingest).toEqual({ 401: 1 })
        expect(h.relay.pending).toBe(0)
        expect((await sync(h, d.devid, [])).inbound).toEqual([])
        expect(recordsFor(ingest.db, d.devid)).toEqual([])
    })

    test("malformed syncs are refused with a reason; other files are ignored", async () => {
        const h = await hub()
        const bad = async (body: string, path = "/v1/sync", method = "POST") => {
            const r = await mustReply(h.url.replace("/v1/sync", path), { method, body: method === "POST" ? body : undefined })
            expect(r.headers["content-length"]).toBe(String(r.body.length))
            expect(r.headers["connection"]).toBe("close")
            return { status: r.status, error: JSON.parse(r.text).error as string }
        }
        expect(await bad("nope")).toEqual({ status: 400, error: "sync: not JSON" })
        expect((await bad(JSON.stringify({ notes: [] }))).error).toMatch(/sn/)
        expect((await bad(JSON.stringify({ sn: "x", notes: [{ file: "batch.qo", payload: "Zg=" }] }))).error).toMatch(/base64/)
        expect((await bad(JSON.stringify({ sn: "x", notes: [{ file: "batch.qo", body: [1], payload: "" }] }))).error).toMatch(/body/)
        expect((await bad("", "/elsewhere")).status).toBe(404)
        expect((await bad("", "/v1/sync", "GET")).status).toBe(405)
        const ok = await sync(h, "x", [{ file: "data.qo", body: { t: 1 }, payload: "" }])
        expect(ok.status).toBe(200)
        expect(h.stats.batchesUp).toBe(0)
        expect(h.stats.notesUp).toBe(1)
        expect(h.relay.pending).toBe(0)
    })
})
