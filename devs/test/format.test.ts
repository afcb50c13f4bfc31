import { describe, test, expect } from "@devicescript/test"
import { digest } from "@devicescript/crypto"
import { VECTORS } from "./vectors.gen"
import {
    sampleRecord,
    bootRecord,
    configRecord,
    timeRecord,
    alarmRecord,
    gapRecord,
    recordSeq,
    recordKind,
    recordLengthAt,
    KIND_SAMPLE,
    KIND_BOOT,
    KIND_CONFIG,
    KIND_TIME,
    KIND_ALARM,
    KIND_GAP,
    HEADER_LEN,
} from "../record/record"
import { genesisHead, nextHead, bufEq } from "../chain/chain"
import { encodeBatch, ackKey, parseAck, ACK_NONE } from "../batch/batch"

/**
 * The firmware encoders against the shared vectors (docs/vectors/format-v1.json, as the generated
 * module vectors.gen.ts). The host checks its own encoders against the same data in test/format.test.ts.
 */

function hex(s: string): Buffer {
    return Buffer.from(s, "hex")
}

const DEVID = hex(VECTORS.devid)
const DEVKEY = hex(VECTORS.devkey)

/** The vector record with this seq (any kind), as the loosely typed object the generator wrote. */
function vrec(seq: number): any {
    const recs: any[] = VECTORS.records
    for (const r of recs) if (r.seq === seq) return r
    throw new Error(`no vector record ${seq}`)
}

/** Encode a vector record with the firmware encoder of its kind; undefined for kinds the firmware never writes. */
function encode(r: any): Buffer {
    if (r.kind === KIND_SAMPLE) return sampleRecord(r.seq, r.uptime, r.tc, r.cj, r.sr, r.sflags)
    if (r.kind === KIND_BOOT) return bootRecord(r.seq, r.uptime, r.boot, r.reason)
    if (r.kind === KIND_CONFIG) return configRecord(r.seq, r.uptime, hex(r.hash))
    if (r.kind === KIND_TIME) return timeRecord(r.seq, r.uptime, r.utc, r.source)
    if (r.kind === KIND_ALARM) return alarmRecord(r.seq, r.uptime, r.type, r.tc)
    if (r.kind === KIND_GAP) return gapRecord(r.seq, r.uptime, r.first, r.last)
    return undefined
}

function countKind(kind: number): number {
    let n = 0
    const recs: any[] = VECTORS.records
    for (const r of recs) if (r.kind === kind) n++
    return n
}

/** every vector record of `kind` encodes to the vector bytes */
function checkKind(kind: number) {
    const recs: any[] = VECTORS.records
    let n = 0
    for (const r of recs) {
        if (r.kind !== kind) continue
        const b = encode(r)
        expect(`seq ${r.seq}: ${b.toString("hex")}`).toBe(`seq ${r.seq}: ${r.hex}`)
        n++
    }
    expect(n > 0).toBe(true)
}

describe("records", () => {
    test("the vectors cover every kind the firmware writes", () => {
        expect(countKind(KIND_SAMPLE) >= 5).toBe(true)
        expect(countKind(KIND_BOOT) >= 2).toBe(true)
        expect(countKind(KIND_CONFIG) >= 1).toBe(true)
        expect(countKind(KIND_TIME) >= 2).toBe(true)
        expect(countKind(KIND_ALARM) >= 3).toBe(true)
        expect(countKind(KIND_GAP) >= 1).toBe(true)
    })
    test("sample", () => {
        checkKind(KIND_SAMPLE)
    })
    test("boot", () => {
        checkKind(KIND_BOOT)
    })
    test("config", () => {
        checkKind(KIND_CONFIG)
    })
    test("config hash is SHA-256 of the configuration text, first 16 bytes", () => {
        const h = digest("sha256", hex(VECTORS.configText)).slice(0, 16)
        expect(h.toString("hex")).toBe(vrec(1).hash)
        expect(configRecord(1, 815, h).toString("hex")).toBe(vrec(1).hex)
    })
    test("time (utc above 2^32 split into lo/hi)", () => {
        checkKind(KIND_TIME)
        const r = vrec(2)
        const b = encode(r)
        expect(b.getAt(10, "u32")).toBe(r.utcLo)
        expect(b.getAt(14, "u32")).toBe(r.utcHi)
    })
    test("alarm", () => {
        checkKind(KIND_ALARM)
    })
    test("gap", () => {
        checkKind(KIND_GAP)
    })
    test("record accessors and lengths (including the unknown kind)", () => {
        const recs: any[] = VECTORS.records
        for (const r of recs) {
            const b = hex(r.hex)
            expect(recordSeq(b)).toBe(r.seq)
            expect(recordKind(b)).toBe(r.kind)
            expect(recordLengthAt(b, 0)).toBe(b.length)
            expect(b.getAt(5, "u8")).toBe(b.length - HEADER_LEN)
            // truncated: does not fit
            expect(recordLengthAt(b.slice(0, b.length - 1), 0)).toBe(0)
            expect(recordLengthAt(b.slice(0, 3), 0)).toBe(0)
        }
    })
    test("recordLengthAt walks the vector block, skipping nothing", () => {
        const blk = hex(VECTORS.block.hex)
        expect(blk.length).toBe(192)
        expect(blk.getAt(0, "u32")).toBe(VECTORS.block.firstSeq)
        let off = 36
        let seq = VECTORS.block.firstSeq
        for (;;) {
            const n = recordLengthAt(blk, off)
            if (!n) break
            expect(blk.slice(off, off + n).toString("hex")).toBe(vrec(seq).hex)
            off += n
            seq++
        }
        expect(off).toBe(blk.length)
        expect(seq - 1).toBe(VECTORS.block.lastSeq)
    })
})

describe("chain", () => {
    test("genesis head", () => {
        expect(genesisHead(DEVID).toString("hex")).toBe(VECTORS.genesis)
    })
    test("heads over the vector records", () => {
        let h = genesisHead(DEVID)
        const recs: any[] = VECTORS.records
        for (const r of recs) {
            h = nextHead(h, hex(r.hex))
            expect(`seq ${r.seq}: ${h.toString("hex")}`).toBe(`seq ${r.seq}: ${r.head}`)
        }
    })
    test("heads over the firmware's own encodings", () => {
        let h = genesisHead(DEVID)
        const recs: any[] = VECTORS.records
        for (const r of recs) {
            const b = encode(r) || hex(r.hex) // the unknown kind has no firmware encoder
            h = nextHead(h, b)
            expect(`seq ${r.seq}: ${h.toString("hex")}`).toBe(`seq ${r.seq}: ${r.head}`)
        }
    })
    test("block prev_head is the head before its first record", () => {
        const blk = hex(VECTORS.block.hex)
        expect(blk.slice(4, 36).toString("hex")).toBe(vrec(VECTORS.block.firstSeq - 1).head)
    })
    test("bufEq", () => {
        expect(bufEq(hex("0102"), hex("0102"))).toBe(true)
        expect(bufEq(hex("0102"), hex("0103"))).toBe(false)
        expect(bufEq(hex("0102"), hex("010200"))).toBe(false)
        expect(bufEq(hex("0102"), undefined)).toBe(false)
    })
})

function batchRecords(): Buffer[] {
    const out: Buffer[] = []
    const first = VECTORS.batch.firstSeq
    for (let i = 0; i < VECTORS.batch.count; ++i) out.push(hex(vrec(first + i).hex))
    return out
}

describe("batch and ack", () => {
    test("ack key", () => {
        expect(ackKey(DEVKEY).toString("hex")).toBe(VECTORS.ackkey)
    })
    test("batch bytes including the MAC", () => {
        const first = VECTORS.batch.firstSeq
        const prev = hex(vrec(first - 1).head)
        const body = encodeBatch(DEVID, DEVKEY, first, prev, batchRecords())
        expect(body.toString("hex")).toBe(VECTORS.batch.hex)
    })
    test("batch layout", () => {
        const body = hex(VECTORS.batch.hex)
        const recLen = body.getAt(18, "u16")
        expect(body.length).toBe(84 + recLen)
        expect(body.slice(0, 4).toString("utf-8")).toBe("CTB1")
        expect(body.getAt(12, "u32")).toBe(VECTORS.batch.firstSeq)
        expect(body.getAt(16, "u16")).toBe(VECTORS.batch.count)
    })
    test("parseAck accepts the vector ack", () => {
        const a = parseAck(hex(VECTORS.ack.hex), DEVID, ackKey(DEVKEY))
        expect(a !== undefined).toBe(true)
        expect(a.ackSeq).toBe(VECTORS.ack.ackSeq)
        expect(a.head.toString("hex")).toBe(vrec(VECTORS.ack.ackSeq).head)
    })
    test("parseAck accepts the 'none yet' ack", () => {
        const a = parseAck(hex(VECTORS.ackNone.hex), DEVID, ackKey(DEVKEY))
        expect(a !== undefined).toBe(true)
        expect(a.ackSeq).toBe(ACK_NONE)
        expect(a.head.toString("hex")).toBe("0000000000000000000000000000000000000000000000000000000000000000")
    })
    test("parseAck rejects any flipped byte", () => {
        const key = ackKey(DEVKEY)
        const good = hex(VECTORS.ack.hex)
        // every byte: magic, devid, ack_seq, head and mac
        for (let i = 0; i < good.length; ++i) {
            const bad = hex(VECTORS.ack.hex)
            bad[i] = bad[i] ^ 0x01
            expect(`byte ${i}: ${parseAck(bad, DEVID, key) === undefined}`).toBe(`byte ${i}: true`)
        }
    })
    test("parseAck rejects a wrong devid", () => {
        const other = hex("c01d7ace00000002")
        expect(parseAck(hex(VECTORS.ack.hex), other, ackKey(DEVKEY)) === undefined).toBe(true)
    })
    test("parseAck rejects a wrong key", () => {
        expect(parseAck(hex(VECTORS.ack.hex), DEVID, DEVKEY) === undefined).toBe(true)
    })
    test("parseAck rejects a wrong length", () => {
        const key = ackKey(DEVKEY)
        const good = hex(VECTORS.ack.hex)
        expect(parseAck(good.slice(0, 79), DEVID, key) === undefined).toBe(true)
        expect(parseAck(good.concat(hex("00")), DEVID, key) === undefined).toBe(true)
        expect(parseAck(Buffer.alloc(0), DEVID, key) === undefined).toBe(true)
        expect(parseAck(undefined, DEVID, key) === undefined).toBe(true)
    })
})
