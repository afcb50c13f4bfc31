// Host format code against the shared vectors (docs/vectors/format-v2.json).
import { existsSync, readFileSync } from "node:fs"
import { describe, expect, test } from "vitest"
import {
    ACK_NONE,
    BATCH_MAX_COUNT,
    SEAL_SEQ_NONE,
    FormatError,
    ITEM_FULL,
    ITEM_RUN,
    KIND,
    blockKey,
    chainHeads,
    cjToCelsius,
    decodeAck,
    decodeBatch,
    decodeBlock,
    decodeEpochKey,
    decodeItems,
    decodeLogAck,
    decodeLogMeta,
    decodeRecord,
    decryptLoc,
    encodeAck,
    encodeBatch,
    encodeBlock,
    encodeEpochKey,
    encodeItems,
    encodeLogAck,
    encodeLogMeta,
    encodeRecord,
    encryptLoc,
    epochKey,
    evolveKey,
    genesisHead,
    hashRun,
    isFaulted,
    isKnown,
    isSample,
    nextHead,
    parseRecords,
    sampleCelsius,
    sealMac,
    tcToCelsius,
    verifyBatchMac,
    type LogRecord,
    type SampleRecord,
} from "../src/format/index.js"
import { DS_MAX_BYTES, DS_PATH, JSON_PATH, buildVectors } from "../src/tools/gen-vectors.js"

const root = new URL("../", import.meta.url)
const V = JSON.parse(readFileSync(new URL(JSON_PATH, root), "utf8"))
const hex = (s: string) => Buffer.from(s, "hex")
const K = (e: number) => hex(V.keys[e])
const ACKKEY = hex(V.ackkey)
const LOCKEY = hex(V.lockey)
type VRec = Record<string, unknown> & { seq: number; kind: number; hex: string; head: string }
const RECS: VRec[] = V.records
const headBefore = (seq: number) => hex(seq === 0 ? V.genesis : seq < RECS.length ? RECS[seq - 1].head : "")

/** A vector record as the typed object the host API uses. */
function typed(v: VRec): LogRecord {
    const { hex: _h, head: _hd, utcLo: _lo, utcHi: _hi, lat: _la, lon: _lo2, ...r } = v
    for (const k of ["hash", "payload", "prev", "loc", "mac"]) if (typeof r[k] === "string") r[k] = hex(r[k] as string)
    return r as unknown as LogRecord
}

/** Runs `f`, expects a one-line FormatError with this status and a message matching `re`. */
function formatError(f: () => unknown, re: RegExp, status = 400): void {
    let err: unknown
    try {
        f()
    } catch (e) {
        err = e
    }
    expect(err, `expected a FormatError matching ${re}`).toBeInstanceOf(FormatError)
    expect((err as FormatError).status).toBe(status)
    expect((err as Error).message).toMatch(re)
    expect((err as Error).message).not.toContain("\n")
}

/** Deterministic PRNG (xorshift32), so a failure can be replayed. */
function rng(seed: number) {
    let x = seed >>> 0 || 1
    return (n: number) => {
        x ^= x << 13
        x >>>= 0
        x ^= x >>> 17
        x ^= x << 5
        x >>>= 0
        return x % n
    }
}

const sample = (seq: number, uptime: number, tc: number, o: Partial<SampleRecord> = {}): SampleRecord => ({
    seq,
    kind: KIND.sample,
    uptime,
    tc,
    cj: 1400,
    sr: 0,
    sflags: 0,
    ...o,
})

/** Walks items (without decoding records): [tag, n, step, nibble values] per item. */
function itemShapes(buf: Buffer): { tag: number; n?: number; step?: number; deltas?: number[] }[] {
    const out: { tag: number; n?: number; step?: number; deltas?: number[] }[] = []
    let off = 0
    while (off < buf.length) {
        if (buf[off] === ITEM_FULL) {
            out.push({ tag: ITEM_FULL })
            off += 3 + buf[off + 2]
        } else {
            const n = buf[off + 1]
            const deltas = Array.from({ length: n }, (_, i) => {
                const nib = (buf[off + 4 + (i >> 1)] >> (i & 1 ? 4 : 0)) & 15
                return nib >= 8 ? nib - 16 : nib
            })
            out.push({ tag: ITEM_RUN, n, step: buf.readUInt16LE(off + 2), deltas })
            off += 4 + Math.ceil(n / 2)
        }
    }
    return out
}

describe("generated files", () => {
    test("both vector files are up to date (run: npx tsx src/tools/gen-vectors.ts)", () => {
        const { json, ds } = buildVectors()
        expect(readFileSync(new URL(JSON_PATH, root), "utf8")).toBe(json)
        expect(readFileSync(new URL(DS_PATH, root), "utf8")).toBe(ds)
        expect(Buffer.byteLength(ds)).toBeLessThan(DS_MAX_BYTES)
        expect(existsSync(new URL("docs/vectors/format-v1.json", root))).toBe(false)
    })

    test("the DeviceScript twin holds hex strings and numbers only", () => {
        const walk = (v: unknown): void => {
            if (Array.isArray(v)) v.forEach(walk)
            else if (v && typeof v === "object") Object.values(v).forEach(walk)
            else expect(["number", "string"]).toContain(typeof v)
        }
        walk(V)
    })
})

describe("records", () => {
    test("covers every kind, negative values, faults and an unknown kind", () => {
        const kinds = new Set(RECS.map(r => r.kind))
        for (const k of Object.values(KIND)) expect(kinds).toContain(k)
        expect(RECS.some(r => !Object.values(KIND).includes(r.kind as never))).toBe(true)
        expect(RECS.some(r => r.kind === 1 && (r.tc as number) < 0 && (r.cj as number) < 0)).toBe(true)
        expect(RECS.some(r => r.kind === 1 && isFaulted(r as unknown as SampleRecord))).toBe(true)
        expect(RECS.map(r => r.seq)).toEqual([...RECS.keys()])
    })

    test.each(RECS.map(r => [r.seq, r] as const))("seq %i encodes and decodes", (_seq, v) => {
        const rec = typed(v)
        expect(encodeRecord(rec).toString("hex")).toBe(v.hex)
        expect(decodeRecord(hex(v.hex))).toEqual(rec)
    })

    test("time records carry utc split as on the wire", () => {
        for (const r of RECS.filter(x => x.kind === KIND.time)) {
            expect((r.utcHi as number) * 2 ** 32 + (r.utcLo as number)).toBe(r.utc)
        }
    })

    test("boot records carry the first 8 bytes of the head before them (zeros for seq 0)", () => {
        const boots = RECS.filter(r => r.kind === KIND.boot)
        expect(boots.length).toBeGreaterThanOrEqual(2)
        for (const b of boots) {
            expect(b.prev).toBe(b.seq === 0 ? "0000000000000000" : headBefore(b.seq).subarray(0, 8).toString("hex"))
        }
    })

    test("the evicted summary describes the records it names (section 5.3)", () => {
        const ev = RECS.find(r => r.kind === KIND.evicted)!
        const span = RECS.slice(ev.first as number, (ev.last as number) + 1).map(typed)
        const samples = span.filter(isSample)
        const ok = samples.filter(s => !isFaulted(s))
        expect(ev.samples).toBe(samples.length)
        expect(ev.minTc).toBe(Math.min(...ok.map(s => s.tc)))
        expect(ev.maxTc).toBe(Math.max(...ok.map(s => s.tc)))
        expect(ev.minTc).toBeLessThan(0)
        expect(ev.srOr).toBe(samples.reduce((a, s) => a | s.sr, 0))
        expect(ev.sflagsOr).toBe(samples.reduce((a, s) => a | s.sflags, 0))
        expect(ev.outMin).toBe(ok.filter(s => s.tc < V.band.low || s.tc > V.band.high).length)
        expect((ev.tLast as number) - (ev.tFirst as number)).toBe((samples.at(-1)!.uptime - samples[0].uptime) / 1000)
    })

    test("parseRecords walks concatenated canonical records and checks seq", () => {
        const all = Buffer.concat(RECS.map(r => hex(r.hex)))
        const { records, raw } = parseRecords(all, 0)
        expect(records.map(r => r.seq)).toEqual(RECS.map(r => r.seq))
        expect(raw.map(b => b.toString("hex"))).toEqual(RECS.map(r => r.hex))
        formatError(() => parseRecords(all, 1), /seq not consecutive, expected 1/)
    })

    test("unknown kinds are skipped by len and kept whole", () => {
        const v = RECS.find(r => !isKnown(typed(r)))!
        const unknown = decodeRecord(hex(v.hex))
        expect(isKnown(unknown)).toBe(false)
        expect("payload" in unknown && unknown.payload.toString("hex")).toBe(v.payload)
        expect(encodeRecord(unknown).toString("hex")).toBe(v.hex)
    })

    test("truncation and bad lengths throw a one-line FormatError", () => {
        const s = hex(RECS[4].hex)
        const cases: [Buffer, RegExp][] = [
            [s.subarray(0, 4), /truncated header/],
            [s.subarray(0, s.length - 1), /runs past the end/],
            [Buffer.concat([s, s.subarray(0, 3)]), /truncated header/],
            [Buffer.from("0000000001020000", "hex"), /no uptime/],
            [Buffer.from("00000000010b0000000000000000000000", "hex"), /needs 12/],
            [Buffer.from("000000000211" + "00".repeat(16), "hex"), /runs past the end/],
            [Buffer.from("000000000710" + "00".repeat(16), "hex"), /kind 7 needs 34/],
            [Buffer.from("ffffffff0c0400000000", "hex"), /reserved/],
        ]
        for (const [buf, re] of cases) formatError(() => parseRecords(buf), re)
        formatError(() => decodeRecord(Buffer.concat([s, s])), /expected one record, found 2/)
    })

    test("Celsius and faults", () => {
        expect(tcToCelsius(3200)).toBe(25)
        expect(cjToCelsius(1600)).toBe(25)
        expect(tcToCelsius(-2624)).toBe(-20.5)
        expect(cjToCelsius(-336)).toBe(-5.25)
        const [ok, , , nr] = [4, 5, 6, 8].map(i => decodeRecord(hex(RECS[i].hex)))
        expect(isSample(ok) && sampleCelsius(ok)).toBe(25)
        expect(isSample(nr) && isFaulted(nr)).toBe(true)
        expect(isSample(nr) && sampleCelsius(nr)).toBe(null)
        expect(isFaulted({ sr: 1, sflags: 0 })).toBe(true)
        expect(isFaulted({ sr: 0, sflags: 2 })).toBe(true)
    })

    test("encoder refuses values that do not fit", () => {
        const base = sample(0, 0, 0)
        expect(() => encodeRecord({ ...base, cj: 40000 })).toThrow(RangeError)
        expect(() => encodeRecord({ ...base, seq: 0xffffffff })).toThrow(RangeError)
        expect(() => encodeRecord({ ...base, uptime: -1 })).toThrow(RangeError)
        expect(() => encodeRecord({ ...base, tc: 2 ** 31 })).toThrow(RangeError)
        const boot = typed(RECS[0])
        expect(() => encodeRecord({ ...boot, prev: Buffer.alloc(7) } as LogRecord)).toThrow(/prev must be 8 bytes/)
        expect(() => encodeRecord({ seq: 0, kind: KIND.sample, uptime: 0, payload: Buffer.alloc(8) })).toThrow(/is known/)
        expect(() => encodeRecord({ seq: 0, kind: 200, uptime: 0, payload: Buffer.alloc(252) })).toThrow(/u8 len/)
    })
})

describe("chain, keys and seals", () => {
    test("genesis and heads", () => {
        expect(genesisHead(V.devid).toString("hex")).toBe(V.genesis)
        expect(genesisHead(hex(V.devid)).toString("hex")).toBe(V.genesis)
        const bytes = RECS.map(r => hex(r.hex))
        const heads = chainHeads(hex(V.genesis), bytes).map(h => h.toString("hex"))
        expect(heads).toEqual(RECS.map(r => r.head))
        expect(nextHead(hex(V.genesis), bytes[0]).toString("hex")).toBe(RECS[0].head)
        expect(hashRun(hex(RECS[2].head), bytes.slice(3, 6)).toString("hex")).toBe(RECS[5].head)
        expect(hashRun(hex(V.genesis), []).toString("hex")).toBe(V.genesis)
    })

    test("key evolution: k[0] = k0, k[1], k[2], k[3]", () => {
        expect(V.keys[0]).toBe(V.k0)
        for (let e = 0; e < V.keys.length; e++) expect(epochKey(hex(V.k0), e).toString("hex")).toBe(V.keys[e])
        for (let e = 1; e < V.keys.length; e++) expect(evolveKey(K(e - 1), e).toString("hex")).toBe(V.keys[e])
        expect(new Set(V.keys).size).toBe(V.keys.length)
        expect(() => evolveKey(K(0), 0)).toThrow(RangeError)
        expect(() => epochKey(Buffer.alloc(31), 1)).toThrow(/32 bytes/)
    })

    test("every seal's epoch, count and mac over the real preceding head", () => {
        const seals = RECS.filter(r => r.kind === KIND.seal)
        expect(seals.map(s => s.epoch)).toEqual([0, 1])
        let prevSeal = -1
        for (const s of seals) {
            expect(s.count).toBe(s.seq - prevSeal - 1)
            const mac = sealMac(K(s.epoch as number), V.devid, s.epoch as number, s.seq, headBefore(s.seq), s.count as number)
            expect(mac.toString("hex")).toBe(s.mac)
            // under any other key, head or count it differs
            expect(
                sealMac(K((s.epoch as number) + 1), V.devid, s.epoch as number, s.seq, headBefore(s.seq), s.count as number),
            ).not.toEqual(mac)
            expect(sealMac(K(s.epoch as number), V.devid, s.epoch as number, s.seq, headBefore(s.seq - 1), s.count as number)).not.toEqual(
                mac,
            )
            prevSeal = s.seq
        }
    })
})

describe("positions", () => {
    const withLoc = RECS.filter(r => typeof r.loc === "string")

    test("stop and fix carry encrypted positions that decrypt to the plaintext", () => {
        expect(withLoc.map(r => r.kind).sort()).toEqual([KIND.stop, KIND.fix])
        for (const r of withLoc) {
            expect(encryptLoc(LOCKEY, V.devid, r.seq, r.lat as number, r.lon as number).toString("hex")).toBe(r.loc)
            expect(decryptLoc(LOCKEY, V.devid, r.seq, hex(r.loc as string))).toEqual({ lat: r.lat, lon: r.lon })
        }
        expect(withLoc.some(r => (r.lat as number) < 0) && withLoc.some(r => (r.lon as number) < 0)).toBe(true)
    })

    test("a wrong key, devid or seq, or a damaged loc does not decrypt", () => {
        const r = withLoc[0]
        const loc = hex(r.loc as string)
        formatError(() => decryptLoc(K(1), V.devid, r.seq, loc), /does not authenticate/)
        formatError(() => decryptLoc(LOCKEY, "c01d7ace00000002", r.seq, loc), /does not authenticate/)
        formatError(() => decryptLoc(LOCKEY, V.devid, r.seq + 1, loc), /does not authenticate/)
        for (const i of [0, 7, 8, 15]) {
            const bad = Buffer.from(loc)
            bad[i] ^= 0x10
            formatError(() => decryptLoc(LOCKEY, V.devid, r.seq, bad), /does not authenticate/)
        }
        formatError(() => decryptLoc(LOCKEY, V.devid, r.seq, loc.subarray(1)), /16 bytes/)
        expect(() => encryptLoc(LOCKEY, V.devid, r.seq, 2 ** 31, 0)).toThrow(RangeError)
    })
})

describe("compact items", () => {
    const S = V.stream
    const canon = (S.records as string[]).map(hex)

    test("the stream decodes to its canonical records and chains onto the main records", () => {
        const { records, recordBytes } = decodeItems(hex(S.items), S.firstSeq)
        expect(recordBytes.map(b => b.toString("hex"))).toEqual(S.records)
        expect(records.map(r => r.seq)).toEqual(canon.map((_, i) => S.firstSeq + i))
        expect(records.map(r => encodeRecord(r).toString("hex"))).toEqual(S.records)
        expect(S.firstSeq).toBe(RECS.length)
        expect(S.prevHead).toBe(RECS.at(-1)!.head)
        expect(hashRun(hex(S.prevHead), canon).toString("hex")).toBe(S.head)
    })

    test("the greedy encoder writes exactly the stream, from typed records or bytes", () => {
        expect(encodeItems(canon).toString("hex")).toBe(S.items)
        expect(encodeItems(canon.map(decodeRecord), { runs: true }).toString("hex")).toBe(S.items)
    })

    test("the stream has runs with -8, 7 and 0, odd runs, a step change, and full items breaking them", () => {
        const shapes = itemShapes(hex(S.items))
        const runs = shapes.filter(s => s.tag === ITEM_RUN)
        const deltas = runs.flatMap(r => r.deltas!)
        for (const d of [-8, 7, 0]) expect(deltas).toContain(d)
        expect(runs.some(r => r.n! % 2 === 1)).toBe(true)
        expect(new Set(runs.map(r => r.step)).size).toBeGreaterThan(1)
        expect(shapes.filter(s => s.tag === ITEM_FULL).length).toBeGreaterThanOrEqual(5)
        const recs = canon.map(decodeRecord)
        expect(recs.filter(isSample).length).toBeGreaterThanOrEqual(19)
        expect(recs.some(r => isSample(r) && isFaulted(r))).toBe(true)
        expect(recs.some(r => r.kind === KIND.time)).toBe(true)
        expect(shapes.reduce((n, s) => n + (s.n ?? 1), 0)).toBe(S.count)
    })

    test("full items only decode to the same records (decoders accept any valid mix)", () => {
        const full = encodeItems(canon, { runs: false })
        expect(itemShapes(full).every(s => s.tag === ITEM_FULL)).toBe(true)
        expect(decodeItems(full, S.firstSeq).recordBytes).toEqual(canon)
        // a mix: the first half full, the rest greedy
        const mix = Buffer.concat([encodeItems(canon.slice(0, 9), { runs: false }), encodeItems(canon.slice(9))])
        expect(decodeItems(mix, S.firstSeq).recordBytes).toEqual(canon)
    })

    test("round trips of random sample streams", () => {
        const r = rng(7)
        for (let t = 0; t < 200; t++) {
            const recs: LogRecord[] = []
            let up = r(1000) * 1000
            let tc = r(20000) - 10000
            const n = 1 + r(300)
            for (let i = 0; i < n; i++) {
                const seq = 1000 + i
                const k = r(40)
                if (k === 0) recs.push({ seq, kind: KIND.alarm, uptime: up + 1, type: 1, tc })
                else if (k === 1) recs.push({ seq, kind: 77, uptime: up, payload: Buffer.from([r(256)]) })
                else recs.push(sample(seq, up, tc, { sr: k === 2 ? 4 : 0, cj: k === 3 ? 1401 : 1400 }))
                up += [60000, 60000, 60000, 120000, 61500, 0][r(6)]
                tc += r(k === 4 ? 40 : 16) - 8
            }
            const bytes = recs.map(encodeRecord)
            const items = encodeItems(recs)
            expect(decodeItems(items, 1000).recordBytes).toEqual(bytes)
            expect(items.length).toBeLessThanOrEqual(encodeItems(recs, { runs: false }).length)
        }
    })

    test("a run holds at most 255 samples and a stable profile costs half a byte per sample", () => {
        const recs = Array.from({ length: 600 }, (_, i) => sample(i, 60000 * (i + 1), -8960 + (i % 2)))
        const items = encodeItems(recs)
        const shapes = itemShapes(items)
        expect(shapes.map(s => s.n ?? 1)).toEqual([1, 255, 255, 89])
        expect(items.length).toBe(15 + 3 * 4 + 128 + 128 + 45)
        expect(decodeItems(items, 0).recordBytes).toEqual(recs.map(encodeRecord))
    })

    test("an encoder refuses records that are not consecutive", () => {
        expect(() => encodeItems([sample(1, 0, 0), sample(3, 60000, 0)])).toThrow(/consecutive/)
    })

    test("everything that does not decode is a one-line 400", () => {
        const full = hex(S.records[0]).subarray(4) // kind, len, payload
        const f = Buffer.concat([Buffer.from([1]), full])
        const run = (n: number, step: number, ...nib: number[]) => {
            const b = Buffer.alloc(4)
            b[0] = 2
            b[1] = n
            b.writeUInt16LE(step, 2)
            return Buffer.concat([b, Buffer.from(nib)])
        }
        const cases: [Buffer, RegExp][] = [
            [Buffer.from([0x03]), /unknown item tag 0x03/],
            [Buffer.from([0x00, 0x00]), /unknown item tag 0x00/],
            [Buffer.concat([f, Buffer.from([0xff])]), /item 1 at offset 15: unknown item tag 0xff/],
            [f.subarray(0, 2), /truncated full item header/],
            [f.subarray(0, f.length - 1), /runs past the end/],
            [Buffer.from([1, 1, 11, ...Buffer.alloc(11)]), /needs 12/],
            [Buffer.from([1, 99, 3, 0, 0, 0]), /no uptime/],
            [run(1, 60, 0), /run without a reference sample/],
            [Buffer.concat([hex("0106090000000001e8030000"), run(1, 60, 0)]), /run without a reference sample/],
            [Buffer.concat([f, run(1, 60)]), /needs 1 nibble bytes, 0 left/],
            [Buffer.concat([f, run(4, 60, 0)]), /needs 2 nibble bytes, 1 left/],
            [Buffer.concat([f, run(0, 60)]), /run of 0 samples/],
            [Buffer.concat([f, run(1, 0, 0)]), /run with step 0/],
            [Buffer.concat([f, run(1, 60, 0x10)]), /pad nibble is not 0/],
            [Buffer.concat([f, run(3, 60, 0x00, 0x80)]), /pad nibble is not 0/],
            [Buffer.concat([f, run(2, 60)]), /needs 1 nibble bytes/],
            [Buffer.concat([f, hex("0201")]), /truncated run header/],
        ]
        for (const [buf, re] of cases) formatError(() => decodeItems(buf, 0), re)
        // derived values must fit their fields, seq must not pass 0xfffffffe
        const top = Buffer.concat([Buffer.from([1]), encodeRecord(sample(0, 0xffffffff - 30000, 0x7fffffff)).subarray(4)])
        formatError(() => decodeItems(Buffer.concat([top, run(1, 1, 0x07)]), 0), /overflows tc/)
        formatError(() => decodeItems(Buffer.concat([top, run(1, 60, 0x00)]), 0), /overflows uptime/)
        const low = Buffer.concat([Buffer.from([1]), encodeRecord(sample(0, 0, -0x80000000)).subarray(4)])
        formatError(() => decodeItems(Buffer.concat([low, run(1, 1, 0x0f)]), 0), /overflows tc/)
        formatError(() => decodeItems(Buffer.concat([f, f]), 0xfffffffe), /seq past 0xfffffffe/)
        formatError(() => decodeItems(Buffer.concat([f, run(5, 60, 0, 0, 0)]), 0, { maxCount: 4 }), /more than 4 records/)
        expect(decodeItems(Buffer.concat([f, f]), 0xfffffffd).records.map(r => r.seq)).toEqual([0xfffffffd, 0xfffffffe])
        expect(decodeItems(Buffer.alloc(0), 5).records).toEqual([])
    })
})

describe("flash block", () => {
    const B = V.block
    const recordsOf = (from: number, to: number) => RECS.slice(from, to + 1).map(r => hex(r.hex))

    test("encodes, decodes and re-hashes", () => {
        const records = recordsOf(B.firstSeq, B.lastSeq)
        const prevHead = headBefore(B.firstSeq)
        expect(blockKey(B.n)).toBe(B.key)
        expect(encodeBlock({ firstSeq: B.firstSeq, prevHead, records }).toString("hex")).toBe(B.hex)
        const b = decodeBlock(hex(B.hex))
        expect(b.firstSeq).toBe(B.firstSeq)
        expect(b.lastSeq).toBe(B.lastSeq)
        expect(b.prevHead).toEqual(prevHead)
        expect(b.recordBytes).toEqual(records)
        expect(b.head.toString("hex")).toBe(B.head)
        expect(b.head.toString("hex")).toBe(RECS[B.lastSeq].head)
        expect(itemShapes(b.items).some(s => s.tag === ITEM_RUN)).toBe(true)
        expect(hex(B.hex).length).toBeLessThanOrEqual(192)
    })

    test("limits and malformed blocks", () => {
        const prevHead = headBefore(B.firstSeq)
        const records = recordsOf(B.firstSeq, B.lastSeq + 1)
        expect(() => encodeBlock({ firstSeq: B.firstSeq, prevHead, records })).toThrow(/exceeds 192/)
        expect(() => encodeBlock({ firstSeq: B.firstSeq, prevHead, records: [] })).toThrow(/at least one record/)
        expect(() => encodeBlock({ firstSeq: B.firstSeq + 1, prevHead, records: records.slice(0, 2) })).toThrow(/firstSeq/)
        const good = hex(B.hex)
        formatError(() => decodeBlock(good.subarray(0, 35)), /shorter than its 36-byte header/)
        formatError(() => decodeBlock(good.subarray(0, 36)), /holds no record/)
        formatError(() => decodeBlock(Buffer.concat([good, Buffer.alloc(20)])), /exceeds 192/)
        formatError(() => decodeBlock(good.subarray(0, good.length - 1)), /runs past the end/)
        formatError(() => decodeBlock(Buffer.concat([good.subarray(0, 36), hex("02013c0000")])), /without a reference/)
    })

    test("lgmeta, lgack (40 bytes: seq, head, boot) and ekey (40 bytes: epoch, key, seal_seq)", () => {
        const { firstBlock, lastBlock, boot } = V.lgmeta
        expect(encodeLogMeta({ firstBlock, lastBlock, boot }).toString("hex")).toBe(V.lgmeta.hex)
        expect(decodeLogMeta(hex(V.lgmeta.hex))).toEqual({ firstBlock, lastBlock, boot })
        const head = hex(RECS[V.lgack.ackSeq].head)
        const lgack = { ackSeq: V.lgack.ackSeq, head, boot: V.lgack.boot }
        expect(encodeLogAck(lgack).toString("hex")).toBe(V.lgack.hex)
        expect(hex(V.lgack.hex).length).toBe(40)
        expect(decodeLogAck(hex(V.lgack.hex))).toEqual(lgack)
        const ekey = { epoch: V.ekey.epoch, key: K(V.ekey.epoch), sealSeq: V.ekey.sealSeq }
        expect(RECS[ekey.sealSeq]).toMatchObject({ kind: KIND.seal, epoch: ekey.epoch - 1 })
        expect(encodeEpochKey(ekey).toString("hex")).toBe(V.ekey.hex)
        expect(decodeEpochKey(hex(V.ekey.hex))).toEqual(ekey)
        expect(
            encodeEpochKey({ epoch: 0, key: K(0), sealSeq: SEAL_SEQ_NONE })
                .subarray(36)
                .toString("hex"),
        ).toBe("ffffffff")
        formatError(() => decodeLogAck(hex(V.lgack.hex).subarray(0, 36)), /lgack must be 40 bytes/)
        formatError(() => decodeLogMeta(Buffer.alloc(11)), /lgmeta must be 12 bytes/)
        formatError(() => decodeEpochKey(Buffer.alloc(36)), /ekey must be 40 bytes/)
    })
})

describe("batch", () => {
    const canonOf = (from: number, count: number): Buffer[] => {
        const all = [...RECS.map(r => r.hex), ...V.stream.records].map(hex)
        return all.slice(from, from + count)
    }
    const batches = [
        ["with PREV", V.batchPrev],
        ["without PREV", V.batchPlain],
    ] as const

    test.each(batches)("%s encodes to the vector", (_name, b) => {
        const input = {
            devid: V.devid,
            boot: b.boot,
            epoch: b.epoch,
            firstSeq: b.firstSeq,
            prevHead: b.prev ? hex(b.prevHead) : null,
            records: canonOf(b.firstSeq, b.count),
            key: K(b.epoch),
        }
        expect(encodeBatch(input).toString("hex")).toBe(b.hex)
        expect(encodeBatch({ ...input, records: input.records.map(decodeRecord) }).toString("hex")).toBe(b.hex)
    })

    test.each(batches)("%s decodes and verifies with k[epoch] only", (_name, b) => {
        const d = decodeBatch(hex(b.hex))
        expect(d).toMatchObject({ devid: V.devid, boot: b.boot, epoch: b.epoch, firstSeq: b.firstSeq, count: b.count, flags: b.prev })
        expect(d.lastSeq).toBe(b.firstSeq + b.count - 1)
        expect(d.prevHead).toEqual(b.prev ? hex(b.prevHead) : null)
        expect(d.recordBytes).toEqual(canonOf(b.firstSeq, b.count))
        expect(verifyBatchMac(d, K(b.epoch))).toBe(true)
        expect(verifyBatchMac(d, K(b.epoch - 1))).toBe(false)
        expect(verifyBatchMac(d, K(b.epoch + 1))).toBe(false)
        expect(d.mac.length).toBe(16)
        expect(hashRun(hex(b.prevHead), d.recordBytes).toString("hex")).toBe(
            b.firstSeq + b.count - 1 < RECS.length ? RECS[b.firstSeq + b.count - 1].head : V.stream.head,
        )
    })

    test("refuses malformed bodies with 400 and a reason", () => {
        const good = hex(V.batchPlain.hex)
        const edit = (f: (b: Buffer) => void) => {
            const b = Buffer.from(good)
            f(b)
            return b
        }
        const key = K(2)
        const build = (o: { items?: Buffer; count?: number; records?: Buffer[] }) =>
            encodeBatch({ devid: V.devid, boot: 2, epoch: 2, firstSeq: 20, records: o.records ?? [], key, items: o.items, count: o.count })
        const items = hex(V.stream.items)
        const cases: [Buffer, RegExp][] = [
            [Buffer.alloc(0), /empty body/],
            [edit(b => (b[0] = 0x58)), /bad magic/],
            [Buffer.concat([Buffer.from("CTB1"), good.subarray(4)]), /bad magic/],
            [Buffer.from('{"seq":1}'), /bad magic/],
            [Buffer.from("CTB"), /wrong length: 3 bytes/],
            [good.subarray(0, 44), /wrong length/],
            [good.subarray(0, good.length - 1), /wrong length/],
            [Buffer.concat([good, Buffer.alloc(1)]), /wrong length/],
            [edit(b => b.writeUInt16LE(b.readUInt16LE(27) + 1, 27)), /wrong length.*body_len/],
            [edit(b => (b[26] = 0x01)), /wrong length/], // PREV set without the 32 bytes
            [edit(b => (b[26] = 0x02)), /unknown flags 0x02/],
            [edit(b => (b[26] = 0x81)), /unknown flags 0x81/],
            [edit(b => b.writeUInt16LE(0, 24)), /count 0 out of range 1\.\.4096/],
            [edit(b => b.writeUInt16LE(BATCH_MAX_COUNT + 1, 24)), /count 4097 out of range/],
            [edit(b => b.writeUInt16LE(20, 24)), /more than 20 records/],
            [edit(b => b.writeUInt16LE(22, 24)), /count says 22 records, the items hold 21/],
            [edit(b => b.writeUInt32LE(0xffffffff, 20)), /first_seq 0xffffffff is reserved/],
            [edit(b => b.writeUInt32LE(0xfffffff0, 20)), /seq past 0xfffffffe/],
            [build({ items: Buffer.alloc(0), count: 1 }), /count says 1 records, the items hold 0/],
            [build({ items: items.subarray(0, items.length - 1), count: 21 }), /item \d+ at offset \d+/],
            [build({ items: Buffer.concat([Buffer.from([2, 1, 60, 0, 0]), items]), count: 22 }), /run without a reference/],
            [
                build({ items: Buffer.concat([items, Buffer.from([2, 1, 60, 0, 0x10])]), count: 22 }),
                /item 10 at offset 105: pad nibble is not 0/,
            ],
        ]
        for (const [body, re] of cases) formatError(() => decodeBatch(body), re)
    })

    test("the encoder checks its inputs", () => {
        const base = { devid: V.devid, boot: 2, epoch: 2, firstSeq: 20, records: canonOf(20, 3), key: K(2) }
        expect(() => encodeBatch({ ...base, key: Buffer.alloc(16) })).toThrow(/32 bytes/)
        expect(() => encodeBatch({ ...base, records: [] })).toThrow(/1\.\.4096/)
        expect(() => encodeBatch({ ...base, firstSeq: 21 })).toThrow(/firstSeq is 21/)
        expect(() => encodeBatch({ ...base, prevHead: Buffer.alloc(31) })).toThrow(/32 bytes/)
    })
})

describe("ack", () => {
    const A = V.ack

    test("encodes to the vector, decodes and verifies (72 bytes)", () => {
        const head = hex(A.head)
        expect(head).toEqual(hex(V.stream.head))
        const bytes = encodeAck({ devid: V.devid, ackkey: ACKKEY, ackSeq: A.ackSeq, head, boot: A.boot, epoch: A.epoch })
        expect(bytes.toString("hex")).toBe(A.hex)
        expect(bytes.length).toBe(72)
        const a = decodeAck(hex(A.hex), ACKKEY)
        expect(a).toMatchObject({ devid: V.devid, ackSeq: A.ackSeq, boot: A.boot, epoch: A.epoch, verified: true })
        expect(a.head).toEqual(head)
    })

    test("none", () => {
        const N = V.ackNone
        expect(encodeAck({ devid: V.devid, ackkey: ACKKEY, ackSeq: null, boot: N.boot, epoch: N.epoch }).toString("hex")).toBe(N.hex)
        const a = decodeAck(hex(N.hex), ACKKEY)
        expect(a).toMatchObject({ ackSeq: null, head: null, boot: N.boot, epoch: N.epoch })
        expect(hex(N.hex).readUInt32LE(12)).toBe(ACK_NONE)
    })

    test("a forged or damaged ack does not verify", () => {
        for (const i of [4, 13, 20, 48, 52, 56, 71]) {
            const forged = hex(A.hex)
            forged[i] ^= 1
            formatError(() => decodeAck(forged, ACKKEY), /mac does not verify/, 401)
            expect(decodeAck(forged).verified).toBe(false)
        }
        formatError(() => decodeAck(hex(A.hex), K(0)), /mac does not verify/, 401)
        formatError(() => decodeAck(hex(A.hex).subarray(1)), /wrong length/)
        formatError(() => decodeAck(Buffer.concat([Buffer.from("CTA1"), hex(A.hex).subarray(4)])), /bad magic/)
        const noneWithHead = hex(V.ackNone.hex)
        noneWithHead[20] = 1
        formatError(() => decodeAck(noneWithHead), /zero head/)
    })
})
