import * as ds from "@devicescript/core"
import { describe, test, expect } from "@devicescript/test"
import { Clock } from "../hal/clock"
import { Notecard, NotecardError, base64Encode, base64Decode, MAX_REQUEST_BYTES, encodeRequest } from "../uplink/notecard"
import { CellularUplink, CellularOptions, MAX_CELLULAR_BATCH, BATCH_FILE } from "../uplink/cellular"
import { NotecardModel, NotecardCloud, InboundNote, Note, syncRequestBody } from "../sim/notecard-model"

/*
 * CellularUplink against the register-level Notecard model, in the VM, without the network: the
 * model's "cloud" is a fake in this file (it answers each batch note with an ack note one sync
 * later, as a relay would), and inbound notes are also injected into the model directly.
 */

/** a clock the test sets by hand (device ms); sleeping advances it */
class ManualClock extends Clock {
    t = 0
    override now() {
        return this.t
    }
    override async sleep(ms: number) {
        this.t += ms
        await ds.sleep(0) // still yield: the VM panics (InfiniteLoop) on a fiber that never does
    }
}

const DEVID = Buffer.from("0011223344556677", "hex")
const OTHER = Buffer.from("8899aabbccddeeff", "hex")
const PRODUCT = "com.example.coldtrace:test"

function contains(s: string, part: string) {
    return s !== undefined && s.indexOf(part) >= 0
}
async function errorOf(f: () => Promise<any>): Promise<any> {
    try {
        await f()
    } catch (e: any) {
        return e
    }
    return undefined
}

/** a batch-shaped body (magic, devid, first_seq, count; filler); the uplink does not check the MAC */
function batch(first: number, n: number, size = 120): Buffer {
    const b = Buffer.alloc(size)
    b.blitAt(0, "CTB3", 0, 4)
    b.blitAt(4, DEVID, 0, 8)
    b.setAt(12, "u32", 1)
    b.setAt(24, "u32", first)
    b.setAt(28, "u16", n)
    for (let i = 31; i < size && i < 200; i++) b[i] = (i * 7) & 0xff // (a longer loop would need yields)
    return b
}

/** an ack-shaped body (magic, devid, seq); MAC zeros: the logger checks it, not the uplink */
function ack(devid: Buffer, seq: number): Buffer {
    const b = Buffer.alloc(84)
    b.blitAt(0, "CTA3", 0, 4)
    b.blitAt(4, devid, 0, 8)
    b.setAt(12, "u32", seq)
    b[60] = 0x5a
    return b
}

async function ackNote(devid: Buffer, seq: number, body: any): Promise<InboundNote> {
    return { file: "ack.qi", body, payload: await base64Encode(ack(devid, seq)) }
}

/**
 * The fake Notehub + ingest server: each batch note that goes up is answered with an ack note that
 * comes down at the following sync (seq = its last record, body echoes {first, n} and the status).
 */
class FakeCloud implements NotecardCloud {
    answer = true
    status = 200
    /** answer with this device id instead of the note's */
    ackDevid: Buffer = DEVID
    /** throw on every exchange (the hub unreachable) */
    down = false
    up: Note[] = []
    exchanges = 0
    private later: InboundNote[] = []

    async exchange(sn: string, notes: Note[]): Promise<InboundNote[]> {
        if (this.down) throw new Error("connection refused")
        this.exchanges++
        const out = this.later
        this.later = []
        for (const n of notes) {
            this.up.push(n)
            if (!this.answer || n.file !== BATCH_FILE) continue
            const b = await base64Decode(n.payload)
            const last = b.getAt(24, "u32") + b.getAt(28, "u16") - 1
            const body = { first: n.body.first, n: n.body.n, status: this.status }
            this.later.push(await ackNote(this.ackDevid, last, body))
        }
        return out
    }
}

interface Rig {
    clock: ManualClock
    model: NotecardModel
    cloud: FakeCloud
    nc: Notecard
    up: CellularUplink
}

function rig(o: any = {}): Rig {
    const clock = new ManualClock()
    clock.t = 1000
    const model = new NotecardModel(clock)
    model.setInputs({ connected: true, utcMs: 1767225600000 })
    const cloud = new FakeCloud()
    model.cloud = cloud
    const nc = new Notecard(model, { clock })
    const opts: CellularOptions = { devid: DEVID, product: PRODUCT, clock }
    if (o.ackTimeoutMs !== undefined) opts.ackTimeoutMs = o.ackTimeoutMs
    if (o.connectTimeoutMs !== undefined) opts.connectTimeoutMs = o.connectTimeoutMs
    if (o.maxPayload !== undefined) opts.maxPayload = o.maxPayload
    return { clock, model, cloud, nc, up: new CellularUplink(nc, opts) }
}

function linesWith(m: NotecardModel, part: string): string[] {
    return m.lines.filter(l => l.indexOf(part) >= 0)
}

describe("cellular uplink", () => {
    test("batch goes up as a note, the ack comes back as an inbound note", async () => {
        const r = rig()
        const body = batch(10, 5)
        const t0 = r.clock.now()
        const rep = await r.up.send(body)
        expect(rep.status).toBe(200)
        expect(rep.body.length).toBe(84)
        expect(rep.body.getAt(12, "u32")).toBe(14)
        expect(rep.body.slice(4, 12).toString("hex")).toBe(DEVID.toString("hex"))
        // hub.set once: product, serial number = devid, periodic mode
        const set = linesWith(r.model, '"hub.set"')
        expect(set.length).toBe(1)
        expect(r.model.product).toBe(PRODUCT)
        expect(r.model.sn).toBe("0011223344556677")
        expect(r.model.mode).toBe("periodic")
        // the note: batch.qo, sync:true, the payload is the batch, the body says which records
        expect(r.cloud.up.length).toBe(1)
        const n = r.cloud.up[0]
        expect(n.file).toBe("batch.qo")
        expect(n.body.first).toBe(10)
        expect(n.body.n).toBe(5)
        expect((await base64Decode(n.payload)).toString("hex")).toBe(body.toString("hex"))
        expect(linesWith(r.model, '"sync":true').length).toBe(1)
        expect(linesWith(r.model, '"hub.sync"').length >= 1).toBe(true)
        expect(linesWith(r.model, '"note.get"').length >= 1).toBe(true)
        expect(contains(linesWith(r.model, '"note.get"')[0], '"delete":true')).toBe(true)
        expect(r.model.violations.length).toBe(0)
        // the ack was read and deleted from the card
        expect(r.model.inboundNotes.length).toBe(0)
        console.log("cellular send: " + (r.clock.now() - t0) + " device ms, syncs " + r.model.syncs)
        // second batch: no second hub.set
        const rep2 = await r.up.send(batch(15, 3))
        expect(rep2.body.getAt(12, "u32")).toBe(17)
        expect(linesWith(r.model, '"hub.set"').length).toBe(1)
        expect(r.up.sent).toBe(2)
    })

    test("a 409 ack comes back with its status", async () => {
        const r = rig()
        r.cloud.status = 409
        const rep = await r.up.send(batch(30, 2))
        expect(rep.status).toBe(409)
        expect(rep.body.getAt(12, "u32")).toBe(31)
    })

    test("acks for another device are ignored (and consumed)", async () => {
        const r = rig()
        r.model.addInbound(await ackNote(OTHER, 500, { first: 3, n: 2, status: 200 }), false)
        r.model.addInbound(await ackNote(OTHER, 4, { first: 3, n: 2, status: 200 }))
        const rep = await r.up.send(batch(3, 2))
        expect(rep.body.slice(4, 12).toString("hex")).toBe(DEVID.toString("hex"))
        expect(rep.body.getAt(12, "u32")).toBe(4)
        expect(r.model.inboundNotes.length).toBe(0)
        expect(r.up.acksSeen).toBe(1)
        // only other devices answer: no ack for us
        const r2 = rig({ ackTimeoutMs: 120000 })
        r2.cloud.ackDevid = OTHER
        const e = await errorOf(async () => await r2.up.send(batch(3, 2)))
        expect(contains(e.message, "no acknowledgement")).toBe(true)
    })

    test("late and duplicated acks: the highest seq answering this batch wins", async () => {
        const r = rig()
        // an old ack waiting on the card, and duplicates arriving with the next sync
        r.model.addInbound(await ackNote(DEVID, 9, { first: 0, n: 10, status: 200 }), false)
        r.model.addInbound(await ackNote(DEVID, 9, { first: 0, n: 10, status: 200 }))
        r.model.addInbound(await ackNote(DEVID, 0xffffffff, { first: 0, n: 10, status: 409 }))
        const rep = await r.up.send(batch(10, 10))
        expect(rep.status).toBe(200)
        expect(rep.body.getAt(12, "u32")).toBe(19)
        expect(r.up.acksSeen >= 4).toBe(true)
        expect(r.model.inboundNotes.length).toBe(0)
        // no answer to this batch at all, only a stale ack: returned after the timeout, the logger
        // frees what it covers and backs off
        const r2 = rig({ ackTimeoutMs: 120000 })
        r2.cloud.answer = false
        r2.model.addInbound(await ackNote(DEVID, 7, { first: 0, n: 8, status: 200 }))
        const t0 = r2.clock.now()
        const rep2 = await r2.up.send(batch(8, 4))
        expect(rep2.body.getAt(12, "u32")).toBe(7)
        expect(r2.clock.now() - t0 >= 120000).toBe(true)
    })

    test("no ack: throws after the ack timeout (device time), polling with back-off", async () => {
        const r = rig({ ackTimeoutMs: 600000 })
        r.cloud.answer = false
        const t0 = r.clock.now()
        const e = await errorOf(async () => await r.up.send(batch(0, 4)))
        const took = r.clock.now() - t0
        expect(contains(e.message, "no acknowledgement within 600 s")).toBe(true)
        expect(took >= 600000).toBe(true)
        expect(took < 700000).toBe(true)
        // back-off: 5, 10, 20, 40, 60, 60 ... s -> about 15 syncs in 10 minutes, not hundreds
        const syncs = linesWith(r.model, '"hub.sync"').length
        console.log("ack timeout after " + took + " device ms, " + syncs + " hub.sync requests")
        expect(syncs >= 8 && syncs <= 20).toBe(true)
        expect(r.up.failed).toBe(1)
    })

    test("no network: throws after the connect timeout, the note is dropped from the card", async () => {
        const r = rig({ connectTimeoutMs: 180000 })
        r.model.setInputs({ connected: false })
        const t0 = r.clock.now()
        const e = await errorOf(async () => await r.up.send(batch(0, 4)))
        expect(contains(e.message, "no network")).toBe(true)
        expect(r.clock.now() - t0 >= 180000).toBe(true)
        expect(r.clock.now() - t0 < 300000).toBe(true)
        expect(r.model.queued.length).toBe(0)
        expect(r.cloud.up.length).toBe(0)
        // coverage back: the next send works
        r.model.setInputs({ connected: true })
        const rep = await r.up.send(batch(0, 6))
        expect(rep.body.getAt(12, "u32")).toBe(5)
        expect(r.cloud.up.length).toBe(1)
    })

    test("hub unreachable: the sync fails, the error is reported", async () => {
        const r = rig({ connectTimeoutMs: 60000 })
        r.cloud.down = true
        const e = await errorOf(async () => await r.up.send(batch(0, 4)))
        expect(contains(e.message, "no network")).toBe(true)
        expect(contains(e.message, "connection refused")).toBe(true)
    })

    test("modem errors throw", async () => {
        const r = rig()
        r.model.failNext("note.add", "modem not responding {io}")
        const e = await errorOf(async () => await r.up.send(batch(0, 4)))
        expect(e instanceof NotecardError).toBe(true)
        expect(contains(e.message, "modem not responding")).toBe(true)
        expect(r.up.failed).toBe(1)
        r.model.failNext("hub.set", "card busy {io}")
        const r2 = rig()
        r2.model.failNext("hub.set", "card busy {io}")
        const e2 = await errorOf(async () => await r2.up.send(batch(0, 4)))
        expect(contains(e2.message, "card busy")).toBe(true)
        // hub.set is tried again on the next send
        const rep = await r2.up.send(batch(0, 4))
        expect(rep.status).toBe(200)
        expect(linesWith(r2.model, '"hub.set"').length).toBe(2)
        // no card on the bus (NACK): transport error
        const r3 = rig()
        r3.model.setInputs({ fault: "nack" })
        const e3 = await errorOf(async () => await r3.up.send(batch(0, 4)))
        expect(e3 !== undefined).toBe(true)
        expect(r3.nc.ok).toBe(false)
    })

    test("card storage full of stale batches: they are dropped and the note goes in", async () => {
        const r = rig()
        r.model.capacityBytes = 1000
        r.model.setInputs({ connected: false })
        await r.nc.hubSet({ product: PRODUCT })
        await r.nc.noteAdd(BATCH_FILE, { first: 0, n: 1 }, false, Buffer.alloc(600))
        r.model.setInputs({ connected: true })
        const rep = await r.up.send(batch(0, 4, 400))
        expect(rep.body.getAt(12, "u32")).toBe(3)
        expect(linesWith(r.model, '"file.delete"').length).toBe(1)
        expect(r.cloud.up.length).toBe(1)
    })

    test("oversize batch throws before touching the card; the largest one fits in 8 KB", async () => {
        console.log("MAX_CELLULAR_BATCH = " + MAX_CELLULAR_BATCH)
        expect(MAX_CELLULAR_BATCH > 6000).toBe(true)
        const line = encodeRequest({
            req: "note.add",
            file: BATCH_FILE,
            body: { first: 4294967295, n: 65535 },
            payload: await base64Encode(Buffer.alloc(MAX_CELLULAR_BATCH)),
            sync: true,
        })
        expect(line.length + 1 <= MAX_REQUEST_BYTES).toBe(true)
        const r = rig()
        const e = await errorOf(async () => await r.up.send(batch(0, 4, MAX_CELLULAR_BATCH + 1)))
        expect(contains(e.message, "one note carries at most " + MAX_CELLULAR_BATCH)).toBe(true)
        expect(r.model.xfers).toBe(0)
        // a configured lower bound
        const r2 = rig({ maxPayload: 2048 })
        const e2 = await errorOf(async () => await r2.up.send(batch(0, 4, 2049)))
        expect(contains(e2.message, "at most 2048")).toBe(true)
        // not a batch at all
        const e3 = await errorOf(async () => await r2.up.send(Buffer.from("hello")))
        expect(contains(e3.message, "not a batch")).toBe(true)
    })

    // The driver holds a request twice (payload text, JSON line) and the model, in the same VM here
    // and in the simulator, holds the line and the payload (on a board the card's copies are in the
    // card). A MAX_CELLULAR_BATCH batch passes in a VM of its own; after the tests above (heap
    // fragmentation) 5 KB is what fits
    test("a 5 KB batch goes through (driver and model in one VM heap)", async () => {
        const r = rig()
        const rep = await r.up.send(batch(0, 300, 5000))
        expect(rep.body.getAt(12, "u32")).toBe(299)
        expect(r.model.violations.length).toBe(0)
    })

    test("model: a big note.add whose body has a `payload` key of its own parses right", async () => {
        const r = rig()
        await r.nc.hubSet({ product: PRODUCT })
        r.model.setInputs({ connected: false })
        const pad = Buffer.alloc(1200)
        pad.fillAt(0, 1200, 0x78)
        const body = { payload: "QUJD", pad: pad.toString() }
        await r.nc.noteAdd("x.qo", body, false, Buffer.from("hello world"))
        const q = r.model.queued[0]
        expect(q.body.payload).toBe("QUJD")
        expect(q.body.pad.length).toBe(1200)
        expect(q.payload).toBe(await base64Encode(Buffer.from("hello world")))
        // and the usual order: the payload cut out of a big line
        await r.nc.noteAdd("y.qo", { n: 1 }, false, pad)
        expect((await base64Decode(r.model.queued[1].payload)).toString()).toBe(pad.toString())
        expect(r.model.queued[1].body.n).toBe(1)
        expect(contains(r.model.lines[r.model.lines.length - 1], "(payload: 1600 chars)")).toBe(true)
    })

    test("the simulator's sync request body is the JSON the host expects", async () => {
        const notes: Note[] = [
            { file: "batch.qo", body: { first: 1, n: 2 }, payload: "QUJD", time: 0 },
            { file: "x.qo", body: undefined, payload: "", time: 0 },
        ]
        const want = JSON.stringify({
            sn: "0011223344556677",
            notes: [
                { file: "batch.qo", body: { first: 1, n: 2 }, payload: "QUJD" },
                { file: "x.qo", body: null, payload: "" },
            ],
        })
        expect(syncRequestBody("0011223344556677", notes).toString()).toBe(want)
        expect(syncRequestBody("s", []).toString()).toBe('{"sn":"s","notes":[]}')
    })

    test("a 4 KB batch goes through", async () => {
        const r = rig()
        const t0 = r.clock.now()
        const w0 = ds.millis()
        const rep = await r.up.send(batch(100, 200, 4096))
        expect(rep.body.getAt(12, "u32")).toBe(299)
        expect(r.model.violations.length).toBe(0)
        console.log("4 KB batch: " + (r.clock.now() - t0) + " device ms, " + (ds.millis() - w0) + " VM ms")
    })
})
