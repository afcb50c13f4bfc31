import * as ds from "@devicescript/core"
import { describe, test, expect } from "@devicescript/test"
import { I2cBus } from "../hal/i2c"
import { Clock } from "../hal/clock"
import {
    Notecard,
    NotecardError,
    NotecardOptions,
    base64Encode,
    base64Decode,
    encodeRequest,
    maxNotePayload,
    MAX_REQUEST_BYTES,
    MIN_VALID_UTC,
} from "../uplink/notecard"
import { WorldLink } from "../sim/world"
import { HostI2c } from "../sim/host-i2c"
import { rig as rigCommand } from "./rig"

/*
 * The Notecard driver against the simulator's model of the card, which runs on the host
 * (src/sim/models/notecard.ts, its own behaviour tested in test/chip-models.test.ts) and is reached
 * over the bus bridge, steered through the rig (devs/test/rig.ts). Time is the VM's: the bridge
 * stamps each transaction with it, and a sleep in a unit test costs no wall time.
 */
const world = new WorldLink()
const bus = new HostI2c(world)

function bytes(hex: string) {
    return Buffer.from(hex, "hex")
}
async function errorOf(f: () => Promise<any>): Promise<any> {
    try {
        await f()
    } catch (e: any) {
        return e
    }
    return undefined
}
function contains(s: string, part: string) {
    return s !== undefined && s.indexOf(part) >= 0
}
/** byte-wise equality; yields now and then (a fiber running ~100k VM instructions without one panics) */
async function bufEq(a: Buffer, b: Buffer) {
    if (a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) {
        if (a[i] !== b[i]) return false
        if ((i & 1023) === 1023) await ds.sleep(0)
    }
    return true
}
/** n bytes of a fixed pseudo-random pattern */
function pattern(n: number, seed: number) {
    const b = Buffer.alloc(n)
    let x = seed
    for (let i = 0; i < n; i++) {
        x = (x * 75 + 74) % 65537
        b[i] = x & 0xff
    }
    return b
}
/** pattern() in slices with yields (a fiber running ~100k VM instructions without one panics) */
async function bigPattern(n: number, seed: number) {
    const b = Buffer.alloc(n)
    for (let off = 0; off < n; off += 1000) {
        const p = pattern(Math.min(1000, n - off), seed + off)
        b.blitAt(off, p, 0, p.length)
        await ds.sleep(0)
    }
    return b
}
function repeatChar(c: string, n: number) {
    const b = Buffer.alloc(n)
    b.fillAt(0, n, c.charCodeAt(0))
    return b.toString()
}

interface Xfer {
    t: number
    tx: Buffer
    rxLen: number
}

/** records transactions (with the device time); can throw once, like a NACK or a bus glitch */
class SpyBus implements I2cBus {
    log: Xfer[] = []
    n = 0
    /** throw on the transaction for which this returns true (then it is cleared) */
    throwWhen: (x: Xfer, n: number) => boolean = undefined
    constructor(
        readonly dev: I2cBus,
        readonly clock: Clock,
    ) {}
    async xfer(address: number, tx: Buffer, rxLen: number): Promise<Buffer> {
        this.n++
        const x: Xfer = { t: this.clock.now(), tx, rxLen }
        this.log.push(x)
        if (this.throwWhen && this.throwWhen(x, this.n)) {
            this.throwWhen = undefined
            throw new Error("I2C bus error (test)")
        }
        return await this.dev.xfer(address, tx, rxLen)
    }
    writes(): Xfer[] {
        return this.log.filter(x => x.tx.length > 0 && x.tx[0] !== 0)
    }
    /** availability queries: [0x00][0] */
    queries(): number {
        return this.log.filter(x => x.tx.length === 2 && x.tx[0] === 0 && x.tx[1] === 0).length
    }
}

/** the card on the host, as the rig steers and shows it */
class Card {
    async inputs(i: any) {
        await rigCommand(bus, { ncInputs: i })
    }
    /** configuration, counters, violations, request lines, queued notes (no payloads), pending sync */
    async state(): Promise<any> {
        return await rigCommand(bus, { get: "nc" })
    }
    /** notes synced since the last call (the card has no cloud in these tests) */
    async outbound(): Promise<any[]> {
        return await rigCommand(bus, { ncOutbound: 1 })
    }
}

interface Rig {
    clock: Clock
    card: Card
    spy: SpyBus
    nc: Notecard
}
/** a new card on the bus (`mopts`: the model's options) and a driver for it */
async function rig(opts: NotecardOptions = {}, mopts: any = {}): Promise<Rig> {
    await rigCommand(bus, { nc: mopts })
    const clock = new Clock()
    const spy = new SpyBus(bus, clock)
    const o: NotecardOptions = { ...opts, clock }
    return { clock, card: new Card(), spy, nc: new Notecard(spy, o) }
}
const UTC0 = 1767225600000 // 2026-01-01T00:00:00Z in ms

describe("base64", () => {
    test("RFC 4648 vectors", async () => {
        expect(await base64Encode(Buffer.alloc(0))).toBe("")
        expect(await base64Encode(Buffer.from("f"))).toBe("Zg==")
        expect(await base64Encode(Buffer.from("fo"))).toBe("Zm8=")
        expect(await base64Encode(Buffer.from("foo"))).toBe("Zm9v")
        expect(await base64Encode(Buffer.from("foob"))).toBe("Zm9vYg==")
        expect(await base64Encode(Buffer.from("fooba"))).toBe("Zm9vYmE=")
        expect(await base64Encode(Buffer.from("foobar"))).toBe("Zm9vYmFy")
        expect(await base64Encode(bytes("fbffbf"))).toBe("+/+/")
        expect(await base64Encode(bytes("001083"))).toBe("ABCD")
        expect((await base64Decode("Zm9vYmE=")).toString()).toBe("fooba")
        expect((await base64Decode("+/+/")).toString("hex")).toBe("fbffbf")
        expect((await base64Decode("")).length).toBe(0)
    })
    test("all 256 byte values (vector from Node's encoder)", async () => {
        const all = Buffer.alloc(256)
        for (let i = 0; i < 256; i++) all[i] = i
        const want =
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZH" +
            "SElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn+AgYKDhIWGh4iJiouMjY6P" +
            "kJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKztLW2t7i5uru8vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX" +
            "2Nna29zd3t/g4eLj5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7/P3+/w=="
        expect(await base64Encode(all)).toBe(want)
        expect(await bufEq(await base64Decode(want), all)).toBe(true)
    })
    test("round trips, lengths 0..70", async () => {
        const v70 = Buffer.alloc(70)
        for (let i = 0; i < 70; i++) v70[i] = (i * 37 + 11) & 255
        expect(await base64Encode(v70)).toBe(
            "CzBVep/E6Q4zWH2ix+wRNluApcrvFDleg6jN8hc8YYar0PUaP2SJrtP4HUJnjLHW+yBFao+02f4jSG2St9wBJktwlbrfBA==",
        )
        for (let n = 0; n <= 70; n++) {
            const a = pattern(n, n + 1)
            const s = await base64Encode(a)
            expect(s.length).toBe(Math.ceil(n / 3) * 4)
            const b = await base64Decode(s)
            if (!(await bufEq(a, b))) throw new Error("round trip failed at length " + n)
            const prefix = v70.slice(0, n)
            if (!(await bufEq(await base64Decode(await base64Encode(prefix)), prefix))) throw new Error("prefix " + n)
            await ds.sleep(0) // a long computation without a yield panics the VM (InfiniteLoop)
        }
    })
    test("a 6 KB payload encodes and decodes in one go", async () => {
        const t0 = ds.millis()
        const big = await bigPattern(6000, 3)
        const s = await base64Encode(big)
        expect(s.length).toBe(8000)
        expect(await bufEq(await base64Decode(s), big)).toBe(true)
        console.log("6 KB base64 round trip: " + (ds.millis() - t0) + " ms")
    })
    test("decoder rejects malformed text", async () => {
        const bad = ["Zg=", "Zg", "Z===", "Zm9v=", "Zm=v", "Zm9\u00e9", "Zh==", "Zm9=", "Zm 9v", "=Zm9"]
        for (let i = 0; i < bad.length; i++) {
            let msg: string = undefined
            try {
                await base64Decode(bad[i])
            } catch (e: any) {
                msg = e.message
            }
            if (!msg) throw new Error("accepted " + bad[i])
            expect(contains(msg, "base64")).toBe(true)
        }
    })
})

describe("notecard requests", () => {
    test("encodeRequest limits and checks", async () => {
        expect(encodeRequest({ req: "hub.sync" })).toBe('{"req":"hub.sync"}')
        // the line (JSON + newline) may be exactly MAX_REQUEST_BYTES
        const over = '{"req":"x","s":""}'.length + 1
        const fit = { req: "x", s: repeatChar("a", MAX_REQUEST_BYTES - over) }
        expect(encodeRequest(fit).length).toBe(MAX_REQUEST_BYTES - 1)
        const big = { req: "x", s: repeatChar("a", MAX_REQUEST_BYTES - over + 1) }
        expect(contains((await errorOf(async () => encodeRequest(big))).message, "too large")).toBe(true)
        expect(contains((await errorOf(async () => encodeRequest({ file: "a" }))).message, "req")).toBe(true)
        expect(contains((await errorOf(async () => encodeRequest([1]))).message, "object")).toBe(true)
    })

    test("maxNotePayload is exact for the 8 KB limit", async () => {
        const body = { dev: "0011223344556677", seq: 12345 }
        const max = maxNotePayload("batch.qo", body, true)
        expect(max > 5900).toBe(true)
        const mk = async (n: number) => ({
            req: "note.add",
            file: "batch.qo",
            body,
            payload: await base64Encode(Buffer.alloc(n)),
            sync: true,
        })
        expect(encodeRequest(await mk(max)).length <= MAX_REQUEST_BYTES - 1).toBe(true)
        const tooBig = await mk(max + 1)
        expect(contains((await errorOf(async () => encodeRequest(tooBig))).message, "too large")).toBe(true)
    })

    test("a request over 8 KB is rejected before the bus; the driver stays usable", async () => {
        const r = await rig()
        await r.nc.begin()
        const n = r.spy.n
        const e = await errorOf(async () => {
            await r.nc.noteAdd("batch.qo", undefined, false, Buffer.alloc(6200))
        })
        expect(contains(e.message, "too large")).toBe(true)
        expect(r.spy.n).toBe(n)
        expect(r.nc.ok).toBe(true)
        expect((await r.nc.cardStatus()).connected).toBe(false)
    })

    test("1 KB request arrives intact; 30-byte chunks; segments paused", async () => {
        const r = await rig()
        await r.card.inputs({ connected: true })
        const body = { s: repeatChar("x", 960), n: -1.5, q: 'quo"te\\' }
        r.spy.log = []
        const total = await r.nc.noteAdd("big.qo", body)
        expect(total).toBe(1)
        const line = encodeRequest({ req: "note.add", file: "big.qo", body })
        expect(line.length > 1000).toBe(true)
        expect((await r.card.state()).lines[(await r.card.state()).lines.length - 1]).toBe(line)
        expect(JSON.stringify((await r.card.state()).queued[0].body)).toBe(JSON.stringify(body))
        // every chunk: [len][len bytes], len <= 30; they add up to the line plus "\n"
        const w = r.spy.writes()
        let sum = 0
        for (const x of w) {
            expect(x.tx.length).toBe(x.tx[0] + 1)
            expect(x.tx[0] <= 30).toBe(true)
            expect(x.rxLen).toBe(0)
            sum += x.tx[0]
        }
        // the resync "\n" of the first request, then the request line
        expect(sum).toBe(1 + line.length + 1)
        // no more than 250 bytes without a pause of >= 250 ms
        let seg = 0
        let last = -100000
        for (const x of w) {
            if (x.t - last >= 250) seg = 0
            seg += x.tx[0]
            last = x.t
            expect(seg <= 250).toBe(true)
        }
        expect((await r.card.state()).violations.length).toBe(0)
    })

    test("253-byte chunks, within the card's segment budget", async () => {
        const r = await rig({ chunkBytes: 253 })
        const body = { s: repeatChar("y", 1500) }
        await r.nc.noteAdd("big.qo", body)
        for (const x of r.spy.writes()) expect(x.tx[0] <= 253).toBe(true)
        expect(r.spy.writes().some(x => x.tx[0] === 253)).toBe(true)
        const st = await r.card.state()
        expect(JSON.stringify(st.queued[0].body)).toBe(JSON.stringify(body))
        expect(st.violations.length).toBe(0)
    })

    test("reply not ready at once: the driver polls, then reads it in chunks", async () => {
        const r = await rig({ pollMs: 50 }, { replyDelayMs: 600 })
        await r.card.inputs({ utcMs: UTC0 })
        const tSet = r.clock.now()
        await r.nc.begin()
        r.spy.log = []
        const t0 = r.clock.now()
        const st = await r.nc.hubSyncStatus()
        expect(contains(st.status, "{product-noexist}")).toBe(true)
        expect(r.clock.now() - t0 >= 600).toBe(true)
        expect(r.spy.queries() >= 10).toBe(true)
        // a reply longer than one chunk comes in several [0x00][n <= 30] reads
        r.spy.log = []
        const before = r.clock.now()
        const t = await r.nc.cardTime()
        // the card's time when it answered: between the request and the reply
        expect(t >= UTC0 / 1000 + Math.floor((before - tSet) / 1000)).toBe(true)
        expect(t <= UTC0 / 1000 + Math.floor((r.clock.now() - tSet) / 1000)).toBe(true)
        const reads = r.spy.log.filter(x => x.tx[0] === 0 && x.tx[1] > 0)
        expect(reads.length >= 2).toBe(true)
        for (const x of reads) {
            expect(x.tx[1] <= 30).toBe(true)
            expect(x.rxLen).toBe(x.tx[1] + 2)
        }
    })
})

describe("notecard helpers", () => {
    test("binary payload round-trips through note.add and a sync", async () => {
        const r = await rig()
        await r.card.inputs({ connected: true, utcMs: UTC0 })
        await r.nc.hubSet({ product: "org.example:coldtrace", sn: "0011223344556677", mode: "periodic", outbound: 15 })
        expect((await r.card.state()).product).toBe("org.example:coldtrace")
        expect((await r.card.state()).sn).toBe("0011223344556677")
        expect((await r.card.state()).outbound).toBe(15)
        const all = Buffer.alloc(256)
        for (let i = 0; i < 256; i++) all[i] = 255 - i
        const batch = all.concat(pattern(1700, 7))
        expect(await r.nc.noteAdd("batch.qo", { seq: 1 }, true, batch)).toBe(1)
        expect(await r.nc.noteAdd("batch.qo", undefined, false, Buffer.alloc(0))).toBe(2)
        expect((await r.card.outbound()).length).toBe(0) // the sync takes a while
        let st = await r.nc.hubSyncStatus()
        expect(st.sync).toBe(true)
        expect(contains(st.status, "{sync}")).toBe(true)
        await r.clock.sleep((await r.card.state()).syncMs)
        const out = await r.card.outbound()
        expect(out.length).toBe(2)
        expect(out[0].file).toBe("batch.qo")
        expect(out[0].body.seq).toBe(1)
        expect(out[0].time >= UTC0 / 1000).toBe(true)
        expect(await bufEq(await base64Decode(out[0].payload), batch)).toBe(true)
        expect(out[1].payload).toBe("")
        expect((await r.card.outbound()).length).toBe(0)
        st = await r.nc.hubSyncStatus()
        expect(contains(st.status, "{sync-end}")).toBe(true)
        expect(st.sync).toBe(false)
        expect(st.completed).toBe(0)
    })

    test("a 2 KB batch end to end", async () => {
        const r = await rig()
        await r.card.inputs({ connected: true, utcMs: UTC0 })
        await r.nc.hubSet({ product: "org.example:coldtrace", sn: "dev1", mode: "periodic", outbound: 60 })
        const batch = await bigPattern(2000, 11)
        const t0 = r.clock.now()
        expect(await r.nc.noteAdd("batch.qo", { seq: 7 }, true, batch)).toBe(1)
        const sendMs = r.clock.now() - t0
        let out = await r.card.outbound()
        while (out.length === 0 && r.clock.now() - t0 < 60000) {
            await r.clock.sleep(500)
            out = await r.card.outbound()
        }
        expect(out.length).toBe(1)
        expect(await bufEq(await base64Decode(out[0].payload), batch)).toBe(true)
        expect(r.nc.ok).toBe(true)
        expect((await r.card.state()).violations.length).toBe(0)
        console.log("2 KB note.add: " + sendMs + " device ms")
    })

    test("notes stay queued while disconnected and go on the next sync once connected", async () => {
        const r = await rig({}, { syncMs: 2000 })
        await r.nc.hubSet({ product: "org.example:coldtrace", mode: "periodic", outbound: 60 })
        await r.nc.noteAdd("batch.qo", { seq: 1 }, false, Buffer.from("one"))
        await r.nc.hubSync()
        await r.clock.sleep(10000)
        expect((await r.card.outbound()).length).toBe(0)
        const st = await r.nc.hubSyncStatus()
        expect(contains(st.status, "{disconnected}")).toBe(true)
        expect(st.requested).toBe(10)
        expect(await r.nc.isConnected()).toBe(false)
        expect((await r.nc.cardWireless()).bars).toBe(0)
        await r.card.inputs({ connected: true })
        expect(await r.nc.isConnected()).toBe(true)
        expect((await r.nc.cardWireless()).bars).toBe(3)
        await r.clock.sleep(1000)
        expect((await r.card.outbound()).length).toBe(0) // counted from the reconnection
        await r.clock.sleep(1000)
        const out = await r.card.outbound()
        expect(out.length).toBe(1)
        expect((await base64Decode(out[0].payload)).toString()).toBe("one")
        // periodic mode: without hub.sync the next note goes after `outbound` minutes
        await r.nc.noteAdd("batch.qo", { seq: 2 }, false, Buffer.from("two"))
        await r.clock.sleep(59 * 60000)
        expect((await r.card.outbound()).length).toBe(0)
        await r.clock.sleep(60000 + 2000)
        expect((await r.card.outbound()).length).toBe(1)
        // no ProductUID: nothing ever leaves
        const r2 = await rig({}, { syncMs: 10 })
        await r2.card.inputs({ connected: true })
        await r2.nc.noteAdd("batch.qo", undefined, true, Buffer.from("x"))
        await r2.clock.sleep(1000)
        expect((await r2.card.outbound()).length).toBe(0)
        expect(contains((await r2.nc.hubSyncStatus()).status, "{product-noexist}")).toBe(true)
    })

    test("card.time: valid, no network time, implausible", async () => {
        const r = await rig()
        expect(await r.nc.cardTime()).toBe(undefined) // {no-time} error reply
        expect(r.nc.ok).toBe(true)
        await r.card.inputs({ utcMs: UTC0 + 1500 })
        expect(await r.nc.cardTime()).toBe(UTC0 / 1000 + 1)
        await r.clock.sleep(10000)
        expect(await r.nc.cardTime()).toBe(UTC0 / 1000 + 11)
        await r.card.inputs({ utcMs: 86400000 }) // 1970-01-02: a card clock that was never set
        expect(await r.nc.cardTime()).toBe(undefined)
        await r.card.inputs({ utcMs: (MIN_VALID_UTC - 1) * 1000 })
        expect(await r.nc.cardTime()).toBe(undefined)
        await r.card.inputs({ utcMs: NaN })
        expect(await r.nc.cardTime()).toBe(undefined)
    })

    test("err replies surface as NotecardError; the card is still ok", async () => {
        const r = await rig()
        let e = await errorOf(async () => {
            await r.nc.request({ req: "card.nothing" })
        })
        expect(e instanceof NotecardError).toBe(true)
        expect(e.err).toBe("unknown request")
        expect(e.req).toBe("card.nothing")
        expect(contains(e.message, "unknown request")).toBe(true)
        e = await errorOf(async () => {
            await r.nc.noteAdd("config.db", { a: 1 })
        })
        expect(e instanceof NotecardError).toBe(true)
        e = await errorOf(async () => {
            await r.nc.request({ req: "hub.set", mode: "sometimes" })
        })
        expect(contains(e.err, "unknown mode")).toBe(true)
        e = await errorOf(async () => {
            await r.nc.hubSet({ product: "p", mode: "sometimes" })
        })
        expect(e instanceof NotecardError).toBe(false) // refused by the driver, never sent
        // transaction() returns the reply with its err
        const rsp = await r.nc.transaction({ req: "card.time" })
        expect(contains(rsp.err, "{no-time}")).toBe(true)
        expect(r.nc.ok).toBe(true)
        expect(r.nc.failures).toBe(0)
        // storage full is an err too
        const r2 = await rig({}, { capacityBytes: 100 })
        await r2.nc.noteAdd("b.qo", undefined, false, Buffer.alloc(60))
        e = await errorOf(async () => {
            await r2.nc.noteAdd("b.qo", undefined, false, Buffer.alloc(60))
        })
        expect(e.hasCode("{storage}")).toBe(true)
        expect((await r2.nc.cardStatus()).storage).toBe(80)
    })
})

describe("notecard faults", () => {
    test("dead modem (NACK): ok=false at once, back-off without bus traffic, recovery", async () => {
        const r = await rig()
        await r.nc.begin()
        expect(r.nc.ok).toBe(true)
        await r.card.inputs({ fault: "nack" })
        let e = await errorOf(async () => {
            await r.nc.cardStatus()
        })
        expect(contains(e.message, "no ack")).toBe(true)
        expect(r.nc.ok).toBe(false)
        // the first retry is immediate (a glitch), then it backs off
        const n0 = r.spy.n
        e = await errorOf(async () => {
            await r.nc.cardStatus()
        })
        expect(r.spy.n > n0).toBe(true)
        const n1 = r.spy.n
        e = await errorOf(async () => {
            await r.nc.cardStatus()
        })
        expect(contains(e.message, "not answering")).toBe(true)
        expect(await r.nc.retryBegin()).toBe(false)
        expect(r.spy.n).toBe(n1) // too early: no bus traffic
        await r.clock.sleep(1100)
        expect(await r.nc.retryBegin()).toBe(false) // still dead: next wait 2 s
        const n2 = r.spy.n
        expect(n2 > n1).toBe(true)
        await r.clock.sleep(1100)
        expect(await r.nc.retryBegin()).toBe(false)
        expect(r.spy.n).toBe(n2)
        // the modem comes back
        await r.card.inputs({ fault: "none" })
        await r.clock.sleep(1000)
        expect(await r.nc.retryBegin()).toBe(true)
        expect(r.nc.ok).toBe(true)
        expect((await r.nc.cardStatus()).status).toBe("{normal}")
        // the back-off starts over
        await r.card.inputs({ fault: "nack" })
        await errorOf(async () => {
            await r.nc.cardStatus()
        })
        await r.card.inputs({ fault: "none" })
        expect((await r.nc.cardStatus()).status).toBe("{normal}")
    })

    test("no card on the bus (reads 0xFF) and a hung card (timeout)", async () => {
        const r = await rig({ timeoutMs: 2000 })
        await r.card.inputs({ fault: "bus_ff" })
        let e = await errorOf(async () => {
            await r.nc.hubSync()
        })
        expect(contains(e.message, "0xFF")).toBe(true)
        expect(r.nc.ok).toBe(false)
        expect(r.nc.lastError).toBe(e.message)

        const h = await rig({ timeoutMs: 2000 })
        await h.nc.begin()
        await h.card.inputs({ fault: "hang" })
        const t0 = h.clock.now()
        e = await errorOf(async () => {
            await h.nc.hubSync()
        })
        const dt = h.clock.now() - t0
        expect(contains(e.message, "timeout")).toBe(true)
        expect(h.nc.ok).toBe(false)
        expect(dt >= 2000).toBe(true)
        expect(dt < 2000 + 2 * 50 + 30 * 20).toBe(true)
        await h.card.inputs({ fault: "none" })
        // the immediate retry resyncs first; the request then goes through
        expect(await h.nc.retryBegin()).toBe(true)
        await h.nc.hubSync()
        expect((await h.card.state()).syncRequested).toBe(true)
    })

    test("xfer throwing mid-request or mid-reply leaves the driver usable", async () => {
        const r = await rig()
        await r.card.inputs({ utcMs: UTC0, connected: true })
        await r.nc.begin()
        // mid-write: the third chunk of a note.add fails; the card holds a partial line
        let k = 0
        r.spy.throwWhen = (x: Xfer, n: number) => x.tx[0] > 0 && ++k === 3
        let e = await errorOf(async () => {
            await r.nc.noteAdd("batch.qo", { s: repeatChar("z", 200) })
        })
        expect(contains(e.message, "bus error")).toBe(true)
        expect(r.nc.ok).toBe(false)
        expect((await r.card.state()).queued.length).toBe(0)
        // the next request resyncs (the partial line is ended and answered with an error) and works
        const before = (await r.card.state()).lines.length
        expect(await r.nc.noteAdd("batch.qo", { s: "ok" })).toBe(1)
        expect(r.nc.ok).toBe(true)
        expect((await r.card.state()).queued.length).toBe(1)
        const seen = (await r.card.state()).lines.slice(before)
        expect(seen.length).toBe(3) // the partial line ended by "\n", a blank line, the note.add
        expect(contains(seen[0], '{"req":"note.add"')).toBe(true)
        expect(seen[1]).toBe("")
        expect(contains(seen[2], '"s":"ok"')).toBe(true)
        // mid-reply: the first data read of a card.time reply fails; the stale reply is not taken
        // for the next request's
        r.spy.throwWhen = (x: Xfer, n: number) => x.tx[0] === 0 && x.tx[1] > 0
        e = await errorOf(async () => {
            await r.nc.cardTime()
        })
        expect(e !== undefined).toBe(true)
        const st = await r.nc.cardStatus()
        expect(st.connected).toBe(true)
        expect(st.status).toBe("{normal}")
        expect(await r.nc.cardTime()).toBe(UTC0 / 1000)
        // a throw during the resync itself
        r.spy.throwWhen = (x: Xfer, n: number) => true
        await errorOf(async () => {
            await r.nc.hubSync()
        })
        r.spy.throwWhen = (x: Xfer, n: number) => x.tx.length === 2 && x.tx[0] === 1 && x.tx[1] === 0x0a
        e = await errorOf(async () => {
            await r.nc.hubSync()
        })
        expect(contains(e.message, "bus error")).toBe(true)
        await r.clock.sleep(1100)
        await r.nc.hubSync()
        expect(r.nc.ok).toBe(true)
        expect((await r.card.state()).violations.length).toBe(0)
    })

    test("a cmd is sent without waiting for a reply", async () => {
        const r = await rig()
        await r.nc.hubSet({ product: "org.example:coldtrace" })
        r.spy.log = []
        const rsp = await r.nc.transaction({ cmd: "hub.sync" })
        expect(JSON.stringify(rsp)).toBe("{}")
        expect(r.spy.queries()).toBe(0)
        expect((await r.card.state()).syncRequested).toBe(true)
        expect((await r.nc.cardStatus()).status).toBe("{normal}")
    })

    test("concurrent requests are serialized by the lock", async () => {
        const r = await rig()
        await r.card.inputs({ utcMs: UTC0, connected: true })
        let other: any = undefined
        setTimeout(async () => {
            other = await r.nc.cardStatus() // another fiber
        }, 0)
        const mine = await r.nc.noteAdd("batch.qo", { s: repeatChar("c", 300) })
        const t = await r.nc.cardTime()
        while (!other) await ds.sleep(5)
        expect(mine).toBe(1)
        expect(t >= UTC0 / 1000).toBe(true)
        expect(other.connected).toBe(true)
        // every line the card received is whole: no malformed-request errors
        const lines: string[] = (await r.card.state()).lines
        for (const l of lines) expect(l.length === 0 || (JSON.parse(l) as any).req !== undefined).toBe(true)
        expect(lines.filter(l => l.length > 0).length).toBe(3)
    })
})
