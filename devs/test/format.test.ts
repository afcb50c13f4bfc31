import * as ds from "@devicescript/core"
import { describe, test, expect, beforeEach } from "@devicescript/test"
import { digest, hmac, decrypt } from "@devicescript/crypto"
import { VECTORS } from "./vectors.gen"
import {
    sampleRecord,
    bootRecord,
    configRecord,
    timeRecord,
    stopRecord,
    alarmRecord,
    evictedRecord,
    sealRecord,
    fixRecord,
    EvictedSummary,
    recordSeq,
    recordKind,
    recordUptime,
    recordLengthAt,
    KIND_SAMPLE,
    KIND_BOOT,
    KIND_CONFIG,
    KIND_TIME,
    KIND_STOP,
    KIND_ALARM,
    KIND_EVICTED,
    KIND_SEAL,
    KIND_FIX,
    HEADER_LEN,
} from "../record/record"
import { genesisHead, nextHead, evolveKey, sealMac, bufEq } from "../chain/chain"
import { ItemDecoder, ItemEncoder } from "../record/items"
import { encodeBatch, parseAck, ACK_NONE } from "../batch/batch"
import { LogStore, blockKey, blockRecords } from "../flash/logstore"
import { EpochKeys } from "../chain/keys"
import { kvGet, kvSet, kvDelete } from "../flash/kv"
import { encryptLoc } from "../app/gnss"

/**
 * The firmware against the shared vectors (docs/vectors/format-v2.json, as the generated module
 * vectors.gen.ts). The host checks its own codec against the same data in test/format.test.ts.
 */

function hex(s: string): Buffer {
    return Buffer.from(s, "hex")
}

const V: any = VECTORS
const DEVID = hex(VECTORS.devid)
const K0 = hex(VECTORS.k0)
const ACKKEY = hex(VECTORS.ackkey)
const LOCKEY = hex(VECTORS.lockey)
const BLOCK_HDR = 36

function key(e: number): Buffer {
    return hex(V.keys[e])
}

/** The vector record with this seq (any kind), as the loosely typed object the generator wrote. */
function vrec(seq: number): any {
    const recs: any[] = V.records
    for (const r of recs) if (r.seq === seq) return r
    throw new Error(`no vector record ${seq}`)
}

/** canonical bytes of seq: a main record or one of the compact stream */
function vbytes(seq: number): Buffer {
    if (seq >= V.stream.firstSeq) return hex(V.stream.records[seq - V.stream.firstSeq])
    return hex(vrec(seq).hex)
}

/** head[seq] */
function vhead(seq: number): Buffer {
    if (seq < 0) return hex(V.genesis)
    if (seq < V.stream.firstSeq) return hex(vrec(seq).head)
    // the stream carries only its first prev head and its last head: hash forward
    let h = hex(V.stream.prevHead)
    for (let s = V.stream.firstSeq; s <= seq; ++s) h = nextHead(h, vbytes(s))
    return h
}

function vrange(first: number, count: number): Buffer[] {
    const out: Buffer[] = []
    for (let i = 0; i < count; ++i) out.push(vbytes(first + i))
    return out
}

/** Encode a vector record with the firmware builder of its kind; undefined for kinds the firmware has none of. */
function encode(r: any): Buffer {
    if (r.kind === KIND_SAMPLE) return sampleRecord(r.seq, r.uptime, r.tc, r.cj, r.sr, r.sflags)
    if (r.kind === KIND_BOOT) return bootRecord(r.seq, r.uptime, r.boot, r.reason, vhead(r.seq - 1))
    if (r.kind === KIND_CONFIG) return configRecord(r.seq, r.uptime, hex(r.hash))
    if (r.kind === KIND_TIME) return timeRecord(r.seq, r.uptime, r.utc, r.source)
    if (r.kind === KIND_STOP) return stopRecord(r.seq, r.uptime, r.start, hex(r.loc))
    if (r.kind === KIND_ALARM) return alarmRecord(r.seq, r.uptime, r.type, r.tc)
    if (r.kind === KIND_EVICTED) {
        const s = new EvictedSummary()
        s.first = r.first
        s.last = r.last
        s.samples = r.samples
        s.tFirst = r.tFirst
        s.tLast = r.tLast
        s.minTc = r.minTc
        s.maxTc = r.maxTc
        s.outMin = r.outMin
        s.srOr = r.srOr
        s.sflagsOr = r.sflagsOr
        return evictedRecord(r.seq, r.uptime, s)
    }
    if (r.kind === KIND_SEAL) return sealRecord(r.seq, r.uptime, r.epoch, r.count, hex(r.mac))
    if (r.kind === KIND_FIX) return fixRecord(r.seq, r.uptime, hex(r.loc), r.fix, r.sv)
    return undefined
}

function countKind(kind: number): number {
    let n = 0
    const recs: any[] = V.records
    for (const r of recs) if (r.kind === kind) n++
    return n
}

/** every vector record of `kind` encodes to the vector bytes */
function checkKind(kind: number) {
    const recs: any[] = V.records
    let n = 0
    for (const r of recs) {
        if (r.kind !== kind) continue
        const b = encode(r)
        expect(`seq ${r.seq}: ${b.toString("hex")}`).toBe(`seq ${r.seq}: ${r.hex}`)
        expect(b.length).toBe(HEADER_LEN + b[5])
        n++
    }
    expect(n > 0).toBe(true)
}

async function yieldNow() {
    await ds.sleep(0)
}

describe("vectors", () => {
    test("are version 2", () => {
        expect(VECTORS.version).toBe(2)
        expect(V.keys.length >= 4).toBe(true)
        expect(V.stream.records.length).toBe(V.stream.count)
    })
})

describe("records", () => {
    test("the vectors cover every kind", () => {
        const kinds = [KIND_SAMPLE, KIND_BOOT, KIND_CONFIG, KIND_TIME, KIND_STOP, KIND_ALARM, KIND_EVICTED, KIND_SEAL, KIND_FIX]
        for (const k of kinds) expect(`kind ${k}: ${countKind(k) > 0}`).toBe(`kind ${k}: true`)
        expect(countKind(KIND_SAMPLE) >= 5).toBe(true)
        expect(countKind(KIND_BOOT) >= 2).toBe(true)
        expect(countKind(KIND_SEAL) >= 2).toBe(true)
        // and a kind this firmware does not know
        const recs: any[] = V.records
        let unknown = 0
        for (const r of recs) if (r.kind > KIND_FIX) unknown++
        expect(unknown >= 1).toBe(true)
    })
    test("sample", () => {
        checkKind(KIND_SAMPLE)
    })
    test("boot (prev: first 8 bytes of the head before it, zeros for seq 0)", () => {
        checkKind(KIND_BOOT)
        const recs: any[] = V.records
        for (const r of recs) {
            if (r.kind !== KIND_BOOT) continue
            const want =
                r.seq === 0
                    ? "0000000000000000"
                    : vhead(r.seq - 1)
                          .slice(0, 8)
                          .toString("hex")
            expect(r.prev).toBe(want)
            expect(encode(r).slice(15, 23).toString("hex")).toBe(want)
        }
    })
    test("config (hash: SHA-256 of the configuration text, first 16 bytes)", () => {
        checkKind(KIND_CONFIG)
        const h = digest("sha256", hex(V.configText)).slice(0, 16)
        const recs: any[] = V.records
        for (const r of recs) if (r.kind === KIND_CONFIG) expect(r.hash).toBe(h.toString("hex"))
    })
    test("time (utc above 2^32 split into lo/hi)", () => {
        checkKind(KIND_TIME)
        const recs: any[] = V.records
        for (const r of recs) {
            if (r.kind !== KIND_TIME) continue
            const b = encode(r)
            expect(b.getAt(10, "u32")).toBe(r.utcLo)
            expect(b.getAt(14, "u32")).toBe(r.utcHi)
        }
    })
    test("stop", () => {
        checkKind(KIND_STOP)
    })
    test("alarm", () => {
        checkKind(KIND_ALARM)
    })
    test("evicted", () => {
        checkKind(KIND_EVICTED)
    })
    test("seal", () => {
        checkKind(KIND_SEAL)
    })
    test("fix", () => {
        checkKind(KIND_FIX)
    })
    test("positions: loc = AES-256-CCM(lockey, devid || u32 seq || 'L') of lat || lon", () => {
        const recs: any[] = V.records
        let n = 0
        for (const r of recs) {
            if (r.kind !== KIND_FIX && r.kind !== KIND_STOP) continue
            const loc = encryptLoc(LOCKEY, DEVID, r.seq, r.lat, r.lon)
            expect(`seq ${r.seq} loc ${loc.toString("hex")}`).toBe(`seq ${r.seq} loc ${r.loc}`)
            // and it decrypts back with the nonce of its own seq only
            const iv = Buffer.alloc(13)
            iv.blitAt(0, DEVID, 0, 8)
            iv.setAt(8, "u32", r.seq)
            iv[12] = 0x4c
            const pt = decrypt({ algo: "aes-256-ccm", key: LOCKEY, iv, data: hex(r.loc), tagLength: 8 })
            expect(pt.getAt(0, "i32")).toBe(r.lat)
            expect(pt.getAt(4, "i32")).toBe(r.lon)
            n++
        }
        expect(n >= 2).toBe(true)
    })
    test("record accessors and lengths (including the unknown kind)", () => {
        const recs: any[] = V.records
        for (const r of recs) {
            const b = hex(r.hex)
            expect(recordSeq(b)).toBe(r.seq)
            expect(recordKind(b)).toBe(r.kind)
            expect(recordUptime(b)).toBe(r.uptime)
            expect(recordLengthAt(b, 0)).toBe(b.length)
            expect(b.getAt(5, "u8")).toBe(b.length - HEADER_LEN)
            // truncated: does not fit
            expect(recordLengthAt(b.slice(0, b.length - 1), 0)).toBe(0)
            expect(recordLengthAt(b.slice(0, 3), 0)).toBe(0)
        }
    })
})

describe("chain, keys and seals", () => {
    test("genesis head", () => {
        expect(genesisHead(DEVID).toString("hex")).toBe(V.genesis)
    })
    test("heads over the vector records", () => {
        let h = genesisHead(DEVID)
        const recs: any[] = V.records
        for (const r of recs) {
            h = nextHead(h, hex(r.hex))
            expect(`seq ${r.seq}: ${h.toString("hex")}`).toBe(`seq ${r.seq}: ${r.head}`)
        }
        expect(h.toString("hex")).toBe(V.stream.prevHead)
    })
    test("heads over the firmware's own encodings", () => {
        let h = genesisHead(DEVID)
        const recs: any[] = V.records
        for (const r of recs) {
            const b = encode(r) || hex(r.hex) // the unknown kind has no firmware builder
            h = nextHead(h, b)
            expect(`seq ${r.seq}: ${h.toString("hex")}`).toBe(`seq ${r.seq}: ${r.head}`)
        }
    })
    test("k[1..3] = evolveKey from k0", () => {
        expect(V.keys[0]).toBe(V.k0)
        let k = K0
        for (let e = 1; e < V.keys.length; ++e) {
            k = evolveKey(k, e)
            expect(`k[${e}] ${k.toString("hex")}`).toBe(`k[${e}] ${V.keys[e]}`)
        }
    })
    test("seal MACs and counts", () => {
        const recs: any[] = V.records
        let prevSeal = -1
        let n = 0
        for (const r of recs) {
            if (r.kind !== KIND_SEAL) continue
            // count: records since the previous seal (or seq 0), the seal excluded
            expect(`seal ${r.seq} count ${r.count}`).toBe(`seal ${r.seq} count ${r.seq - prevSeal - 1}`)
            const mac = sealMac(key(r.epoch), DEVID, r.epoch, r.seq, vhead(r.seq - 1), r.count)
            expect(`seal ${r.seq} mac ${mac.toString("hex")}`).toBe(`seal ${r.seq} mac ${r.mac}`)
            // not under another epoch's key
            expect(bufEq(sealMac(key(r.epoch + 1), DEVID, r.epoch, r.seq, vhead(r.seq - 1), r.count), hex(r.mac))).toBe(false)
            prevSeal = r.seq
            n++
        }
        expect(n >= 2).toBe(true)
    })
    test("bufEq", () => {
        expect(bufEq(hex("0102"), hex("0102"))).toBe(true)
        expect(bufEq(hex("0102"), hex("0103"))).toBe(false)
        expect(bufEq(hex("0102"), hex("010200"))).toBe(false)
        expect(bufEq(hex("0102"), undefined)).toBe(false)
    })
})

describe("compact items", () => {
    test("the vector stream decodes to the vector records and chains to the vector head", () => {
        const items = hex(V.stream.items)
        const d = new ItemDecoder(V.stream.firstSeq)
        const out: Buffer[] = []
        expect(`${d.decode(items, 0, items.length, out)} ${d.error}`).toBe("true undefined")
        expect(out.length).toBe(V.stream.count)
        let h = hex(V.stream.prevHead)
        for (let i = 0; i < out.length; ++i) {
            expect(`#${i}: ${out[i].toString("hex")}`).toBe(`#${i}: ${V.stream.records[i]}`)
            h = nextHead(h, out[i])
        }
        expect(h.toString("hex")).toBe(V.stream.head)
    })
    test("the firmware encoder makes the same stream (same greedy rule as the host)", () => {
        const enc = new ItemEncoder()
        let b = Buffer.alloc(0)
        for (const r of vrange(V.stream.firstSeq, V.stream.count)) b = enc.append(b, r)
        // whatever the bytes, they decode to the same records
        const d = new ItemDecoder(V.stream.firstSeq)
        const out: Buffer[] = []
        expect(d.decode(b, 0, b.length, out)).toBe(true)
        for (let i = 0; i < out.length; ++i) expect(out[i].toString("hex")).toBe(V.stream.records[i])
        expect(b.toString("hex")).toBe(V.stream.items)
    })
    test("every main record round-trips through the firmware encoder", async () => {
        const recs = vrange(0, V.stream.firstSeq)
        const enc = new ItemEncoder()
        let b = Buffer.alloc(0)
        for (const r of recs) b = enc.append(b, r)
        const d = new ItemDecoder(0)
        const out: Buffer[] = []
        expect(d.decode(b, 0, b.length, out)).toBe(true)
        expect(out.length).toBe(recs.length)
        for (let i = 0; i < out.length; ++i) expect(out[i].toString("hex")).toBe(recs[i].toString("hex"))
    })
})

describe("flash", () => {
    test("the vector block: key, prev_head, records, and the firmware's own encoding of it", () => {
        const blk = hex(V.block.hex)
        expect(blockKey(V.block.n)).toBe(V.block.key)
        expect(blk.length <= 192).toBe(true)
        expect(blk.getAt(0, "u32")).toBe(V.block.firstSeq)
        expect(blk.slice(4, BLOCK_HDR).toString("hex")).toBe(vhead(V.block.firstSeq - 1).toString("hex"))
        const recs = blockRecords(blk)
        expect(recs.length).toBe(V.block.lastSeq - V.block.firstSeq + 1)
        let h = blk.slice(4, BLOCK_HDR)
        for (let i = 0; i < recs.length; ++i) {
            expect(recs[i].toString("hex")).toBe(vrec(V.block.firstSeq + i).hex)
            h = nextHead(h, recs[i])
        }
        expect(h.toString("hex")).toBe(V.block.head)
        // LogStore writes a block as a header and a fresh encoder's items
        const enc = new ItemEncoder()
        let mine = blk.slice(0, BLOCK_HDR)
        for (const r of vrange(V.block.firstSeq, recs.length)) mine = enc.append(mine, r)
        expect(mine.toString("hex")).toBe(V.block.hex)
    })
})

// (no nested describe: @devicescript/test then schedules its autorun twice and runs every test twice, concurrently)
describe("flash: settings values as the host encodes them, read by the firmware", () => {
    {
        beforeEach(async () => {
            for (let n = 38; n <= 44; ++n) await kvDelete(blockKey(n))
            await kvDelete("lgmeta")
            await kvDelete("lgack")
            await kvDelete("ekey")
            await kvDelete("devkey")
        })

        test("lgmeta, lgack and a block: LogStore starts on them", async () => {
            expect(V.lgmeta.firstBlock <= V.block.n).toBe(true)
            expect(V.lgmeta.lastBlock).toBe(V.block.n)
            await kvSet("lgmeta", hex(V.lgmeta.hex))
            await kvSet("lgack", hex(V.lgack.hex))
            await kvSet(V.block.key, hex(V.block.hex))
            const s = new LogStore(DEVID, 10)
            await s.start()
            // blocks before the vector block are absent (freed): the store holds that one
            expect(s.status().blocks).toBe(1)
            expect(s.firstHeld()).toBe(V.block.firstSeq)
            expect(s.nextSeq).toBe(V.block.lastSeq + 1)
            expect(s.head.toString("hex")).toBe(V.block.head)
            expect(s.boot).toBe(V.lgmeta.boot + 1)
            expect(s.ackSeq).toBe(V.lgack.ackSeq)
            expect(s.ackBoot).toBe(V.lgack.boot)
            const meta = await kvGet("lgmeta")
            expect(meta.getAt(0, "u32")).toBe(V.block.n)
            expect(meta.getAt(4, "u32")).toBe(V.block.n)
            expect(meta.getAt(8, "u32")).toBe(V.lgmeta.boot + 1)
            // and the lgack the firmware writes has the vector's layout
            expect(await s.acknowledge(V.block.lastSeq, hex(V.block.head), V.lgack.boot)).toBe(true)
            const ack = await kvGet("lgack")
            expect(ack.length).toBe(hex(V.lgack.hex).length)
            expect(ack.getAt(0, "u32")).toBe(V.block.lastSeq)
            expect(ack.slice(4, 36).toString("hex")).toBe(V.block.head)
            expect(ack.getAt(36, "u32")).toBe(V.lgack.boot)
            // the vector lgack itself: seq, head[seq], boot
            const va = hex(V.lgack.hex)
            expect(va.getAt(0, "u32")).toBe(V.lgack.ackSeq)
            expect(va.slice(4, 36).toString("hex")).toBe(vrec(V.lgack.ackSeq).head)
            expect(va.getAt(36, "u32")).toBe(V.lgack.boot)
        })

        test("ekey: EpochKeys loads the vector's epoch, key and seal seq", async () => {
            await kvSet("ekey", hex(V.ekey.hex))
            const k = new EpochKeys()
            expect(await k.load()).toBe(true)
            expect(k.epoch).toBe(V.ekey.epoch)
            expect(k.current().toString("hex")).toBe(V.keys[V.ekey.epoch])
            expect(k.sealSeq).toBe(V.ekey.sealSeq)
            // after an evolve the firmware writes the same layout for the next epoch
            await k.evolve(77)
            const e = await kvGet("ekey")
            expect(e.length).toBe(hex(V.ekey.hex).length)
            expect(e.getAt(0, "u32")).toBe(V.ekey.epoch + 1)
            expect(e.slice(4, 36).toString("hex")).toBe(V.keys[V.ekey.epoch + 1])
            expect(e.getAt(36, "u32")).toBe(77)
        })
    }
})

describe("batch and ack", () => {
    async function checkBatch(vb: any) {
        const prev = vb.prev ? hex(vb.prevHead) : undefined
        const body = await encodeBatch(DEVID, key(vb.epoch), vb.boot, vb.epoch, vb.firstSeq, prev, vrange(vb.firstSeq, vb.count))
        expect(`batch ${vb.firstSeq}: ${body.toString("hex")}`).toBe(`batch ${vb.firstSeq}: ${vb.hex}`)
    }
    /** parse the vector batch by the table in section 6 */
    function checkLayout(vb: any) {
        const b = hex(vb.hex)
        expect(b.slice(0, 4).toString("utf-8")).toBe("CTB2")
        expect(b.slice(4, 12).toString("hex")).toBe(V.devid)
        expect(b.getAt(12, "u32")).toBe(vb.boot)
        expect(b.getAt(16, "u32")).toBe(vb.epoch)
        expect(b.getAt(20, "u32")).toBe(vb.firstSeq)
        expect(b.getAt(24, "u16")).toBe(vb.count)
        expect(b[26]).toBe(vb.prev ? 1 : 0)
        let off = 27
        if (vb.prev) {
            expect(b.slice(27, 59).toString("hex")).toBe(vb.prevHead)
            off = 59
        }
        const bodyLen = b.getAt(off, "u16")
        off += 2
        expect(b.length).toBe(off + bodyLen + 16)
        const d = new ItemDecoder(vb.firstSeq)
        const out: Buffer[] = []
        expect(d.decode(b, off, off + bodyLen, out)).toBe(true)
        expect(out.length).toBe(vb.count)
        let h = hex(vb.prevHead)
        for (let i = 0; i < out.length; ++i) {
            expect(out[i].toString("hex")).toBe(vbytes(vb.firstSeq + i).toString("hex"))
            h = nextHead(h, out[i])
        }
        expect(h.toString("hex")).toBe(vhead(vb.firstSeq + vb.count - 1).toString("hex"))
        const mac = hmac(key(vb.epoch), "sha256", b.slice(0, b.length - 16)).slice(0, 16)
        expect(mac.toString("hex")).toBe(b.slice(b.length - 16).toString("hex"))
    }

    test("batch with PREV: firmware bytes equal the vector", async () => {
        expect(V.batchPrev.prev).toBe(1)
        await checkBatch(V.batchPrev)
    })
    test("batch without PREV: firmware bytes equal the vector", async () => {
        expect(V.batchPlain.prev).toBe(0)
        await checkBatch(V.batchPlain)
    })
    test("batch layouts (section 6)", async () => {
        checkLayout(V.batchPrev)
        await yieldNow()
        checkLayout(V.batchPlain)
    })
    test("parseAck accepts the vector ack", () => {
        const a = parseAck(hex(V.ack.hex), DEVID, ACKKEY)
        expect(a !== undefined).toBe(true)
        expect(a.seq).toBe(V.ack.ackSeq)
        expect(a.head.toString("hex")).toBe(V.ack.head)
        expect(a.head.toString("hex")).toBe(V.stream.head)
        expect(a.boot).toBe(V.ack.boot)
        expect(a.epoch).toBe(V.ack.epoch)
    })
    test("parseAck accepts the 'none yet' ack", () => {
        const a = parseAck(hex(V.ackNone.hex), DEVID, ACKKEY)
        expect(a !== undefined).toBe(true)
        expect(a.seq).toBe(ACK_NONE)
        expect(a.head.toString("hex")).toBe("0000000000000000000000000000000000000000000000000000000000000000")
        expect(a.boot).toBe(V.ackNone.boot)
        expect(a.epoch).toBe(V.ackNone.epoch)
    })
    test("parseAck rejects any flipped bit", () => {
        const good = hex(V.ack.hex)
        expect(good.length).toBe(72)
        // every byte: magic, devid, seq, head, boot, epoch and mac
        for (let i = 0; i < good.length; ++i) {
            const bad = hex(V.ack.hex)
            bad[i] = bad[i] ^ (1 << (i & 7))
            expect(`byte ${i}: ${parseAck(bad, DEVID, ACKKEY) === undefined}`).toBe(`byte ${i}: true`)
        }
    })
    test("parseAck rejects a wrong devid, a wrong key, a v1 magic", () => {
        expect(parseAck(hex(V.ack.hex), hex("c01d7ace00000002"), ACKKEY) === undefined).toBe(true)
        expect(parseAck(hex(V.ack.hex), DEVID, K0) === undefined).toBe(true)
        expect(parseAck(hex(V.ack.hex), DEVID, key(V.ack.epoch)) === undefined).toBe(true)
        // magic CTA1 with a MAC that verifies: still refused
        const v1 = hex(V.ack.hex)
        v1[3] = 0x31
        v1.blitAt(56, hmac(ACKKEY, "sha256", v1.slice(0, 56)), 0, 16)
        expect(parseAck(v1, DEVID, ACKKEY) === undefined).toBe(true)
    })
    test("parseAck rejects a wrong length", () => {
        const good = hex(V.ack.hex)
        expect(parseAck(good.slice(0, 71), DEVID, ACKKEY) === undefined).toBe(true)
        expect(parseAck(good.concat(hex("00")), DEVID, ACKKEY) === undefined).toBe(true)
        expect(parseAck(Buffer.alloc(0), DEVID, ACKKEY) === undefined).toBe(true)
        expect(parseAck(undefined, DEVID, ACKKEY) === undefined).toBe(true)
    })
})
