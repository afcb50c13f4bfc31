import * as ds from "@devicescript/core"
import { describe, test, expect } from "@devicescript/test"
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
    batteryRecord,
    ruleAlarmRecord,
    lidRecord,
    EvictedSummary,
} from "../record/record"
import { genesisHead, nextHead, evolveKey, sealMac, bufEq } from "../chain/chain"
import { PackEncoder, PackDecoder, PACK_STATE_LEN } from "../record/pack"
import { encodeBatch, parseAck, ACK_NONE } from "../batch/batch"
import { LogStore, Pending, Part, blockKey, BLOCK_SLOTS } from "../flash/logstore"
import { kvSet, kvDelete } from "../flash/kv"
import { encryptLoc } from "../record/loc"

/**
 * The firmware against docs/vectors/format-v4.json (as devs/test/vectors.gen.ts): records built by
 * the firmware's builders, the chain, keys and seals, the pack coder both ways, a flash image read by
 * the real LogStore, batches, acks and positions, byte for byte.
 */
function hex(s: string): Buffer {
    return Buffer.from(s, "hex")
}
const DEVID = hex(VECTORS.devid)
const K0 = hex(VECTORS.k0)
const ACKKEY = hex(VECTORS.ackkey)
const LOCKEY = hex(VECTORS.lockey)

/** the record a vector describes, built with the firmware's builder for its kind */
function build(v: any): Buffer {
    const k = v.kind
    if (k === 1) return sampleRecord(v.seq, v.t, v.tc, v.cj, v.sr, v.sflags)
    if (k === 2)
        return bootRecord(v.seq, v.t, v.boot, v.reason, v.rtc, hex(v.prev + "000000000000000000000000000000000000000000000000"), hex(v.fw))
    if (k === 3) return configRecord(v.seq, v.t, hex(v.hash))
    if (k === 4) return timeRecord(v.seq, v.t, v.utc, v.source, v.flags)
    if (k === 5) return stopRecord(v.seq, v.t, v.start, encryptLoc(LOCKEY, v.seq, v.lat, v.lon, hex(v.r)))
    if (k === 6) return alarmRecord(v.seq, v.t, v.type, v.tc)
    if (k === 7) {
        const s = new EvictedSummary()
        s.first = v.first
        s.last = v.last
        s.samples = v.samples
        s.tFirst = v.tFirst
        s.tLast = v.tLast
        s.minTc = v.minTc
        s.maxTc = v.maxTc
        s.outMin = v.outMin
        s.srOr = v.srOr
        s.sflagsOr = v.sflagsOr
        return evictedRecord(v.seq, v.t, s)
    }
    if (k === 8) return sealRecord(v.seq, v.t, v.epoch, v.count, hex(v.mac))
    if (k === 9) return fixRecord(v.seq, v.t, encryptLoc(LOCKEY, v.seq, v.lat, v.lon, hex(v.r)), v.fix, v.sv)
    if (k === 10) return batteryRecord(v.seq, v.t, v.mv, v.level, v.flags)
    if (k === 11) return ruleAlarmRecord(v.seq, v.t, v.rule, v.raise === 1, v.why, v.type, v.value)
    if (k === 12) return lidRecord(v.seq, v.t, v.first, v.openEdge === 1, v.count, v.open === 1, v.flags)
    return hex(v.hex) // an unknown kind: no builder, carried as bytes
}

async function packAll(firstSeq: number, recs: Buffer[]): Promise<Buffer> {
    const e = new PackEncoder(firstSeq)
    let out = Buffer.alloc(0)
    for (const r of recs) {
        e.add(r)
        out = out.concat(e.takeOut())
        await ds.sleep(0)
    }
    return out.concat(e.flushBytes())
}

async function unpackAll(stream: Buffer, firstSeq: number, count: number): Promise<Buffer[]> {
    const d = new PackDecoder(stream, 0, firstSeq)
    const out: Buffer[] = []
    for (let i = 0; i < count; i++) {
        out.push(d.next())
        await ds.sleep(0)
    }
    return out
}

function hexList(list: string[]): Buffer[] {
    return list.map(h => hex(h))
}

describe("format v3 vectors", () => {
    test("genesis, key evolution, every record built byte for byte, heads", async () => {
        expect(genesisHead(DEVID).toString("hex")).toBe(VECTORS.genesis)
        let k = K0
        for (let e = 1; e < VECTORS.keys.length; e++) {
            k = evolveKey(k, e)
            expect(k.toString("hex")).toBe(VECTORS.keys[e])
        }
        let head = genesisHead(DEVID)
        for (const v of VECTORS.records as any[]) {
            const r = build(v)
            expect(`seq ${v.seq}: ${r.toString("hex")}`).toBe(`seq ${v.seq}: ${v.hex}`)
            head = nextHead(head, r)
            expect(head.toString("hex")).toBe(v.head)
            await ds.sleep(0)
        }
    })

    test("seal MACs: the vectors' seals with the key of their epoch", async () => {
        let head = genesisHead(DEVID)
        for (const v of VECTORS.records as any[]) {
            if (v.kind === 8) {
                let k = K0
                for (let e = 1; e <= v.epoch; e++) k = evolveKey(k, e)
                expect(sealMac(k, DEVID, v.epoch, v.seq, head, v.count).toString("hex")).toBe(v.mac)
            }
            head = hex(v.head)
        }
    })

    test("pack: the main stream and every case, both ways", async () => {
        const recs = (VECTORS.records as any[]).map(v => hex(v.hex))
        const pm = VECTORS.packedMain
        expect((await packAll(pm.firstSeq, recs.slice(0, pm.count))).toString("hex")).toBe(pm.packed)
        const back = await unpackAll(hex(pm.packed), pm.firstSeq, pm.count)
        for (let i = 0; i < pm.count; i++) expect(bufEq(back[i], recs[i])).toBe(true)
        for (const c of VECTORS.pack as any[]) {
            const rs = hexList(c.records)
            expect(`${c.name}: ${(await packAll(c.firstSeq, rs)).toString("hex")}`).toBe(`${c.name}: ${c.packed}`)
            const got = await unpackAll(hex(c.packed), c.firstSeq, rs.length)
            for (let i = 0; i < rs.length; i++) expect(bufEq(got[i], rs[i])).toBe(true)
        }
        const st = VECTORS.stream
        expect((await packAll(st.firstSeq, hexList(st.records))).toString("hex")).toBe(st.packed)
    })

    test("pack state: a fresh encoder's saved state is the vectors' initial state", async () => {
        const s = new PackEncoder(0).saveState()
        expect(s.length).toBe(PACK_STATE_LEN)
        expect(s.toString("hex")).toBe(VECTORS.initialPackState)
    })

    test("flash image: the real LogStore opens it at the vectors' head and seq", async () => {
        for (let n = 0; n < BLOCK_SLOTS; n++) await kvDelete(blockKey(n))
        const settings: any = VECTORS.flash.settings
        for (const key of Object.keys(settings)) await kvSet(key, hex(settings[key]))
        const s = new LogStore(DEVID, 8)
        expect(await s.open()).toBe(undefined)
        expect(s.nextSeq).toBe(VECTORS.flash.lastSeq + 1)
        expect(s.head.toString("hex")).toBe(VECTORS.flash.head)
        expect(bufEq(s.baseHead, hex(VECTORS.flash.baseHead))).toBe(true)
        expect(s.firstBlock).toBe(VECTORS.lgmeta.firstBlock)
        expect(s.lastBlock).toBe(VECTORS.lgmeta.lastBlock)
        const open = await s.blockAt(s.lastBlock)
        expect(open.stream.toString("hex")).toBe(VECTORS.flash.openComplete)
        for (const key of Object.keys(settings)) await kvDelete(key)
    })

    test("batches: parts of packed streams, header, nonce, MAC", async () => {
        const recs = (VECTORS.records as any[]).map(v => hex(v.hex))
        const all = recs.slice(0)
        for (const h of VECTORS.stream.records) all.push(hex(h))
        const cases = [VECTORS.batchPrev, VECTORS.batchPlain] as any[]
        for (const b of cases) {
            const p = new Pending()
            p.firstSeq = b.firstSeq
            p.count = b.count
            if (b.prev) p.prevHead = hex(b.prevHead)
            for (let s = b.firstSeq; s < b.firstSeq + b.count; s += b.perPart) {
                const n = Math.min(b.perPart, b.firstSeq + b.count - s)
                p.parts.push(new Part(n, await packAll(s, all.slice(s, s + n))))
            }
            let k = K0
            for (let e = 1; e <= b.epoch; e++) k = evolveKey(k, e)
            expect(encodeBatch(DEVID, k, b.boot, b.epoch, b.nonce, p).toString("hex")).toBe(b.hex)
        }
    })

    test("acks: parsed with the ack key, refused when altered", async () => {
        const a = parseAck(hex(VECTORS.ack.hex), DEVID, ACKKEY)
        expect(a.seq).toBe(VECTORS.ack.ackSeq)
        expect(a.head.toString("hex")).toBe(VECTORS.ack.head)
        expect(a.nonce).toBe(VECTORS.ack.nonce)
        expect(a.utc).toBe(VECTORS.ack.utc)
        expect(parseAck(hex(VECTORS.ackNone.hex), DEVID, ACKKEY).seq).toBe(ACK_NONE)
        const bad = hex(VECTORS.ack.hex)
        bad[20] ^= 1
        expect(parseAck(bad, DEVID, ACKKEY)).toBe(undefined)
        expect(parseAck(hex(VECTORS.ack.hex), DEVID, K0)).toBe(undefined)
    })

    test("positions: the vectors' locs with their fixed random part", async () => {
        for (const l of VECTORS.loc as any[]) expect(encryptLoc(LOCKEY, l.seq, l.lat, l.lon, hex(l.r)).toString("hex")).toBe(l.hex)
        // a random part of its own each time: two locs of one position differ
        expect(bufEq(encryptLoc(LOCKEY, 3, 1, 2), encryptLoc(LOCKEY, 3, 1, 2))).toBe(false)
    })
})
