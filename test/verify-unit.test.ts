import { describe, it, expect } from "vitest"
import { randomBytes } from "node:crypto"
import { verifyLog, type LogEntry, type VerifyInput } from "../src/verify/verify.js"
import { covered, verifyChain } from "../src/verify/chain.js"
import {
    KIND,
    chainHeads,
    encodeRecord,
    encryptLoc,
    epochKey,
    genesisHead,
    nextHead,
    sealMac,
    decodeRecord,
    type LogRecord,
    type EvictedRecord,
    type SealRecord,
    type SampleRecord,
} from "../src/format/index.js"

// The verifier's rules on small logs written the way the firmware writes them (devs/app/logger.ts):
// the cases the real simulator runs do not reach in a few seconds (evictions, positions, firmware
// faults in boots and seals), and the order checks in isolation.

/** the random part of every loc in this file */
const LOC_R = Buffer.from("0123456789abcdef", "hex")

/** A logger as the firmware behaves: seal the open epoch at every boot, evolve after each seal. */
class FakeLogger {
    readonly devid = randomBytes(8).toString("hex")
    readonly k0 = randomBytes(32)
    readonly lockey = randomBytes(32)
    recs: Buffer[] = []
    heads: Buffer[] = []
    head: Buffer
    epoch = 0
    sealSeq = -1
    boot = 0
    up = 0
    constructor() {
        this.head = genesisHead(this.devid)
    }
    get seq() {
        return this.recs.length
    }
    push(r: LogRecord) {
        const b = encodeRecord(r)
        this.recs.push(b)
        this.head = nextHead(this.head, b)
        this.heads.push(this.head)
    }
    start(bootCounter = this.boot + 1) {
        if (this.seq > 0) this.seal()
        this.boot = bootCounter
        this.push({
            seq: this.seq,
            kind: KIND.boot,
            t: this.up,
            boot: this.boot,
            reason: 0,
            rtc: 0,
            prev: this.seq ? this.head.subarray(0, 8) : Buffer.alloc(8),
            fw: Buffer.alloc(8),
        })
        return this
    }
    sample(tc = -10000) {
        this.up += 300
        this.push({ seq: this.seq, kind: KIND.sample, t: this.up, tc, cj: -640, sr: 0, sflags: 0 })
        return this
    }
    samples(n: number) {
        for (let i = 0; i < n; i++) this.sample(-10000 + (i % 5))
        return this
    }
    seal(epoch = this.epoch) {
        const seq = this.seq
        const count = seq - this.sealSeq - 1
        const mac = sealMac(epochKey(this.k0, epoch), this.devid, epoch, seq, this.head, count)
        this.push({ seq, kind: KIND.seal, t: this.up, epoch, count, mac })
        this.sealSeq = seq
        this.epoch = epoch + 1
        return this
    }
    fix(lat: number, lon: number) {
        this.push({
            seq: this.seq,
            kind: KIND.fix,
            t: this.up,
            loc: encryptLoc(this.lockey, this.seq, lat, lon, LOC_R),
            fix: 3,
            sv: 9,
        })
        return this
    }
    /** the store is full: summarise records first..last in an evicted record and seal it */
    evict(first: number, last: number, change?: (v: EvictedRecord) => void) {
        const rs = this.recs
            .slice(first, last + 1)
            .map(b => decodeRecord(b))
            .filter(r => r.kind === KIND.sample) as { tc: number; sr: number; sflags: number }[]
        const v: EvictedRecord = {
            seq: this.seq,
            kind: KIND.evicted,
            t: this.up,
            first,
            last,
            samples: rs.length,
            tFirst: 0,
            tLast: 0,
            minTc: Math.min(...rs.map(r => r.tc)),
            maxTc: Math.max(...rs.map(r => r.tc)),
            outMin: 0,
            srOr: 0,
            sflagsOr: 0,
        }
        change?.(v)
        this.push(v)
        return this.seal()
    }
    /** the server's copy: records with their heads */
    entries(keep: (seq: number) => boolean = () => true): LogEntry[] {
        return this.recs.map((bytes, seq) => ({ seq, bytes, head: this.heads[seq] })).filter(e => keep(e.seq))
    }
    input(over: Partial<VerifyInput> = {}): VerifyInput {
        return { devid: this.devid, k0: this.k0, lockey: this.lockey, records: this.entries(), ...over }
    }
}

const kinds = (v: ReturnType<typeof verifyLog>) => v.problems.map(p => `${p.kind}@${p.seq}${p.last !== undefined ? `..${p.last}` : ""}`)

describe("verifyLog on firmware-shaped logs", () => {
    it("accepts a clean log with two boots, seals, positions and an unsealed tail", () => {
        const d = new FakeLogger().start().samples(10).fix(508_000_000, 44_000_000).samples(3).seal().samples(4).start().samples(5)
        const v = verifyLog(d.input())
        expect(kinds(v)).toEqual([])
        expect(v.ok).toBe(true)
        expect(v.boots).toEqual([1, 2])
        expect(v.epochs).toBe(2)
        expect(v.unsealed).toBe(6) // boot 2 and its five samples
        expect(v.positions).toEqual({ decrypted: 1, failed: 0 })
    })

    it("explains a hole with sealed evicted records and resumes at the PREV segment's head", () => {
        const d = new FakeLogger().start().samples(40)
        d.evict(5, 20).samples(6).seal().samples(2)
        // the server got 0..4, then (after the eviction) a PREV batch from 21 on
        const v = verifyLog(d.input({ records: d.entries(q => q < 5 || q > 20), segments: [{ startSeq: 21, prevHead: d.heads[20] }] }))
        expect(kinds(v)).toEqual([])
        expect(v.evictedRanges).toMatchObject([{ first: 5, last: 20, samples: 16, sealed: true }])
        expect(v.notes.join("\n")).toMatch(/seq 5\.\.20 evicted unsent/)
        expect(v.sealedThrough).toBe(d.sealSeq)
    })

    it("reports the seqs of a hole that no evicted record covers", () => {
        const d = new FakeLogger().start().samples(40)
        d.evict(5, 20).samples(6).seal()
        const v = verifyLog(
            d.input({
                records: d.entries(q => q < 5 || (q > 20 && q !== 30 && q !== 31)),
                segments: [{ startSeq: 21, prevHead: d.heads[20] }],
            }),
        )
        expect(kinds(v)).toEqual(["deleted@30..31"])
        // the evicted record alone does not excuse records it does not name
        const w = verifyLog(d.input({ records: d.entries(q => q < 3 || q > 20), segments: [{ startSeq: 21, prevHead: d.heads[20] }] }))
        expect(kinds(w)).toEqual(["deleted@3..4"])
    })

    it("does not accept an eviction that no seal authenticates", () => {
        const d = new FakeLogger().start().samples(30).seal().samples(3)
        // an unsealed evicted record, as anyone able to write the database could append one
        const fake: EvictedRecord = {
            seq: d.seq,
            kind: KIND.evicted,
            t: 1,
            first: 5,
            last: 20,
            samples: 16,
            tFirst: 0,
            tLast: 0,
            minTc: 0,
            maxTc: 0,
            outMin: 0,
            srOr: 0,
            sflagsOr: 0,
        }
        d.push(fake)
        const v = verifyLog(d.input({ records: d.entries(q => q < 5 || q > 20), segments: [{ startSeq: 21, prevHead: d.heads[20] }] }))
        expect(kinds(v)).toEqual(["deleted@5..20"])
        expect(v.problems[0].detail).toMatch(/not sealed/)
    })

    it("checks an eviction summary against records still held", () => {
        const d = new FakeLogger().start().samples(30)
        d.evict(5, 20, v => (v.maxTc = -9000))
            .samples(2)
            .seal()
        const v = verifyLog(d.input())
        expect(kinds(v)).toEqual([`bad-summary@${d.seq - 5}`])
        expect(v.problems[0].detail).toMatch(/maxTc -9000/)
    })

    it("authenticates positions with the location key; another device's position is foreign", () => {
        const d = new FakeLogger().start().samples(3).fix(1, 2).samples(2).seal()
        const fixSeq = 4
        const wrong = verifyLog(d.input({ lockey: randomBytes(32) }))
        expect(kinds(wrong)).toEqual([`bad-loc@${fixSeq}`])
        expect(wrong.positions).toEqual({ decrypted: 0, failed: 1 })
        // a fix record of another logger put in place of ours (with our stored heads)
        const b = new FakeLogger().start().samples(3).fix(5, 6)
        const recs = d.entries().map(e => (e.seq === fixSeq ? { ...e, bytes: b.recs[fixSeq] } : e))
        const v = verifyLog(d.input({ records: recs, others: [{ devid: b.devid, lockey: b.lockey }] }))
        expect(v.problems[0]).toMatchObject({ kind: "foreign", seq: fixSeq })
    })

    it("recognises another device's seal by its key", () => {
        const a = new FakeLogger().start().samples(10).seal().samples(2)
        const b = new FakeLogger().start().samples(10).seal().samples(2)
        const recs = a.entries().map(e => (e.seq === 11 ? { seq: 11, bytes: b.recs[11], head: b.heads[11] } : e))
        const v = verifyLog(a.input({ records: recs, others: [{ devid: b.devid, k0: b.k0, records: b.entries() }] }))
        expect(v.problems[0]).toMatchObject({ kind: "foreign", seq: 11 })
        // unknown, the other seal is simply bad
        const w = verifyLog(a.input({ records: recs.map(e => ({ seq: e.seq, bytes: e.bytes })) }))
        expect(w.problems[0]).toMatchObject({ kind: "bad-seal", seq: 0, last: 11 })
    })

    it("checks boot records: counter, prev, and the seal of the open epoch before them", () => {
        const repeat = new FakeLogger().start().samples(3).start(1).samples(2)
        expect(kinds(verifyLog(repeat.input()))).toEqual(["bad-boot@5"])
        // a start-up cut before its boot record counts a boot without one: a note, not a problem
        const skip = new FakeLogger().start().samples(3).start(3).samples(2)
        const v = verifyLog(skip.input())
        expect(kinds(v)).toEqual([])
        expect(v.notes.join("\n")).toMatch(/jumps from 1 to 3/)
        // a boot record right after a sample: the open epoch was not sealed
        const d = new FakeLogger().start().samples(3)
        d.push({ seq: d.seq, kind: KIND.boot, t: 0, boot: 2, reason: 0, rtc: 0, prev: d.head.subarray(0, 8), fw: Buffer.alloc(8) })
        expect(kinds(verifyLog(d.input()))).toEqual(["bad-boot@4"])
        // the log must begin with the first boot
        const e = new FakeLogger()
        e.samples(2).seal()
        expect(kinds(verifyLog(e.input()))).toContain("bad-boot@0")
    })

    it("rejects a seal that skips an epoch even though its MAC verifies", () => {
        const d = new FakeLogger().start().samples(4).seal().samples(4)
        d.seal(2) // epoch 1 never sealed
        d.samples(2)
        const v = verifyLog(d.input())
        expect(kinds(v)).toEqual(["bad-seal@6..10"])
        expect(v.problems[0].detail).toMatch(/claims epoch 2 where epoch 1 is due/)
    })

    it("rejects a seal whose count does not match the records since the last seal", () => {
        const d = new FakeLogger().start().samples(4).seal()
        const r = decodeRecord(d.recs[5]) as SealRecord
        // re-MACed with the right key over a wrong count: only a firmware fault or the key's holder can
        const count = 3
        const bytes = encodeRecord({ ...r, count, mac: sealMac(epochKey(d.k0, 0), d.devid, 0, 5, d.heads[4], count) })
        const v = verifyLog(d.input({ records: [...d.entries().slice(0, 5), { seq: 5, bytes }] }))
        expect(kinds(v)).toEqual(["bad-seal@0..5"])
    })

    it("reports order as found: reordered, replayed, conflicting", () => {
        const d = new FakeLogger().start().samples(8).seal()
        const e = d.entries()
        expect(kinds(verifyLog(d.input({ records: [...e.slice(0, 3), e[4], e[3], ...e.slice(5)] })))).toEqual(["reordered@3"])
        expect(kinds(verifyLog(d.input({ records: [...e.slice(4, 7), ...e.slice(0, 4), ...e.slice(7)] })))).toEqual(["reordered@0..3"])
        expect(kinds(verifyLog(d.input({ records: [...e, ...e.slice(2, 5)] })))).toEqual(["replayed@2..4"])
        const other = { seq: 4, bytes: encodeRecord({ ...(decodeRecord(e[4].bytes) as SampleRecord), tc: 1 }) }
        expect(kinds(verifyLog(d.input({ records: [...e, other] })))[0]).toBe("conflict@4")
    })

    it("a log without seq 0 and without explanation is missing its start", () => {
        const d = new FakeLogger().start().samples(8).seal().samples(2)
        const v = verifyLog(d.input({ records: d.entries(q => q >= 3) }))
        expect(kinds(v)).toEqual(["deleted@0..2"])
        // a device export freed them after the server's acknowledgement
        const w = verifyLog(
            d.input({
                source: "device",
                records: d.entries(q => q >= 3).map(e => ({ seq: e.seq, bytes: e.bytes })),
                claims: [{ seq: 2, head: d.heads[2], what: "prev_head of block lg00000001" }],
                image: { boot: 1, ack: { seq: 5, head: d.heads[5], boot: 1 } },
            }),
        )
        expect(kinds(w)).toEqual([])
        expect(w.start).toBe("anchored")
    })

    it("a flash block 0 must start from this device's genesis", () => {
        const a = new FakeLogger().start().samples(3)
        const b = new FakeLogger()
        const v = verifyLog(
            a.input({
                source: "device",
                claims: [{ seq: -1, head: genesisHead(b.devid), what: "prev_head of block lg00000000" }],
                others: [{ devid: b.devid }],
            }),
        )
        expect(v.problems[0]).toMatchObject({ kind: "foreign", seq: 0 })
    })

    it("reports the device's clock: runs, unplaced records, and t going backwards without making the log tampered", () => {
        const d = new FakeLogger().start().samples(3)
        let v = verifyLog(d.input())
        expect(v.clock).toEqual({ runs: 1, unplaced: 4, findings: [] })
        d.up -= 900 // the clock steps back with no SET time record to explain it
        d.samples(2)
        v = verifyLog(d.input())
        expect(v.status).toBe("ok")
        expect(v.clock.findings).toMatchObject([{ seq: 4, kind: "time-backwards" }])
    })

    it("refuses to compute absurd epochs", () => {
        const d = new FakeLogger().start().samples(2)
        const r = { seq: d.seq, kind: KIND.seal, t: 0, epoch: 0xfffffff0, count: 3, mac: Buffer.alloc(16) } as LogRecord
        d.push(r)
        const v = verifyLog(d.input())
        // refused, not computed: no key derivation spent on it
        expect(v.keyDerivations).toBe(0)
        expect(v.problems[0].kind).toBe("bad-seal")
    })

    it("epochs must go up: a seal that claims an epoch already sealed is a finding naming both seals", () => {
        const d = new FakeLogger().start().samples(3).seal().samples(3).seal().samples(3)
        d.seal(1) // epoch 1 again, MAC'd with its real key
        d.samples(1)
        const v = verifyLog(d.input())
        expect(kinds(v)).toEqual(["bad-seal@9..12"])
        expect(v.problems[0].detail).toMatch(/claims epoch 1 after the seal of epoch 1 at seq 8: epochs went back \(epoch 2 is due\)/)
        expect(v.sealedThrough).toBe(8)
    })

    it("bounds the key work on a hostile log whose seals' epochs go up and down (keys cached per epoch)", () => {
        // every record a seal; the claimed epochs climb to their seq then fall back to 0, again and
        // again: re-deriving from k0 at every fall cost minutes before
        const d = new FakeLogger().start()
        for (let i = 0; i < 3000; i++) {
            const seq = d.seq
            const epoch = i % 2 ? 1 : seq
            d.push({ seq, kind: KIND.seal, t: 0, epoch, count: 0, mac: Buffer.alloc(16) } as LogRecord)
        }
        const v = verifyLog(d.input())
        // every epoch derived at most about once (going back costs under KEY_RUNG = 256 from a kept key),
        // not ~3000 x 1500 derivations from k0
        expect(v.keyDerivations).toBeLessThan(3000 * 256)
        expect(v.ok).toBe(false)
        expect(v.problems[0]).toMatchObject({ kind: "bad-seal", seq: 0, last: 1 })
        expect(v.problems.some(p => /epochs went back/.test(p.detail))).toBe(true)
    })

    it("server checkpoints beat the device's lgack when explaining a missing start", () => {
        const d = new FakeLogger().start().samples(8).seal().samples(6)
        const exportOf = (ackSeq: number) =>
            d.input({
                source: "device",
                records: d.entries(q => q >= 6).map(e => ({ seq: e.seq, bytes: e.bytes })),
                claims: [{ seq: 5, head: d.heads[5], what: "prev_head of block lg00000002" }],
                image: { boot: 1, ack: { seq: ackSeq, head: d.heads[ackSeq], boot: 1 } },
            })
        // alone, the device's lgack explains seq 0..5 (freed after acknowledgement)
        expect(kinds(verifyLog(exportOf(7)))).toEqual([])
        // the server acknowledged only up to seq 2: a forged lgack does not hide seq 3..5
        const v = verifyLog({ ...exportOf(7), checkpoints: [{ seq: 2, head: d.heads[2], boot: 1 }] })
        expect(kinds(v)).toEqual(["deleted@3..5"])
        expect(v.notes.join("\n")).toMatch(/lgack claims seq 7 acknowledged, but the server's checkpoints reach only seq 2/)
    })

    it("checks config records against the provisioned configuration and lists every change", () => {
        const d = new FakeLogger().start()
        const cfg = (hash: Buffer) => d.push({ seq: d.seq, kind: KIND.config, t: 0, hash } as LogRecord)
        const good = Buffer.alloc(16, 1)
        const wide = Buffer.alloc(16, 2)
        cfg(good)
        d.samples(3).seal().start()
        cfg(good)
        d.samples(2).seal().start()
        cfg(wide) // rewritten over USB: a wider alarm band
        d.samples(2)
        const prov = [{ hash: good, what: "the escrow keys file" }]
        const v = verifyLog(d.input({ provisioned: prov }))
        expect(kinds(v)).toEqual(["bad-config@14"])
        expect(v.configs).toEqual([
            { seq: 1, hash: good.toString("hex"), provisioned: true },
            { seq: 14, hash: wide.toString("hex"), provisioned: false },
        ])
        // without the provisioned configuration the changes are listed, not judged
        const w = verifyLog(d.input())
        expect(w.ok).toBe(true)
        expect(w.configs.map(c => c.provisioned)).toEqual([null, null])
        // the escrow and the server disagreeing is a finding by itself
        const x = verifyLog(d.input({ provisioned: [...prov, { hash: wide, what: "the server's registration" }] }))
        expect(kinds(x)[0]).toBe("bad-config@0")
    })
})

describe("verifyChain across evicted records", () => {
    const devid = Buffer.alloc(8, 7)
    const recs = Array.from({ length: 6 }, (_, i) => {
        const b = Buffer.alloc(18)
        b.writeUInt32LE(i, 0)
        b[4] = 1
        return b
    })
    const heads = chainHeads(genesisHead(devid), recs)
    const entry = (i: number) => ({ seq: i, bytes: recs[i] })

    it("a hole is refused unless evicted ranges cover it and a head is stated before the record after it", () => {
        const held = [entry(0), entry(4), entry(5)]
        expect(verifyChain(devid, held).ok).toBe(false)
        expect(verifyChain(devid, held, [{ first: 1, last: 3 }]).ok).toBe(false) // no stated head
        const stated = [{ seq: 3, head: heads[3] }]
        expect(verifyChain(devid, held, [{ first: 1, last: 2 }], stated).ok).toBe(false) // 3 not covered
        const v = verifyChain(
            devid,
            held,
            [
                { first: 0, last: 1 },
                { first: 2, last: 3 },
            ],
            stated,
        )
        expect(v.ok).toBe(true)
        expect(v.head.equals(heads[5])).toBe(true)
        // a wrong stated head breaks the chain after the hole only where stored heads disagree
        const w = verifyChain(devid, [entry(0), { ...entry(4), head: heads[4] }], [{ first: 1, last: 3 }], [{ seq: 3, head: heads[2] }])
        expect(w.ok).toBe(false)
    })

    it("covered() joins touching and overlapping ranges, in any order", () => {
        expect(
            covered(
                [
                    { first: 5, last: 9 },
                    { first: 0, last: 4 },
                ],
                1,
                9,
            ),
        ).toBe(true)
        expect(
            covered(
                [
                    { first: 0, last: 3 },
                    { first: 5, last: 9 },
                ],
                1,
                9,
            ),
        ).toBe(false)
        expect(
            covered(
                [
                    { first: 0, last: 6 },
                    { first: 2, last: 9 },
                ],
                1,
                9,
            ),
        ).toBe(true)
        expect(covered([], 1, 1)).toBe(false)
    })
})
