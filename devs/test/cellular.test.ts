import * as ds from "@devicescript/core"
import { describe, test, expect } from "@devicescript/test"
import { Clock } from "../hal/clock"
import { Notecard, NotecardError, base64Encode, base64Decode, MAX_REQUEST_BYTES, encodeRequest } from "../uplink/notecard"
import { CellularUplink, CellularOptions, MAX_CELLULAR_BATCH, BATCH_FILE } from "../uplink/cellular"
import { WorldLink } from "../sim/world"
import { HostI2c } from "../sim/host-i2c"
import { rig as rigCommand } from "./rig"

/*
 * CellularUplink against the register-level Notecard model on the host (src/sim/models/notecard.ts,
 * over the bus bridge), without the network: the card's cloud is the rig's stand-in for Notehub
 * and the ingest server (AckingCloud in src/sim/models/alone.ts: each batch note is answered with
 * an ack note one sync later, as a relay would), and inbound notes are also put on the card directly.
 */
const world = new WorldLink()
const bus = new HostI2c(world)

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

async function ackNote(devid: Buffer, seq: number, body: any): Promise<any> {
    return { file: "ack.qi", body, payload: await base64Encode(ack(devid, seq)) }
}

/** the card on the host and its cloud stand-in, as the rig steers and shows them */
class Card {
    async inputs(i: any) {
        await rigCommand(bus, { ncInputs: i })
    }
    /** configuration, counters, violations, request lines, queued notes (no payloads), inbound count */
    async state(): Promise<any> {
        return await rigCommand(bus, { get: "nc" })
    }
    /** the stand-in's behaviour: answer (acks or not), status, ackDevid (hex), down */
    async cloud(o: any) {
        await rigCommand(bus, { ncCloud: o })
    }
    /** the notes the stand-in received */
    async up(): Promise<any[]> {
        return await rigCommand(bus, { get: "ncUp" })
    }
    async addInbound(note: any, viaSync = true) {
        await rigCommand(bus, { ncInbound: note, viaSync })
    }
    async failNext(req: string, err: string) {
        await rigCommand(bus, { ncFailNext: [req, err] })
    }
    async linesWith(part: string): Promise<string[]> {
        const lines: string[] = (await this.state()).lines
        return lines.filter(l => l.indexOf(part) >= 0)
    }
}

interface Rig {
    clock: Clock
    card: Card
    nc: Notecard
    up: CellularUplink
}

/** a new card with its cloud stand-in (`o.capacityBytes`: the card's), connected, with network time */
async function rig(o: any = {}): Promise<Rig> {
    const card: any = { cloud: {} }
    if (o.capacityBytes !== undefined) card.capacityBytes = o.capacityBytes
    await rigCommand(bus, { nc: card })
    const c = new Card()
    await c.inputs({ connected: true, utcMs: 1767225600000 })
    const clock = new Clock()
    const nc = new Notecard(bus, { clock })
    const opts: CellularOptions = { devid: DEVID, product: PRODUCT, clock }
    if (o.ackTimeoutMs !== undefined) opts.ackTimeoutMs = o.ackTimeoutMs
    if (o.connectTimeoutMs !== undefined) opts.connectTimeoutMs = o.connectTimeoutMs
    if (o.maxPayload !== undefined) opts.maxPayload = o.maxPayload
    return { clock, card: c, nc, up: new CellularUplink(nc, opts) }
}

describe("cellular uplink", () => {
    test("batch goes up as a note, the ack comes back as an inbound note", async () => {
        const r = await rig()
        const body = batch(10, 5)
        const t0 = r.clock.now()
        const rep = await r.up.send(body)
        expect(rep.status).toBe(200)
        expect(rep.body.length).toBe(84)
        expect(rep.body.getAt(12, "u32")).toBe(14)
        expect(rep.body.slice(4, 12).toString("hex")).toBe(DEVID.toString("hex"))
        // hub.set once: product, serial number = devid, periodic mode
        const set = await r.card.linesWith('"hub.set"')
        expect(set.length).toBe(1)
        expect((await r.card.state()).product).toBe(PRODUCT)
        expect((await r.card.state()).sn).toBe("0011223344556677")
        expect((await r.card.state()).mode).toBe("periodic")
        // the note: batch.qo, sync:true, the payload is the batch, the body says which records
        expect((await r.card.up()).length).toBe(1)
        const n = (await r.card.up())[0]
        expect(n.file).toBe("batch.qo")
        expect(n.body.first).toBe(10)
        expect(n.body.n).toBe(5)
        expect((await base64Decode(n.payload)).toString("hex")).toBe(body.toString("hex"))
        expect((await r.card.linesWith('"sync":true')).length).toBe(1)
        expect((await r.card.linesWith('"hub.sync"')).length >= 1).toBe(true)
        expect((await r.card.linesWith('"note.get"')).length >= 1).toBe(true)
        expect(contains((await r.card.linesWith('"note.get"'))[0], '"delete":true')).toBe(true)
        expect((await r.card.state()).violations.length).toBe(0)
        // the ack was read and deleted from the card
        expect((await r.card.state()).inbound).toBe(0)
        console.log("cellular send: " + (r.clock.now() - t0) + " device ms, syncs " + (await r.card.state()).syncs)
        // second batch: no second hub.set
        const rep2 = await r.up.send(batch(15, 3))
        expect(rep2.body.getAt(12, "u32")).toBe(17)
        expect((await r.card.linesWith('"hub.set"')).length).toBe(1)
        expect(r.up.sent).toBe(2)
    })

    test("a 409 ack comes back with its status", async () => {
        const r = await rig()
        await r.card.cloud({ status: 409 })
        const rep = await r.up.send(batch(30, 2))
        expect(rep.status).toBe(409)
        expect(rep.body.getAt(12, "u32")).toBe(31)
    })

    test("acks for another device are ignored (and consumed)", async () => {
        const r = await rig()
        await r.card.addInbound(await ackNote(OTHER, 500, { first: 3, n: 2, status: 200 }), false)
        await r.card.addInbound(await ackNote(OTHER, 4, { first: 3, n: 2, status: 200 }))
        const rep = await r.up.send(batch(3, 2))
        expect(rep.body.slice(4, 12).toString("hex")).toBe(DEVID.toString("hex"))
        expect(rep.body.getAt(12, "u32")).toBe(4)
        expect((await r.card.state()).inbound).toBe(0)
        expect(r.up.acksSeen).toBe(1)
        // only other devices answer: no ack for us
        const r2 = await rig({ ackTimeoutMs: 120000 })
        await r2.card.cloud({ ackDevid: OTHER.toString("hex") })
        const e = await errorOf(async () => await r2.up.send(batch(3, 2)))
        expect(contains(e.message, "no acknowledgement")).toBe(true)
    })

    test("late and duplicated acks: the highest seq answering this batch wins", async () => {
        const r = await rig()
        // an old ack waiting on the card, and duplicates arriving with the next sync
        await r.card.addInbound(await ackNote(DEVID, 9, { first: 0, n: 10, status: 200 }), false)
        await r.card.addInbound(await ackNote(DEVID, 9, { first: 0, n: 10, status: 200 }))
        await r.card.addInbound(await ackNote(DEVID, 0xffffffff, { first: 0, n: 10, status: 409 }))
        const rep = await r.up.send(batch(10, 10))
        expect(rep.status).toBe(200)
        expect(rep.body.getAt(12, "u32")).toBe(19)
        expect(r.up.acksSeen >= 4).toBe(true)
        expect((await r.card.state()).inbound).toBe(0)
        // no answer to this batch at all, only a stale ack: returned after the timeout, the logger
        // frees what it covers and backs off
        const r2 = await rig({ ackTimeoutMs: 120000 })
        await r2.card.cloud({ answer: false })
        await r2.card.addInbound(await ackNote(DEVID, 7, { first: 0, n: 8, status: 200 }))
        const t0 = r2.clock.now()
        const rep2 = await r2.up.send(batch(8, 4))
        expect(rep2.body.getAt(12, "u32")).toBe(7)
        expect(r2.clock.now() - t0 >= 120000).toBe(true)
    })

    test("no ack: throws after the ack timeout (device time), polling with back-off", async () => {
        const r = await rig({ ackTimeoutMs: 600000 })
        await r.card.cloud({ answer: false })
        const t0 = r.clock.now()
        const e = await errorOf(async () => await r.up.send(batch(0, 4)))
        const took = r.clock.now() - t0
        expect(contains(e.message, "no acknowledgement within 600 s")).toBe(true)
        expect(took >= 600000).toBe(true)
        expect(took < 700000).toBe(true)
        // back-off: 5, 10, 20, 40, 60, 60 ... s -> about 15 syncs in 10 minutes, not hundreds
        const syncs = (await r.card.linesWith('"hub.sync"')).length
        console.log("ack timeout after " + took + " device ms, " + syncs + " hub.sync requests")
        expect(syncs >= 8 && syncs <= 20).toBe(true)
        expect(r.up.failed).toBe(1)
    })

    test("no network: throws after the connect timeout, the note is dropped from the card", async () => {
        const r = await rig({ connectTimeoutMs: 180000 })
        await r.card.inputs({ connected: false })
        const t0 = r.clock.now()
        const e = await errorOf(async () => await r.up.send(batch(0, 4)))
        expect(contains(e.message, "no network")).toBe(true)
        expect(r.clock.now() - t0 >= 180000).toBe(true)
        expect(r.clock.now() - t0 < 300000).toBe(true)
        expect((await r.card.state()).queued.length).toBe(0)
        expect((await r.card.up()).length).toBe(0)
        // coverage back: the next send works
        await r.card.inputs({ connected: true })
        const rep = await r.up.send(batch(0, 6))
        expect(rep.body.getAt(12, "u32")).toBe(5)
        expect((await r.card.up()).length).toBe(1)
    })

    test("hub unreachable: the sync fails, the error is reported", async () => {
        const r = await rig({ connectTimeoutMs: 60000 })
        await r.card.cloud({ down: true })
        const e = await errorOf(async () => await r.up.send(batch(0, 4)))
        expect(contains(e.message, "no network")).toBe(true)
        expect(contains(e.message, "connection refused")).toBe(true)
    })

    test("modem errors throw", async () => {
        const r = await rig()
        await r.card.failNext("note.add", "modem not responding {io}")
        const e = await errorOf(async () => await r.up.send(batch(0, 4)))
        expect(e instanceof NotecardError).toBe(true)
        expect(contains(e.message, "modem not responding")).toBe(true)
        expect(r.up.failed).toBe(1)
        await r.card.failNext("hub.set", "card busy {io}")
        const r2 = await rig()
        await r2.card.failNext("hub.set", "card busy {io}")
        const e2 = await errorOf(async () => await r2.up.send(batch(0, 4)))
        expect(contains(e2.message, "card busy")).toBe(true)
        // hub.set is tried again on the next send
        const rep = await r2.up.send(batch(0, 4))
        expect(rep.status).toBe(200)
        expect((await r2.card.linesWith('"hub.set"')).length).toBe(2)
        // no card on the bus (NACK): transport error
        const r3 = await rig()
        await r3.card.inputs({ fault: "nack" })
        const e3 = await errorOf(async () => await r3.up.send(batch(0, 4)))
        expect(e3 !== undefined).toBe(true)
        expect(r3.nc.ok).toBe(false)
    })

    test("card storage full of stale batches: they are dropped and the note goes in", async () => {
        const r = await rig({ capacityBytes: 1000 })
        await r.card.inputs({ connected: false })
        await r.nc.hubSet({ product: PRODUCT })
        await r.nc.noteAdd(BATCH_FILE, { first: 0, n: 1 }, false, Buffer.alloc(600))
        await r.card.inputs({ connected: true })
        const rep = await r.up.send(batch(0, 4, 400))
        expect(rep.body.getAt(12, "u32")).toBe(3)
        expect((await r.card.linesWith('"file.delete"')).length).toBe(1)
        expect((await r.card.up()).length).toBe(1)
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
        const r = await rig()
        const e = await errorOf(async () => await r.up.send(batch(0, 4, MAX_CELLULAR_BATCH + 1)))
        expect(contains(e.message, "one note carries at most " + MAX_CELLULAR_BATCH)).toBe(true)
        expect((await r.card.state()).xfers).toBe(0)
        // a configured lower bound
        const r2 = await rig({ maxPayload: 2048 })
        const e2 = await errorOf(async () => await r2.up.send(batch(0, 4, 2049)))
        expect(contains(e2.message, "at most 2048")).toBe(true)
        // not a batch at all
        const e3 = await errorOf(async () => await r2.up.send(Buffer.from("hello")))
        expect(contains(e3.message, "not a batch")).toBe(true)
    })

    // The driver holds a request twice (payload text, JSON line) in the VM's heap; the card's copies
    // are on the host (as on a board they are in the card)
    test("the largest batch a note carries goes through", async () => {
        const r = await rig()
        const rep = await r.up.send(batch(0, 300, MAX_CELLULAR_BATCH))
        expect(rep.body.getAt(12, "u32")).toBe(299)
        expect((await r.card.state()).violations.length).toBe(0)
    })

    test("a 4 KB batch goes through", async () => {
        const r = await rig()
        const t0 = r.clock.now()
        const w0 = ds.millis()
        const rep = await r.up.send(batch(100, 200, 4096))
        expect(rep.body.getAt(12, "u32")).toBe(299)
        expect((await r.card.state()).violations.length).toBe(0)
        console.log("4 KB batch: " + (r.clock.now() - t0) + " device ms, " + (ds.millis() - w0) + " VM ms")
    })
})
