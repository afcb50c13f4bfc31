import * as ds from "@devicescript/core"
import { describe, test, expect } from "@devicescript/test"
import { ItemDecoder, ItemEncoder, ITEM_FULL } from "../record/items"
import { sampleRecord, alarmRecord, timeRecord, sealRecord, configRecord, SFLAG_NO_READING, SFLAG_CONFIG_MISMATCH } from "../record/record"

/**
 * Compact items (docs/format.md section 4): the firmware's ItemEncoder and ItemDecoder.
 *
 * Every sequence is encoded, its item structure checked against what the firmware's greedy rule
 * must produce ("F" full item, "R<n>/<step>" run), and decoded back to the same canonical bytes.
 * VM facts that shape this file: a fiber that runs long without yielding panics (InfiniteLoop), so
 * long loops `await ds.sleep(0)`; `%` on numbers past 2^31 is wrong, so the PRNG stays small.
 */

function hex(s: string): Buffer {
    return Buffer.from(s, "hex")
}

/** small deterministic PRNG (values stay far below 2^31) */
class Rng {
    x: number
    constructor(seed: number) {
        this.x = seed
    }
    next(): number {
        this.x = (this.x * 75 + 74) % 65537
        return this.x
    }
    /** integer in lo..hi */
    range(lo: number, hi: number): number {
        return lo + (this.next() % (hi - lo + 1))
    }
}

/** Builds a record sequence: seq counts up, the sample state carries over between samples. */
class Seq {
    recs: Buffer[] = []
    seq: number
    up = 0 // ms
    tc = 3200
    cj = 1600
    sr = 0
    fl = 0
    constructor(first: number) {
        this.seq = first
    }
    /** a sample `dtMs` after the previous one (whatever kind), tc changed by `dTc` */
    s(dtMs: number, dTc: number): Seq {
        this.up += dtMs
        this.tc += dTc
        this.recs.push(sampleRecord(this.seq++, this.up, this.tc, this.cj, this.sr, this.fl))
        return this
    }
    /** n samples `stepS` seconds apart with tc changed by `dTc` each */
    many(n: number, stepS: number, dTc: number): Seq {
        for (let i = 0; i < n; ++i) this.s(stepS * 1000, dTc)
        return this
    }
    alarm(dtMs: number): Seq {
        this.up += dtMs
        this.recs.push(alarmRecord(this.seq++, this.up, 1, this.tc))
        return this
    }
    time(dtMs: number): Seq {
        this.up += dtMs
        this.recs.push(timeRecord(this.seq++, this.up, 1767225600123 + this.up, 3))
        return this
    }
    seal(dtMs: number): Seq {
        this.up += dtMs
        this.recs.push(sealRecord(this.seq++, this.up, 3, 42, hex("00112233445566778899aabbccddeeff")))
        return this
    }
    other(rec: Buffer): Seq {
        this.recs.push(rec)
        this.seq++
        return this
    }
}

/** let other fibers run: the VM panics (InfiniteLoop) on a fiber that runs long without yielding */
async function yieldNow() {
    await ds.sleep(0)
}

async function encodeAll(recs: Buffer[]): Promise<Buffer> {
    const enc = new ItemEncoder()
    let buf = Buffer.alloc(0)
    for (let i = 0; i < recs.length; ++i) {
        if (i % 32 === 31) await yieldNow()
        buf = enc.append(buf, recs[i])
    }
    return buf
}

/** length of the item at `off` (valid items only) */
function itemLen(buf: Buffer, off: number): number {
    if (buf[off] === ITEM_FULL) return 3 + buf[off + 2]
    return 4 + ((buf[off + 1] + 1) >> 1)
}

/** "F R19/60 F": the items of a stream, for comparing against the greedy rule */
function shape(buf: Buffer): string {
    let s = ""
    let off = 0
    while (off < buf.length) {
        if (s.length) s += " "
        if (buf[off] === ITEM_FULL) s += "F"
        else s += `R${buf[off + 1]}/${buf.getAt(off + 2, "u16")}`
        off += itemLen(buf, off)
    }
    return s
}

/** decode the whole stream and compare with `recs`, record by record */
async function checkDecode(buf: Buffer, recs: Buffer[], what: string) {
    const first = recs.length ? recs[0].getAt(0, "u32") : 0
    const d = new ItemDecoder(first)
    const out: Buffer[] = []
    const ok = d.decode(buf, 0, buf.length, out)
    expect(`${what}: ${ok} ${d.error}`).toBe(`${what}: true undefined`)
    expect(`${what}: ${out.length} records`).toBe(`${what}: ${recs.length} records`)
    await yieldNow()
    for (let i = 0; i < recs.length; ++i) {
        if (i % 16 === 15) await yieldNow()
        expect(`${what} #${i}: ${out[i].toString("hex")}`).toBe(`${what} #${i}: ${recs[i].toString("hex")}`)
    }
    expect(d.seq).toBe(first + recs.length)
}

/** encode, check the item structure, decode back */
async function roundTrip(sq: Seq, wantShape: string, what: string): Promise<Buffer> {
    const buf = await encodeAll(sq.recs)
    expect(`${what}: ${shape(buf)}`).toBe(`${what}: ${wantShape}`)
    await checkDecode(buf, sq.recs, what)
    return buf
}

/** "R<n>/<step>" repeated for a run of `n` samples split at 255 */
function runs(n: number, step: number): string {
    let s = ""
    while (n > 0) {
        const k = n > 255 ? 255 : n
        if (s.length) s += " "
        s += `R${k}/${step}`
        n -= k
    }
    return s
}

/** a decoder that must fail on `buf` with an error containing `why` */
function expectFail(buf: Buffer, why: string, what: string) {
    const d = new ItemDecoder(7)
    const ok = d.decode(buf, 0, buf.length, [])
    expect(`${what}: ${ok}`).toBe(`${what}: false`)
    expect(`${what}: ${d.error && d.error.indexOf(why) >= 0}`).toBe(`${what}: true`)
}

describe("items: round trips and the greedy encoder", () => {
    test("a single sample and a single non-sample are full items", async () => {
        const a = new Seq(0).s(60000, 0)
        const buf = await roundTrip(a, "F", "one sample")
        // 0x01 kind len payload: the canonical record without its seq
        expect(buf.length).toBe(15)
        expect(buf.toString("hex")).toBe("01" + a.recs[0].slice(4).toString("hex"))
        await roundTrip(new Seq(5).alarm(1), "F", "one alarm")
    })

    test("stable samples: one full item, then one run", async () => {
        const buf = await roundTrip(new Seq(10).many(20, 60, 0), "F R19/60", "stable")
        expect(buf.length).toBe(15 + 4 + 10)
        // run header: n, step u16, then nibbles all zero
        expect(buf.slice(15, 19).toString("hex")).toBe("02133c00")
        for (let i = 19; i < buf.length; ++i) expect(buf[i]).toBe(0)
    })

    test("drifting temperatures stay in one run", async () => {
        await roundTrip(new Seq(0).many(40, 60, -3), "F R39/60", "cooling by 3")
        await roundTrip(new Seq(0).many(40, 60, 7), "F R39/60", "warming by 7")
        await roundTrip(new Seq(0).many(40, 60, -8), "F R39/60", "cooling by 8")
        await roundTrip(new Seq(0).many(40, 60, 1).many(40, 60, -1), "F R79/60", "up and down")
    })

    test("deltas at the -8 and 7 boundaries", async () => {
        const sq = new Seq(0).s(0, 0)
        for (let i = 0; i < 10; ++i) sq.s(300000, -8).s(300000, 7)
        const buf = await roundTrip(sq, "F R20/300", "alternating -8/7")
        // low nibble first: -8 = 0x8, 7 = 0x7
        for (let i = 19; i < buf.length; ++i) expect(buf[i]).toBe(0x78)
    })

    test("deltas of -9 and 8 break runs with full items", async () => {
        await roundTrip(
            new Seq(0).s(0, 0).s(60000, 1).s(60000, -9).s(60000, 1).s(60000, 8).s(60000, 1),
            "F R1/60 F R1/60 F R1/60",
            "-9 and 8",
        )
        await roundTrip(new Seq(0).many(5, 60, 0).s(60000, 100).many(5, 60, 0), "F R4/60 F R5/60", "step change of temperature")
        await roundTrip(
            new Seq(0).many(3, 60, 0).s(60000, -1000).s(60000, 7).s(60000, 8).s(60000, -8),
            "F R2/60 F R1/60 F R1/60",
            "cold step",
        )
    })

    test("changes of time step", async () => {
        await roundTrip(new Seq(0).many(5, 60, 0).many(5, 120, 0).many(3, 60, 1), "F R4/60 R5/120 R3/60", "60 s, 120 s, 60 s")
        // not a whole number of seconds, no time at all, time going back: full items
        await roundTrip(new Seq(0).many(3, 60, 0).s(1500, 0).many(2, 60, 0), "F R2/60 F R2/60", "1.5 s")
        await roundTrip(new Seq(0).many(3, 60, 0).s(0, 0).many(2, 60, 0), "F R2/60 F R2/60", "same uptime")
        await roundTrip(new Seq(0).many(3, 60, 0).s(-60000, 0).many(2, 60, 0), "F R2/60 F R2/60", "uptime back")
        // the step is a u16 of seconds: 65535 s fits, 65536 s does not
        await roundTrip(new Seq(0).s(0, 0).s(65535000, 1).s(65535000, 1), "F R2/65535", "step 65535 s")
        await roundTrip(new Seq(0).s(0, 0).s(65536000, 1).s(60000, 1), "F F R1/60", "step 65536 s")
        await roundTrip(new Seq(0).s(0, 0).s(1000, 1).s(1000, 1), "F R2/1", "step 1 s")
    })

    test("faulted samples break runs, and run among themselves", async () => {
        const sq = new Seq(0).many(5, 60, 0)
        sq.sr = 0x01 // OPEN
        sq.s(60000, 0).s(60000, 0)
        sq.sr = 0
        sq.many(3, 60, 0)
        sq.fl = SFLAG_NO_READING
        sq.tc = 0
        sq.cj = 0
        sq.s(60000, 0).s(60000, 0).s(60000, 0)
        sq.fl = 0
        sq.tc = 3200
        sq.cj = 1600
        sq.s(60000, 0).s(60000, 0)
        sq.fl = SFLAG_CONFIG_MISMATCH
        sq.s(60000, 0)
        sq.fl = 0
        sq.s(60000, 0)
        sq.cj = 1601 // the cold junction moved: not derivable
        sq.s(60000, 0).s(60000, 0)
        await roundTrip(sq, "F R4/60 F R1/60 F R2/60 F R2/60 F R1/60 F F F R1/60", "faults")
    })

    test("non-sample records in between: the run goes on from the last sample", async () => {
        const sq = new Seq(100).many(3, 60, 0).alarm(1).s(59999, 1).s(60000, 1).time(500).seal(1).s(59499, 0)
        sq.other(configRecord(sq.seq, sq.up + 10, hex("0bbd368798f7bd4a54804e88359d5d8a")))
        sq.s(60000, 0)
        await roundTrip(sq, "F R2/60 F R2/60 F F R1/60 F R1/60", "alarm, time, seal, config")
        // a sample right after a non-sample whose uptime does not fit the step: full
        await roundTrip(new Seq(0).many(3, 60, 0).alarm(1).s(60000, 0), "F R2/60 F F", "off by the alarm's ms")
        // records before the first sample: the first sample is full
        await roundTrip(new Seq(0).time(5).alarm(5).many(4, 60, 0), "F F F R3/60", "samples after others")
    })

    test("a run rolls over to a new run after 255 samples", async () => {
        await roundTrip(new Seq(0).many(256, 300, 0), "F R255/300", "256")
        await roundTrip(new Seq(0).many(257, 300, 0), "F R255/300 R1/300", "257")
        const buf = await roundTrip(new Seq(0).many(600, 300, 1), "F " + runs(599, 300), "600")
        expect(buf.length).toBe(15 + (4 + 128) * 2 + 4 + 45)
    })

    test("odd and even n: byte count and a zero pad nibble", async () => {
        for (let n = 1; n <= 8; ++n) {
            const sq = new Seq(0).s(0, 0)
            for (let i = 0; i < n; ++i) sq.s(60000, -1) // nibble 0xf: a pad must still be 0
            const buf = await roundTrip(sq, "F " + runs(n, 60), `n=${n}`)
            expect(buf.length).toBe(15 + 4 + ((n + 1) >> 1))
            const lastByte = buf[buf.length - 1]
            expect(lastByte).toBe(n & 1 ? 0x0f : 0xff)
        }
    })

    test("random mixtures round trip", async () => {
        for (let seed = 1; seed <= 6; ++seed) {
            const rng = new Rng(seed * 1000)
            const sq = new Seq(seed * 17)
            for (let i = 0; i < 200; ++i) {
                const r = rng.range(0, 99)
                if (r < 70) sq.s(60000, rng.range(-9, 8))
                else if (r < 78) sq.s(120000, rng.range(-3, 3))
                else if (r < 82) sq.s(rng.range(1, 3000), 0)
                else if (r < 86) {
                    sq.sr = rng.range(0, 3) ? 0 : 0x04
                    sq.s(60000, 0)
                } else if (r < 90) {
                    sq.cj += rng.range(-1, 1)
                    sq.s(60000, 0)
                } else if (r < 95) sq.alarm(rng.range(1, 10))
                else sq.time(rng.range(0, 10))
            }
            const buf = await encodeAll(sq.recs)
            await checkDecode(buf, sq.recs, `seed ${seed}`)
            await ds.sleep(0)
        }
    })
})

describe("items: resume after decode", () => {
    /** encode recs[0..k) , decode that, resume a new encoder, append the rest: same bytes as one encoder */
    async function checkResume(recs: Buffer[], k: number, what: string) {
        const whole = await encodeAll(recs)
        const enc1 = new ItemEncoder()
        let buf = Buffer.alloc(0)
        for (let i = 0; i < k; ++i) {
            if (i % 32 === 31) await yieldNow()
            buf = enc1.append(buf, recs[i])
        }
        const d = new ItemDecoder(recs[0].getAt(0, "u32"))
        expect(d.decode(buf, 0, buf.length, undefined)).toBe(true)
        // the decoder's view of the stream is the encoder's own state
        expect(`${what} ref: ${d.ref ? d.ref.toString("hex") : "-"}`).toBe(`${what} ref: ${enc1.ref ? enc1.ref.toString("hex") : "-"}`)
        const enc2 = new ItemEncoder()
        enc2.resume(d)
        expect(`${what} runAt: ${enc2.runAt}`).toBe(`${what} runAt: ${enc1.runAt}`)
        for (let i = k; i < recs.length; ++i) {
            if (i % 32 === 31) await yieldNow()
            buf = enc2.append(buf, recs[i])
        }
        expect(`${what} k=${k}: ${buf.toString("hex")}`).toBe(`${what} k=${k}: ${whole.toString("hex")}`)
    }

    test("every split point of a mixed sequence", async () => {
        const sq = new Seq(3).many(4, 60, 1).alarm(1).s(59999, 0).s(60000, -8).s(60000, 8).many(3, 120, 0)
        sq.sr = 1
        sq.many(2, 60, 0)
        sq.sr = 0
        sq.time(3).many(5, 60, 2).s(1500, 0).many(3, 60, 0)
        for (let k = 1; k < sq.recs.length; ++k) {
            await checkResume(sq.recs, k, "mixed")
            await ds.sleep(0)
        }
    })

    test("split points around a full run of 255", async () => {
        const sq = new Seq(0).many(300, 60, 0)
        const ks = [1, 2, 3, 254, 255, 256, 257, 258, 299]
        for (const k of ks) {
            await checkResume(sq.recs, k, "long")
            await ds.sleep(0)
        }
    })

    test("resume in a stream behind a header (as in a flash block)", async () => {
        const sq = new Seq(50).many(7, 60, 1).alarm(1).s(59999, 1)
        const hdr = Buffer.alloc(36)
        hdr.setAt(0, "u32", 50)
        // one encoder from the header on
        const e1 = new ItemEncoder()
        let whole = hdr
        for (const r of sq.recs) whole = e1.append(whole, r)
        for (let k = 1; k < sq.recs.length; ++k) {
            const e0 = new ItemEncoder()
            let buf = hdr
            for (let i = 0; i < k; ++i) buf = e0.append(buf, sq.recs[i])
            const d = new ItemDecoder(50)
            expect(d.decode(buf, 36, buf.length, undefined)).toBe(true)
            const e2 = new ItemEncoder()
            e2.resume(d)
            for (let i = k; i < sq.recs.length; ++i) buf = e2.append(buf, sq.recs[i])
            expect(`k=${k}: ${buf.toString("hex")}`).toBe(`k=${k}: ${whole.toString("hex")}`)
        }
    })

    test("append never changes the stream it was given", async () => {
        const sq = new Seq(0).many(6, 60, 1).alarm(1)
        const enc = new ItemEncoder()
        let buf = Buffer.alloc(0)
        for (const r of sq.recs) {
            const before = buf.toString("hex")
            const grown = enc.append(buf, r)
            expect(buf.toString("hex")).toBe(before)
            expect(grown.length > buf.length || grown.toString("hex") !== before).toBe(true)
            buf = grown
        }
    })
})

describe("items: decoder errors", () => {
    test("a run with no reference sample", async () => {
        expectFail(hex("02013c0000"), "reference", "run first")
        // a non-sample before it is no reference either
        const alarm = alarmRecord(7, 100, 1, 5)
        const buf = hex("01").concat(alarm.slice(4)).concat(hex("02013c0000"))
        expectFail(buf, "reference", "run after an alarm")
    })

    test("truncated items", async () => {
        const s = sampleRecord(7, 60000, 3200, 1600, 0, 0)
        const full = hex("01").concat(s.slice(4))
        const good = full.concat(hex("02033c000000"))
        const d = new ItemDecoder(7)
        const out: Buffer[] = []
        expect(d.decode(good, 0, good.length, out)).toBe(true)
        expect(out.length).toBe(4)
        for (let cut = 1; cut < good.length; ++cut) {
            if (cut === full.length) continue // ends between items: valid
            expectFail(good.slice(0, cut), "", `cut at ${cut}`)
        }
        // the decoded range ends early: same as a cut
        const d2 = new ItemDecoder(7)
        expect(d2.decode(good, 0, good.length - 1, [])).toBe(false)
        // a full item shorter than a record can be
        expectFail(hex("0101030000"), "full item", "len 3")
    })

    test("bad run headers", async () => {
        const full = hex("01").concat(sampleRecord(7, 60000, 3200, 1600, 0, 0).slice(4))
        expectFail(full.concat(hex("02003c00")), "run", "n = 0")
        expectFail(full.concat(hex("0201000000")), "run", "step = 0")
    })

    test("unknown item tags", async () => {
        expectFail(hex("00"), "tag", "tag 0")
        expectFail(hex("03"), "tag", "tag 3")
        expectFail(hex("ff0000"), "tag", "tag ff")
        const full = hex("01").concat(sampleRecord(7, 60000, 3200, 1600, 0, 0).slice(4))
        expectFail(full.concat(hex("04")), "tag", "tag 4 after a good item")
    })

    test("a non-zero pad nibble", async () => {
        const full = hex("01").concat(sampleRecord(7, 60000, 3200, 1600, 0, 0).slice(4))
        expectFail(full.concat(hex("02013c0010")), "pad", "n=1 pad 1")
        expectFail(full.concat(hex("02033c0000f0")), "pad", "n=3 pad f")
        const d = new ItemDecoder(7)
        const okPad = full.concat(hex("02033c00000f"))
        expect(d.decode(okPad, 0, okPad.length, [])).toBe(true)
    })

    test("unknown kinds are kept whole; only samples are references", async () => {
        const odd = Buffer.alloc(6 + 7)
        odd.setAt(4, "u8", 200)
        odd.setAt(5, "u8", 7)
        odd.setAt(6, "u32", 1234)
        odd[12] = 0xab
        const buf = hex("01").concat(odd.slice(4))
        const d = new ItemDecoder(9)
        const out: Buffer[] = []
        expect(d.decode(buf, 0, buf.length, out)).toBe(true)
        odd.setAt(0, "u32", 9)
        expect(out[0].toString("hex")).toBe(odd.toString("hex"))
        expectFail(buf.concat(hex("02013c0000")), "reference", "run after an unknown kind")
    })

    test("decoding a sub-range of a buffer", async () => {
        const sq = new Seq(20).many(5, 60, 1)
        const items = await encodeAll(sq.recs)
        const buf = hex("eeeeee").concat(items).concat(hex("ffff"))
        const d = new ItemDecoder(20)
        const out: Buffer[] = []
        expect(d.decode(buf, 3, 3 + items.length, out)).toBe(true)
        expect(out.length).toBe(5)
        expect(out[4].toString("hex")).toBe(sq.recs[4].toString("hex"))
    })
})

describe("items: size", () => {
    /** dry ice: tc within +-3 counts of -10048 (-78.5 C), cold junction steady, every 300 s */
    function dryIce(rng: Rng, seq: number): Buffer {
        return sampleRecord(seq, 300000 * seq + 2000, -10048 + rng.range(-3, 3), 1472, 0, 0)
    }

    test("8640 stable dry-ice samples (30 days at 300 s) in one stream: <= 0.6 byte per sample", async () => {
        const N = 8640
        let rng = new Rng(4242)
        const enc = new ItemEncoder()
        let buf = Buffer.alloc(0)
        for (let i = 0; i < N; ++i) {
            if (i % 200 === 0) await ds.sleep(0)
            buf = enc.append(buf, dryIce(rng, i))
        }
        const perSample = buf.length / N
        console.log(`items: ${N} dry-ice samples in ${buf.length} bytes = ${Math.round(perSample * 1000) / 1000} byte/sample`)
        expect(perSample <= 0.6).toBe(true)
        // one full item, then runs of 255: exactly that many bytes
        const nRuns = Math.ceil((N - 1) / 255)
        expect(buf.length).toBe(15 + 4 * nRuns + 128 * (nRuns - 1) + ((N - 1 - 255 * (nRuns - 1) + 1) >> 1))
        // decode item by item (yielding in between) and compare with the samples regenerated
        rng = new Rng(4242)
        const d = new ItemDecoder(0)
        let off = 0
        let seq = 0
        while (off < buf.length) {
            const out: Buffer[] = []
            const end = off + itemLen(buf, off)
            expect(d.decode(buf, off, end, out)).toBe(true)
            for (const r of out) {
                const want = dryIce(rng, seq++)
                if (r.toString("hex") !== want.toString("hex")) expect(r.toString("hex")).toBe(want.toString("hex"))
            }
            off = end
            await ds.sleep(0)
        }
        expect(seq).toBe(N)
    })

    test("the same samples in 192-byte flash blocks (as LogStore packs them)", async () => {
        const N = 8640
        const rng = new Rng(4242)
        let blocks = 0
        let itemBytes = 0
        let enc: ItemEncoder = undefined
        let blk: Buffer = undefined
        for (let i = 0; i < N; ++i) {
            if (i % 200 === 0) await ds.sleep(0)
            const rec = dryIce(rng, i)
            let grown: Buffer = undefined
            if (blk) {
                const trial = new ItemEncoder()
                trial.ref = enc.ref
                trial.runAt = enc.runAt
                trial.runN = enc.runN
                trial.runStep = enc.runStep
                grown = trial.append(blk, rec)
                if (grown.length <= 192) {
                    enc = trial
                    blk = grown
                    continue
                }
            }
            if (blk) itemBytes += blk.length - 36
            enc = new ItemEncoder()
            blk = enc.append(Buffer.alloc(36), rec)
            blocks++
        }
        itemBytes += blk.length - 36
        const flash = Math.round((blocks * 192 * 1000) / N) / 1000
        console.log(
            `flash: ${N} samples in ${blocks} blocks: ${Math.round((itemBytes * 1000) / N) / 1000} byte/sample of items, ${flash} byte/sample with headers`,
        )
        expect(itemBytes / N <= 0.6).toBe(true)
    })
})
