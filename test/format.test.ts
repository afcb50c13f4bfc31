// Host format code against the shared vectors (docs/vectors/format-v4.json): records, the pack
// coder, flash blocks, the open block's tail and the bookkeeping values, batches and acks, encrypted
// positions, and the timeline's placement of the vector log.
import { existsSync, readFileSync } from "node:fs"
import { describe, expect, test } from "vitest"
import {
    ACK_LEN,
    ACK_NONE,
    CTX,
    PRIORS,
    RangeEncoder,
    adaptShift,
    BATCH_FIXED_LEN,
    BLOCK_MAX_LEN,
    BLOCK_SLOTS,
    EPOCH_LEN,
    FormatError,
    KIND,
    LOG_ACK_LEN,
    LOG_META_LEN,
    LOC_LEN,
    PART_HEADER_LEN,
    SEAL_SEQ_NONE,
    TAIL_HEADER_LEN,
    TAIL_MAX_BYTES,
    PACK_STATE_LEN,
    blockFirstSeq,
    blockKey,
    chainHeads,
    cjToCelsius,
    completeOpenBlock,
    decodeAck,
    decodeBatch,
    decodeBlock,
    decodeEpochKey,
    decodeLogAck,
    decodeLogMeta,
    decodePack,
    decodePackState,
    decodeRecord,
    decodeTail,
    decryptLoc,
    encodeAck,
    encodeBatch,
    encodeBlock,
    encodeEpochKey,
    encodeLogAck,
    encodeLogMeta,
    encodePack,
    encodeParts,
    encodeRecord,
    encodeTail,
    encryptLoc,
    epochKey,
    evolveKey,
    flashHead,
    genesisHead,
    hashRun,
    initialPackState,
    isFaulted,
    isKnown,
    isSample,
    nextHead,
    packParts,
    parseRecords,
    readFlashLog,
    sampleCelsius,
    sealMac,
    tcToCelsius,
    verifyBatchMac,
    type LogRecord,
    type SampleRecord,
} from "../src/format/index.js"
import { buildTimeline } from "../src/verify/timeline.js"
import { DS_MAX_BYTES, DS_PATH, HOST_ONLY, JSON_PATH, VERSION, buildVectors } from "../src/tools/gen-vectors.js"

const root = new URL("../", import.meta.url)
const V = JSON.parse(readFileSync(new URL(JSON_PATH, root), "utf8"))
const hex = (s: string) => Buffer.from(s, "hex")
const K = (e: number) => hex(V.keys[e])
const ACKKEY = hex(V.ackkey)
const LOCKEY = hex(V.lockey)
type VRec = Record<string, unknown> & { seq: number; kind: number; hex: string; head: string }
const RECS: VRec[] = V.records
const ALL: Buffer[] = [...RECS.map(r => r.hex), ...V.stream.records].map(hex)
const headBefore = (seq: number) => hex(seq === 0 ? V.genesis : seq < RECS.length ? RECS[seq - 1].head : "")

/** A vector record as the typed object the host API uses. */
function typed(v: VRec): LogRecord {
    const { hex: _h, head: _hd, utcLo: _lo, utcHi: _hi, lat: _la, lon: _lo2, r: _r, ...r } = v
    for (const k of ["hash", "payload", "prev", "fw", "loc", "mac"]) if (typeof r[k] === "string") r[k] = hex(r[k] as string)
    // (flags are 0/1 in the vectors, which the firmware's twin reads as numbers)
    if (r.kind === KIND.ruleAlarm) r.raise = (r.raise as unknown as number) === 1
    if (r.kind === KIND.lid) for (const k of ["openEdge", "open"]) r[k] = (r[k] as unknown as number) === 1
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

const sample = (seq: number, t: number, tc: number, o: Partial<SampleRecord> = {}): SampleRecord => ({
    seq,
    kind: KIND.sample,
    t,
    tc,
    cj: 1400,
    sr: 0,
    sflags: 0,
    ...o,
})

/** a stream whose first record is a kind-200 record of 255 bytes, cut after its `t`: a decoder runs far past its end */
function cutStream(): Buffer {
    const rc = new RangeEncoder()
    const p = PRIORS.slice()
    rc.bit(p, CTX.sample, 1, adaptShift(0))
    rc.bit(p, CTX.short, 1, adaptShift(0))
    rc.direct(200, 8)
    rc.direct(255, 8)
    rc.direct(600, 32)
    return rc.finish()
}

describe("generated files", () => {
    test("the vector file is up to date (run: npx tsx src/tools/gen-vectors.ts)", () => {
        const { json } = buildVectors()
        expect(readFileSync(new URL(JSON_PATH, root), "utf8")).toBe(json)
        expect(V.version).toBe(VERSION)
        for (const old of ["docs/vectors/format-v1.json", "docs/vectors/format-v2.json"]) expect(existsSync(new URL(old, root))).toBe(false)
    })

    test("the DeviceScript twin holds hex strings and numbers only, fits its budget, and is current once regenerated", () => {
        const { ds } = buildVectors()
        expect(Buffer.byteLength(ds)).toBeLessThan(DS_MAX_BYTES)
        for (const k of HOST_ONLY) expect(ds).not.toMatch(new RegExp(`^    ${k}:`, "m"))
        const walk = (v: unknown): void => {
            if (Array.isArray(v)) v.forEach(walk)
            else if (v && typeof v === "object") Object.values(v).forEach(walk)
            else expect(["number", "string"]).toContain(typeof v)
        }
        walk(V)
        // the firmware tree writes its copy (npx tsx src/tools/gen-vectors.ts --devs); once it is v3 it must match
        const path = new URL(DS_PATH, root)
        const current = existsSync(path) ? readFileSync(path, "utf8") : ""
        if (current.includes(`version: ${VERSION},`)) expect(current).toBe(ds)
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

    test("every record starts with seq, kind, len and t (u32 seconds of the real-time clock)", () => {
        for (const r of RECS) {
            const b = hex(r.hex)
            expect(b.readUInt32LE(0)).toBe(r.seq)
            expect(b[4]).toBe(r.kind)
            expect(b[5]).toBe(b.length - 6)
            expect(b.readUInt32LE(6)).toBe(r.t)
        }
    })

    test("time records carry utc split as on the wire, a source and flags", () => {
        const times = RECS.filter(x => x.kind === KIND.time)
        for (const r of times) expect((r.utcHi as number) * 2 ** 32 + (r.utcLo as number)).toBe(r.utc)
        expect(times.map(r => r.flags)).toEqual([1, 0, 1])
    })

    test("boot records: counter, reason, rtc flags, the first 8 bytes of the head before them, firmware id", () => {
        const boots = RECS.filter(r => r.kind === KIND.boot)
        expect(boots.map(b => [b.boot, b.reason, b.rtc])).toEqual([
            [1, 0, 5],
            [2, 2, 2],
            [3, 3, 5],
        ])
        for (const b of boots) {
            expect(b.prev).toBe(b.seq === 0 ? "0000000000000000" : headBefore(b.seq).subarray(0, 8).toString("hex"))
            expect(hex(b.fw as string).length).toBe(8)
        }
    })

    test("the evicted summary describes the records it names in device time", () => {
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
        expect([ev.tFirst, ev.tLast]).toEqual([samples[0].t, samples.at(-1)!.t])
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
            [Buffer.from("000000000102" + "0000", "hex"), /has no t/],
            [Buffer.from("00000000010b" + "00".repeat(11), "hex"), /needs 12/],
            [Buffer.from("00000000021a" + "00".repeat(16), "hex"), /runs past the end/],
            [Buffer.from("000000000210" + "00".repeat(16), "hex"), /kind 2 needs 26/],
            [Buffer.from("000000000a04" + "00".repeat(4), "hex"), /kind 10 needs 8/],
            [Buffer.from("000000000918" + "00".repeat(24), "hex"), /kind 9 needs 30/], // a v2 fix (16-byte loc)
            [Buffer.from("ffffffff0d0400000000", "hex"), /reserved/],
        ]
        for (const [buf, re] of cases) formatError(() => parseRecords(buf), re)
        formatError(() => decodeRecord(Buffer.concat([s, s])), /expected one record, found 2/)
    })

    test("Celsius and faults", () => {
        expect(tcToCelsius(3200)).toBe(25)
        expect(cjToCelsius(1600)).toBe(25)
        expect(tcToCelsius(-2624)).toBe(-20.5)
        expect(cjToCelsius(-336)).toBe(-5.25)
        const [ok, nr] = [4, 8].map(i => decodeRecord(hex(RECS[i].hex)))
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
        expect(() => encodeRecord({ ...base, t: -1 })).toThrow(RangeError)
        expect(() => encodeRecord({ ...base, t: 2 ** 32 })).toThrow(RangeError)
        expect(() => encodeRecord({ ...base, tc: 2 ** 31 })).toThrow(RangeError)
        const boot = typed(RECS[0])
        expect(() => encodeRecord({ ...boot, prev: Buffer.alloc(7) } as LogRecord)).toThrow(/prev must be 8 bytes/)
        expect(() => encodeRecord({ ...boot, fw: Buffer.alloc(9) } as LogRecord)).toThrow(/fw must be 8 bytes/)
        expect(() => encodeRecord({ ...typed(RECS[3]), loc: Buffer.alloc(16) } as LogRecord)).toThrow(/loc must be 24 bytes/)
        expect(() => encodeRecord({ seq: 0, kind: KIND.battery, t: 0, mv: 70000, level: 0, flags: 0 })).toThrow(/mv/)
        expect(() => encodeRecord({ seq: 0, kind: KIND.sample, t: 0, payload: Buffer.alloc(8) })).toThrow(/is known/)
        expect(() => encodeRecord({ seq: 0, kind: 200, t: 0, payload: Buffer.alloc(252) })).toThrow(/u8 len/)
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

describe("positions (loc = r || ciphertext || tag)", () => {
    const withLoc = RECS.filter(r => typeof r.loc === "string")

    test("stop and fix carry encrypted positions that decrypt to the plaintext", () => {
        expect(withLoc.map(r => r.kind).sort()).toEqual([KIND.stop, KIND.fix])
        for (const r of withLoc) {
            const loc = hex(r.loc as string)
            expect(loc.length).toBe(LOC_LEN)
            expect(loc.subarray(0, 8).toString("hex")).toBe(r.r)
            expect(encryptLoc(LOCKEY, r.seq, r.lat as number, r.lon as number, hex(r.r as string)).toString("hex")).toBe(r.loc)
            expect(decryptLoc(LOCKEY, r.seq, loc)).toEqual({ lat: r.lat, lon: r.lon })
        }
        expect(withLoc.some(r => (r.lat as number) < 0) && withLoc.some(r => (r.lon as number) < 0)).toBe(true)
        for (const l of V.loc) expect(encryptLoc(LOCKEY, l.seq, l.lat, l.lon, hex(l.r)).toString("hex")).toBe(l.hex)
    })

    test("a fresh random part every time: the same seq and position never give the same loc", () => {
        const a = encryptLoc(LOCKEY, 7, 1, 2)
        const b = encryptLoc(LOCKEY, 7, 1, 2)
        expect(a.equals(b)).toBe(false)
        expect(decryptLoc(LOCKEY, 7, a)).toEqual({ lat: 1, lon: 2 })
        expect(decryptLoc(LOCKEY, 7, b)).toEqual({ lat: 1, lon: 2 })
    })

    test("a wrong key or seq, or a damaged loc does not decrypt", () => {
        const r = withLoc[0]
        const loc = hex(r.loc as string)
        formatError(() => decryptLoc(K(1), r.seq, loc), /does not authenticate/)
        formatError(() => decryptLoc(LOCKEY, r.seq + 1, loc), /does not authenticate/)
        for (const i of [0, 7, 8, 15, 16, 23]) {
            const bad = Buffer.from(loc)
            bad[i] ^= 0x10
            formatError(() => decryptLoc(LOCKEY, r.seq, bad), /does not authenticate/)
        }
        formatError(() => decryptLoc(LOCKEY, r.seq, loc.subarray(1)), /24 bytes/)
        expect(() => encryptLoc(LOCKEY, r.seq, 2 ** 31, 0)).toThrow(RangeError)
        expect(() => encryptLoc(LOCKEY, r.seq, 0, 0, Buffer.alloc(7))).toThrow(RangeError)
    })
})

describe("packed streams (vectors)", () => {
    test.each((V.pack as { name: string; firstSeq: number; records: string[]; packed: string }[]).map(c => [c.name, c] as const))(
        "%s",
        (_name, c) => {
            const recs = c.records.map(hex)
            expect(encodePack(recs).toString("hex")).toBe(c.packed)
            expect(decodePack(hex(c.packed), c.firstSeq, recs.length).map(b => b.toString("hex"))).toEqual(c.records)
        },
    )

    test("the main records (every kind) and the epoch-2 stream", () => {
        const main = RECS.map(r => hex(r.hex))
        expect(encodePack(main).toString("hex")).toBe(V.packedMain.packed)
        expect(decodePack(hex(V.packedMain.packed), 0, main.length)).toEqual(main)
        const S = V.stream
        expect(encodePack((S.records as string[]).map(hex)).toString("hex")).toBe(S.packed)
        expect(decodePack(hex(S.packed), S.firstSeq, S.count).map(b => b.toString("hex"))).toEqual(S.records)
        expect(S.firstSeq).toBe(RECS.length)
        expect(S.prevHead).toBe(RECS.at(-1)!.head)
        expect(hashRun(hex(S.prevHead), (S.records as string[]).map(hex)).toString("hex")).toBe(S.head)
        // a logger's samples pack to a few bytes each; canonical they are 18
        expect(hex(S.packed).length / S.count).toBeLessThan(3)
    })

    test("the initial pack state: the priors and an empty coder", () => {
        const { rc, m } = decodePackState(hex(V.initialPackState))
        expect(hex(V.initialPackState).length).toBe(PACK_STATE_LEN)
        expect(rc).toEqual({ low: 0, range: 0xffffffff, cache: 0, hasCache: false, ffCount: 0 })
        expect(m.records).toBe(0)
        expect(initialPackState().toString("hex")).toBe(V.initialPackState)
    })
})

describe("flash", () => {
    const B = V.block
    const blockRecs = ALL.slice(B.firstSeq, B.lastSeq + 1)

    test("a closed block: first_seq and the finished packed stream", () => {
        expect(blockKey(B.n)).toBe(B.key)
        expect(encodeBlock(blockRecs).toString("hex")).toBe(B.hex)
        expect(blockFirstSeq(hex(B.hex))).toBe(B.firstSeq)
        expect(decodeBlock(hex(B.hex), blockRecs.length)).toEqual(blockRecs)
        expect(hashRun(headBefore(B.firstSeq), decodeBlock(hex(B.hex), blockRecs.length)).toString("hex")).toBe(B.head)
        expect(hex(B.hex).length).toBeLessThanOrEqual(BLOCK_MAX_LEN)
    })

    test("block keys go round a ring of 64 names", () => {
        expect([0, 1, 15, 63, 64, 65, 127, 0xffffffff].map(blockKey)).toEqual(["b00", "b01", "b0f", "b3f", "b00", "b01", "b3f", "b3f"])
        expect(BLOCK_SLOTS).toBe(64)
        expect(() => blockKey(-1)).toThrow(RangeError)
        expect(() => blockKey(1.5)).toThrow(RangeError)
    })

    test("block limits and malformed blocks", () => {
        const many = Array.from({ length: 200 }, (_, i) => encodeRecord(sample(i, 300 * i, (Math.imul(i, 2654435761) >>> 0) % 20000)))
        expect(() => encodeBlock(many)).toThrow(/exceeds 224/)
        expect(() => encodeBlock([])).toThrow(RangeError)
        formatError(() => blockFirstSeq(Buffer.alloc(3)), /no first_seq/)
        formatError(() => blockFirstSeq(Buffer.from("ffffffff", "hex")), /reserved/)
        formatError(() => decodeBlock(Buffer.concat([hex(B.hex).subarray(0, 4), cutStream()]), blockRecs.length), /ends before its records/)
    })

    const F = V.flash
    const settings = new Map<string, Buffer>(Object.entries(F.settings as Record<string, string>).map(([k, v]) => [k, hex(v)]))
    const get = (k: string) => settings.get(k)

    test("a whole image reads back (readFlashLog): blocks round the ring, the open block completed by its tail", () => {
        const log = readFlashLog(get)
        expect(log.problems).toEqual([])
        expect(log.entries.map(e => e.seq)).toEqual(ALL.slice(F.firstSeq, F.lastSeq + 1).map((_, i) => F.firstSeq + i))
        expect(log.entries.map(e => e.bytes)).toEqual(ALL.slice(F.firstSeq, F.lastSeq + 1))
        expect(flashHead(log, hex(F.baseHead)).toString("hex")).toBe(F.head)
        expect(log.boot).toBe(3)
        expect(log.ack?.ackSeq).toBe(25)
        // every head the image states is the real one
        const heads = chainHeads(hex(V.genesis), ALL)
        for (const c of log.claims) expect(c.head.toString("hex"), c.what).toBe((c.seq < 0 ? hex(V.genesis) : heads[c.seq]).toString("hex"))
        expect(Object.keys(F.settings).filter(k => /^b[0-9a-f]{2}$/.test(k))).toEqual(["b3f", "b00"])
    })

    test("lgmeta (72 bytes): first and last block, base head, open head", () => {
        const m = decodeLogMeta(hex(V.lgmeta.hex))
        expect(hex(V.lgmeta.hex).length).toBe(LOG_META_LEN)
        expect(m).toMatchObject({ firstBlock: V.lgmeta.firstBlock, lastBlock: V.lgmeta.lastBlock })
        expect(m.baseHead.toString("hex")).toBe(V.lgmeta.baseHead)
        expect(m.openHead.toString("hex")).toBe(chainHeads(hex(V.genesis), ALL)[F.blockFirstSeqs.at(-1) - 1].toString("hex"))
        expect(encodeLogMeta(m).toString("hex")).toBe(V.lgmeta.hex)
        expect(get("lgmeta")!.toString("hex")).toBe(V.lgmeta.hex)
        formatError(() => decodeLogMeta(hex(V.lgmeta.hex).subarray(1)), /72 bytes/)
    })

    test("the tail: version, block length, tail bytes, next seq, head, pack state, bytes", () => {
        const tl = get("tl")!
        const t = decodeTail(tl)
        expect(tl[0]).toBe(4)
        expect(tl.length).toBe(TAIL_HEADER_LEN + PACK_STATE_LEN + t.bytes.length)
        expect(t.nextSeq).toBe(F.lastSeq + 1)
        expect(t.head.toString("hex")).toBe(F.head)
        expect(t.blockLen).toBe(get(F.openKey)!.length)
        expect(t.bytes.length).toBe(7)
        expect(encodeTail(t).equals(tl)).toBe(true)
        expect(completeOpenBlock(get(F.openKey)!, t).toString("hex")).toBe(F.openComplete)
        const open = ALL.slice(F.blockFirstSeqs.at(-1), F.lastSeq + 1)
        expect(decodeBlock(hex(F.openComplete), open.length)).toEqual(open)
        expect(hex(F.openComplete).equals(encodeBlock(open))).toBe(true)
        formatError(() => decodeTail(tl.subarray(0, 100)), /too short/)
        formatError(() => decodeTail(Buffer.concat([tl, Buffer.alloc(1)])), /its tail says 7/)
        const v2 = Buffer.from(tl)
        v2[0] = 2
        formatError(() => decodeTail(v2), /version 2, expected 4/)
        expect(() => encodeTail({ ...t, bytes: Buffer.alloc(TAIL_MAX_BYTES + 1) })).toThrow(RangeError)
    })

    test("a power cut between the flush and the tail, or after closing the block: the open block still reads", () => {
        const t = decodeTail(get("tl")!)
        const value = get(F.openKey)!
        // (b) the flush landed (the value grew by the tail's bytes), the tail was not rewritten
        const flushed = Buffer.concat([value, t.bytes])
        expect(completeOpenBlock(flushed, t).toString("hex")).toBe(F.openComplete)
        // (c) the block was rewritten finished, the tail not yet
        expect(completeOpenBlock(hex(F.openComplete), t).toString("hex")).toBe(F.openComplete)
    })

    test("a block that does not decode or is missing is a problem, not an exception", () => {
        const first = Object.keys(F.settings).find(k => /^b/.test(k))!
        const broken = new Map(settings)
        broken.set(first, Buffer.concat([get(first)!.subarray(0, 4), cutStream()]))
        const a = readFlashLog(k => broken.get(k))
        expect(a.problems[0].detail).toMatch(/block b3f does not decode/)
        expect(a.entries[0].seq).toBe(F.blockFirstSeqs[1]) // the open block still reads
        const gone = new Map(settings)
        gone.delete("b00")
        expect(readFlashLog(k => gone.get(k)).problems[0].detail).toMatch(/block b00 \(number 64\) is missing/)
        expect(readFlashLog(() => undefined)).toMatchObject({ entries: [], problems: [], ack: null, boot: 0 })
        for (const v of ["0102", "ffffffff00"]) {
            const short = new Map(settings)
            short.set("b00", hex(v))
            expect(readFlashLog(k => short.get(k)).problems[0].detail).toMatch(
                /block b00: block (of 2 bytes has no first_seq|first_seq 0xffffffff)/,
            )
        }
    })

    test("lgack (40 bytes: seq, head, boot) and ep (44 bytes: epoch, key, seal_seq, start)", () => {
        const a = decodeLogAck(hex(V.lgack.hex))
        expect(hex(V.lgack.hex).length).toBe(LOG_ACK_LEN)
        expect(a).toMatchObject({ ackSeq: V.lgack.ackSeq, boot: V.lgack.boot })
        expect(a.head.toString("hex")).toBe(RECS[V.lgack.ackSeq].head)
        expect(encodeLogAck(a).toString("hex")).toBe(V.lgack.hex)
        formatError(() => decodeLogAck(hex(V.lgack.hex).subarray(1)), /40 bytes/)
        const e = decodeEpochKey(hex(V.ep.hex))
        expect(hex(V.ep.hex).length).toBe(EPOCH_LEN)
        expect(e).toMatchObject({ epoch: V.ep.epoch, sealSeq: V.ep.sealSeq, start: V.ep.start })
        expect(e.key).toEqual(K(V.ep.epoch))
        expect(encodeEpochKey(e).toString("hex")).toBe(V.ep.hex)
        expect(decodeEpochKey(encodeEpochKey({ epoch: 0, key: K(0), sealSeq: SEAL_SEQ_NONE, start: 0 })).sealSeq).toBe(SEAL_SEQ_NONE)
        formatError(() => decodeEpochKey(hex(V.ep.hex).subarray(4)), /44 bytes/)
    })
})

describe("batch", () => {
    const batches = [
        ["with PREV", V.batchPrev],
        ["without PREV, in parts", V.batchPlain],
    ] as const

    test.each(batches)("%s encodes to the vector", (_name, b) => {
        const input = {
            devid: V.devid,
            boot: b.boot,
            epoch: b.epoch,
            nonce: b.nonce,
            firstSeq: b.firstSeq,
            prevHead: b.prev ? hex(b.prevHead) : null,
            records: ALL.slice(b.firstSeq, b.firstSeq + b.count),
            key: K(b.epoch),
            perPart: b.perPart,
        }
        expect(encodeBatch(input).toString("hex")).toBe(b.hex)
        expect(encodeBatch({ ...input, records: input.records.map(decodeRecord) }).toString("hex")).toBe(b.hex)
    })

    test.each(batches)("%s decodes and verifies with k[epoch] only", (_name, b) => {
        const d = decodeBatch(hex(b.hex))
        expect(d).toMatchObject({
            devid: V.devid,
            boot: b.boot,
            epoch: b.epoch,
            nonce: b.nonce,
            firstSeq: b.firstSeq,
            count: b.count,
            flags: b.prev,
        })
        expect(d.lastSeq).toBe(b.firstSeq + b.count - 1)
        expect(d.prevHead).toEqual(b.prev ? hex(b.prevHead) : null)
        expect(d.recordBytes).toEqual(ALL.slice(b.firstSeq, b.firstSeq + b.count))
        expect(verifyBatchMac(d, K(b.epoch))).toBe(true)
        expect(verifyBatchMac(d, K(b.epoch - 1))).toBe(false)
        expect(verifyBatchMac(d, K(b.epoch + 1))).toBe(false)
        expect(d.mac.length).toBe(16)
        expect(hashRun(hex(b.prevHead), d.recordBytes)).toEqual(chainHeads(hex(V.genesis), ALL)[d.lastSeq])
        // the body is the parts: len u16, count u16, a packed stream each
        const parts = packParts(d.recordBytes, b.perPart)
        expect(d.body).toEqual(encodeParts(parts))
        expect(parts.length).toBe(Math.ceil(b.count / b.perPart))
        expect(d.body.readUInt16LE(2)).toBe(Math.min(b.perPart, b.count))
    })

    test("refuses malformed bodies with 400 and a reason", () => {
        const good = hex(V.batchPlain.hex)
        const edit = (f: (b: Buffer) => void) => {
            const b = Buffer.from(good)
            f(b)
            return b
        }
        const L = BATCH_FIXED_LEN // body_len is here (no PREV), the parts after it
        const build = (body: Buffer, count: number) =>
            encodeBatch({ devid: V.devid, boot: 3, epoch: 2, firstSeq: 30, records: [], key: K(2), body, count })
        const stream = hex(V.stream.packed)
        const part = (s: Buffer, n: number) => encodeParts([{ count: n, stream: s }])
        const cases: [Buffer, RegExp][] = [
            [Buffer.alloc(0), /empty body/],
            [edit(b => (b[0] = 0x58)), /bad magic/],
            [Buffer.concat([Buffer.from("CTB2"), good.subarray(4)]), /bad magic/],
            [Buffer.from('{"seq":1}'), /bad magic/],
            [Buffer.from("CTB"), /wrong length: 3 bytes/],
            [good.subarray(0, 40), /wrong length/],
            [good.subarray(0, good.length - 1), /wrong length/],
            [Buffer.concat([good, Buffer.alloc(1)]), /wrong length/],
            [edit(b => b.writeUInt16LE(b.readUInt16LE(L) + 1, L)), /wrong length.*body_len/],
            [edit(b => (b[30] = 0x01)), /wrong length/], // PREV set without the 32 bytes
            [edit(b => (b[30] = 0x02)), /unknown flags 0x02/],
            [edit(b => (b[30] = 0x81)), /unknown flags 0x81/],
            [edit(b => b.writeUInt16LE(0, 28)), /count 0/],
            [edit(b => b.writeUInt16LE(V.batchPlain.count - 1, 28)), /the parts hold more/],
            [edit(b => b.writeUInt16LE(V.batchPlain.count + 1, 28)), /count says \d+ records, the parts hold \d+/],
            [edit(b => b.writeUInt32LE(0xffffffff, 24)), /first_seq 0xffffffff is reserved/],
            [edit(b => b.writeUInt32LE(0xfffffff0, 24)), /runs past seq 0xfffffffe/],
            [edit(b => b.writeUInt16LE(0, L + 2 + 2)), /a part of 0 records/],
            [edit(b => b.writeUInt16LE(0xfff0, L + 2)), /run past the body/],
            [build(Buffer.alloc(0), 1), /count says 1 records, the parts hold 0/],
            [build(Buffer.from([1, 0]), 1), /truncated part header/],
            [build(part(cutStream(), 1), 1), /part 0 at offset 0: .*ends before its records/],
            [
                build(Buffer.concat([part(stream, V.stream.count), part(cutStream(), 1)]), V.stream.count + 1),
                /part 1 at offset \d+: .*ends before/,
            ],
        ]
        for (const [body, re] of cases) formatError(() => decodeBatch(body), re)
        expect(PART_HEADER_LEN).toBe(4)
    })

    test("the encoder checks its inputs", () => {
        const base = { devid: V.devid, boot: 3, epoch: 2, firstSeq: 30, records: ALL.slice(30, 33), key: K(2) }
        expect(() => encodeBatch({ ...base, key: Buffer.alloc(16) })).toThrow(/32 bytes/)
        expect(() => encodeBatch({ ...base, records: [] })).toThrow(/at least one record/)
        expect(() => encodeBatch({ ...base, firstSeq: 31 })).toThrow(/firstSeq is 31/)
        expect(() => encodeBatch({ ...base, prevHead: Buffer.alloc(31) })).toThrow(/32 bytes/)
        expect(() => encodeBatch({ ...base, nonce: 2 ** 32 })).toThrow(/nonce/)
        // a random nonce per batch unless one is given
        expect(decodeBatch(encodeBatch(base)).nonce).not.toBe(decodeBatch(encodeBatch(base)).nonce)
    })
})

describe("ack", () => {
    const A = V.ack

    test("encodes to the vector, decodes and verifies (84 bytes: the batch's nonce and the server's UTC)", () => {
        const head = hex(A.head)
        expect(head).toEqual(hex(V.stream.head))
        const bytes = encodeAck({
            devid: V.devid,
            ackkey: ACKKEY,
            ackSeq: A.ackSeq,
            head,
            boot: A.boot,
            epoch: A.epoch,
            nonce: A.nonce,
            utc: A.utc,
        })
        expect(bytes.toString("hex")).toBe(A.hex)
        expect(bytes.length).toBe(ACK_LEN)
        expect(bytes.toString("latin1", 0, 4)).toBe("CTA3")
        const a = decodeAck(hex(A.hex), ACKKEY)
        expect(a).toMatchObject({
            devid: V.devid,
            ackSeq: A.ackSeq,
            boot: A.boot,
            epoch: A.epoch,
            nonce: A.nonce,
            utc: A.utc,
            verified: true,
        })
        expect(a.nonce).toBe(V.batchPlain.nonce)
        expect(a.head).toEqual(head)
    })

    test("none", () => {
        const N = V.ackNone
        const bytes = encodeAck({ devid: V.devid, ackkey: ACKKEY, ackSeq: null, boot: N.boot, epoch: N.epoch, nonce: N.nonce, utc: N.utc })
        expect(bytes.toString("hex")).toBe(N.hex)
        const a = decodeAck(hex(N.hex), ACKKEY)
        expect(a).toMatchObject({ ackSeq: null, head: null, boot: N.boot, epoch: N.epoch, nonce: N.nonce, utc: N.utc })
        expect(hex(N.hex).readUInt32LE(12)).toBe(ACK_NONE)
    })

    test("a forged or damaged ack does not verify", () => {
        for (const i of [4, 13, 20, 48, 52, 56, 60, 64, 67, 68, 83]) {
            const forged = hex(A.hex)
            forged[i] ^= 1
            formatError(() => decodeAck(forged, ACKKEY), /mac does not verify/, 401)
            expect(decodeAck(forged).verified).toBe(false)
        }
        formatError(() => decodeAck(hex(A.hex), K(0)), /mac does not verify/, 401)
        formatError(() => decodeAck(hex(A.hex).subarray(1)), /wrong length/)
        formatError(() => decodeAck(Buffer.concat([Buffer.from("CTA2"), hex(A.hex).subarray(4)])), /bad magic/)
        const noneWithHead = hex(V.ackNone.hex)
        noneWithHead[20] = 1
        formatError(() => decodeAck(noneWithHead), /zero head/)
        const base = { devid: V.devid, ackkey: ACKKEY, ackSeq: null, boot: 1, epoch: 0, nonce: 1 }
        expect(() => encodeAck({ ...base, utc: -1 })).toThrow(/utc/)
        expect(() => encodeAck({ ...base, utc: 0, nonce: -1 })).toThrow(/nonce/)
    })
})

describe("timeline (docs/timebase.md)", () => {
    const records = [...RECS.map(typed), ...(V.stream.records as string[]).map(h => decodeRecord(hex(h)))]

    test("the vector log is placed as the vectors say, with no finding", () => {
        const tl = buildTimeline(records)
        expect(tl.placed.map(p => p.utc ?? -1)).toEqual(V.placed)
        expect(tl.findings).toEqual([])
        expect(tl.placed.map(p => p.run).filter((r, i, a) => a.indexOf(r) === i)).toEqual([0, 1, 2, 3])
    })

    test("records of a boot before its first time record are placed through the running clock", () => {
        const tl = buildTimeline(records)
        const boot2 = RECS.findIndex(r => r.kind === KIND.boot && r.boot === 2)
        const time = RECS.findIndex((r, i) => i > boot2 && r.kind === KIND.time)
        // the boot record is placed by the time record before it (same run), within a second of its own time record's mapping
        expect(tl.placed[boot2].utc).not.toBeNull()
        const viaLater = (RECS[time].utc as number) - ((RECS[time].t as number) - (RECS[boot2].t as number)) * 1000
        expect(Math.abs(tl.placed[boot2].utc! - viaLater)).toBeLessThan(1000)
    })

    test("after a lost clock, records wait for the next time record; none at all leaves them unplaced", () => {
        const boot3 = RECS.findIndex(r => r.kind === KIND.boot && r.boot === 3)
        const tl = buildTimeline(records)
        expect(tl.placed[boot3].run).toBeGreaterThan(tl.placed[boot3 - 1].run)
        expect(tl.placed[boot3].utc).toBe(V.placed[boot3])
        const cut = buildTimeline(records.slice(0, boot3 + 2)) // the boot and its config record, no time record
        expect(cut.placed.slice(boot3).map(p => p.utc)).toEqual([null, null])
    })

    test("t going backwards within a run is a finding; a SET time record explains it", () => {
        const base = { kind: KIND.sample, tc: 0, cj: 0, sr: 0, sflags: 0 } as const
        const back = buildTimeline([
            { ...base, seq: 0, t: 1000 },
            { ...base, seq: 1, t: 900 },
        ] as LogRecord[])
        expect(back.findings).toMatchObject([{ seq: 1, kind: "time-backwards" }])
        const set = buildTimeline([
            { ...base, seq: 0, t: 1000 },
            { seq: 1, kind: KIND.time, t: 1001, utc: 500_000, source: 1, flags: 1 },
            { ...base, seq: 2, t: 560 },
        ] as LogRecord[])
        expect(set.findings).toEqual([])
        expect(set.placed.map(p => p.utc)).toEqual([499_000, 500_000, 560_000])
    })

    test("a clock that drifts past the bound between two time records is a finding", () => {
        const tr = (seq: number, t: number, utc: number) => ({ seq, kind: KIND.time, t, utc, source: 1, flags: 0 })
        const day = 86_400
        const ok = buildTimeline([tr(0, 0, 1e12), tr(1, day, 1e12 + day * 1000 + 5_000)] as LogRecord[]) // 58 ppm
        expect(ok.findings).toEqual([])
        const bad = buildTimeline([tr(0, 0, 1e12), tr(1, day, 1e12 + day * 1000 + 120_000)] as LogRecord[]) // 1400 ppm
        expect(bad.findings).toMatchObject([{ seq: 1, kind: "time-drift" }])
    })
})
