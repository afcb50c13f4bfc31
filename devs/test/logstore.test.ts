import { describe, test, expect, beforeEach } from "@devicescript/test"
import { LogStore } from "../flash/logstore"
import { kvGet, kvSet, kvDelete, MAX_VALUE } from "../flash/kv"
import { genesisHead, nextHead, bufEq } from "../chain/chain"
import { bootRecord, configRecord, sampleRecord, gapRecord, recordSeq } from "../record/record"

/**
 * LogStore (docs/format.md section 4) on the settings store of the test VM.
 *
 * Measured here: in `--test` mode the settings store works (set/get/delete, compaction), but
 * `settings.clear()` is a no-op (the runtime's settings service implements only get/set/delete),
 * and the store lives for the whole run, so every test wipes the LogStore keys itself. LogStore
 * keys are fixed (lgmeta, lgack, lgNNNNNNNN), so each test uses its own devid instead.
 * Time: the first settings write in a fresh test VM costs ~0.9 s (the store is set up), every read,
 * write or delete after that ~20-25 ms. The file takes ~4.3 s of VM time, under the default 5 s
 * `--test-timeout` by hand; test/devs-unit.test.ts raises that timeout, so keep appends few.
 */

const HEX = "0123456789abcdef"
const BLOCK_HDR = 36
const NONE = 0xffffffff

/** `lg` + block number as 8 hex digits, written independently of logstore.ts */
function blockKey(n: number): string {
    let s = ""
    for (let shift = 28; shift >= 0; shift -= 4) s += HEX[(n >>> shift) & 15]
    return "lg" + s
}

let devCounter = 0
function newDevid(): Buffer {
    const b = Buffer.from("c01d7ace00000000", "hex")
    b.setAt(4, "u32", 0x1000 + ++devCounter)
    return b
}

/** Delete everything a LogStore may have left in the store. */
async function wipe() {
    const meta = await kvGet("lgmeta")
    if (meta) {
        const first = meta.getAt(0, "u32")
        const last = meta.getAt(4, "u32")
        for (let n = first; n <= last + 1; ++n) await kvDelete(blockKey(n))
        await kvDelete("lgmeta")
    }
    await kvDelete("lgack")
}

/** The test's own copy of the chain: every record appended and head[n] recomputed with chain.ts. */
class Chain {
    genesis: Buffer
    recs: Buffer[] = []
    heads: Buffer[] = []
    constructor(devid: Buffer) {
        this.genesis = genesisHead(devid)
    }
    add(rec: Buffer) {
        const prev = this.heads.length ? this.heads[this.heads.length - 1] : this.genesis
        this.recs.push(rec)
        this.heads.push(nextHead(prev, rec))
    }
    /** head[seq - 1] */
    before(seq: number): Buffer {
        return seq === 0 ? this.genesis : this.heads[seq - 1]
    }
    last(): Buffer {
        return this.before(this.recs.length)
    }
}

/** A config record: 26 bytes, so exactly 6 fill a 192-byte block (36 + 6 * 26). */
function cfgRec(seq: number): Buffer {
    const h = Buffer.alloc(16)
    h.setAt(0, "u32", seq * 2654435761)
    h.setAt(12, "u32", seq)
    return configRecord(seq, 1000 + seq, h)
}

function sampleRec(seq: number): Buffer {
    return sampleRecord(seq, 60000 * seq, 3200 - seq * 7, 1600 + seq, 0, 0)
}

async function appendCfg(store: LogStore, chain: Chain, n: number) {
    for (let i = 0; i < n; ++i) {
        const rec = cfgRec(store.nextSeq)
        const seq = await store.append(rec)
        expect(seq).toBe(chain.recs.length)
        chain.add(rec)
    }
}

/** Check every live block in flash against the format and the test's chain; returns the block count. */
async function checkBlocks(chain: Chain, boot?: number): Promise<number> {
    const meta = await kvGet("lgmeta")
    expect(meta.length).toBe(12)
    if (boot) expect(meta.getAt(8, "u32")).toBe(boot)
    const first = meta.getAt(0, "u32")
    const last = meta.getAt(4, "u32")
    let expectSeq = -1
    for (let n = first; n <= last; ++n) {
        const blk = await kvGet(blockKey(n))
        expect(`${blockKey(n)} present: ${!!blk}`).toBe(`${blockKey(n)} present: true`)
        expect(blk.length <= MAX_VALUE).toBe(true)
        const fs = blk.getAt(0, "u32")
        if (expectSeq >= 0) expect(fs).toBe(expectSeq)
        expect(`${blockKey(n)} prev_head ${blk.slice(4, BLOCK_HDR).toString("hex")}`).toBe(
            `${blockKey(n)} prev_head ${chain.before(fs).toString("hex")}`
        )
        let off = BLOCK_HDR
        let seq = fs
        while (off < blk.length) {
            const r = chain.recs[seq]
            expect(blk.slice(off, off + r.length).toString("hex")).toBe(r.toString("hex"))
            off += r.length
            seq++
        }
        expect(off).toBe(blk.length)
        expectSeq = seq
    }
    expect(expectSeq).toBe(chain.recs.length)
    // nothing beyond the last block
    expect(!(await kvGet(blockKey(last + 1)))).toBe(true)
    return last - first + 1
}

/** readFrom(from, maxBytes) returns consecutive records from `from` with head[from - 1] */
async function checkRead(store: LogStore, chain: Chain, from: number, maxBytes: number) {
    const b = await store.readFrom(from, maxBytes)
    expect(b !== undefined).toBe(true)
    expect(b.firstSeq).toBe(from)
    expect(b.prevHead.toString("hex")).toBe(chain.before(from).toString("hex"))
    expect(b.records.length > 0).toBe(true)
    let bytes = 0
    for (let i = 0; i < b.records.length; ++i) {
        const r = b.records[i]
        expect(recordSeq(r)).toBe(from + i)
        expect(r.toString("hex")).toBe(chain.recs[from + i].toString("hex"))
        bytes += r.length
    }
    expect(bytes <= maxBytes).toBe(true)
    // as much as fits: the next record would not have
    const next = from + b.records.length
    if (next < chain.recs.length) expect(bytes + chain.recs[next].length > maxBytes).toBe(true)
    return b
}

describe("settings store in --test mode", () => {
    test("write, read back, overwrite, delete", async () => {
        const v = Buffer.from("c0ffee00112233", "hex")
        await kvSet("ctprobe", v)
        expect((await kvGet("ctprobe")).toString("hex")).toBe("c0ffee00112233")
        const big = Buffer.alloc(MAX_VALUE)
        big.setAt(MAX_VALUE - 4, "u32", 0xdeadbeef)
        await kvSet("ctprobe", big)
        const back = await kvGet("ctprobe")
        expect(back.length).toBe(MAX_VALUE)
        expect(back.getAt(MAX_VALUE - 4, "u32")).toBe(0xdeadbeef)
        await kvDelete("ctprobe")
        expect(await kvGet("ctprobe")).toBe(undefined)
    })
})

describe("LogStore", () => {
    beforeEach(async () => {
        await wipe()
    })

    test("fresh store: genesis head, seq 0, boot 1", async () => {
        const devid = newDevid()
        const s = new LogStore(devid, 10)
        await s.start()
        expect(s.nextSeq).toBe(0)
        expect(s.boot).toBe(1)
        expect(s.ackSeq).toBe(NONE)
        expect(s.head.toString("hex")).toBe(genesisHead(devid).toString("hex"))
        expect(s.status().blocks).toBe(0)
        expect(await s.readFrom(0, 1000)).toBe(undefined)
        const meta = await kvGet("lgmeta")
        expect(meta.length).toBe(12)
        expect(meta.getAt(8, "u32")).toBe(1)
    })

    test("appends across blocks, restart, readFrom", async () => {
        const devid = newDevid()
        const chain = new Chain(devid)
        const s = new LogStore(devid, 10)
        await s.start()
        // a boot record and samples: blocks split wherever the next record would pass 192 bytes
        const boot = bootRecord(0, 812, 1, 0)
        expect(await s.append(boot)).toBe(0)
        chain.add(boot)
        for (let i = 0; i < 17; ++i) {
            const rec = sampleRec(s.nextSeq)
            await s.append(rec)
            chain.add(rec)
        }
        // 36 + 15 + 7 * 18 = 177 (an 8th sample would make 195): seq 0-7, 8-15 (36 + 8 * 18), 16-17
        const nblocks = await checkBlocks(chain)
        expect(nblocks).toBe(3)
        expect(s.status().blocks).toBe(3)
        expect(s.nextSeq).toBe(18)
        expect(s.head.toString("hex")).toBe(chain.last().toString("hex"))

        // a record with the wrong seq is refused and changes nothing
        let threw = false
        try {
            await s.append(sampleRec(5))
        } catch (e) {
            threw = true
        }
        expect(threw).toBe(true)
        expect(s.nextSeq).toBe(18)

        // restart: a new instance on the same store finds the head and the next seq, counts the boot
        const s2 = new LogStore(devid, 10)
        await s2.start()
        expect(s2.nextSeq).toBe(18)
        expect(s2.head.toString("hex")).toBe(chain.last().toString("hex"))
        expect(s2.boot).toBe(2)
        const rec = bootRecord(18, 150, 2, 1)
        expect(await s2.append(rec)).toBe(18)
        chain.add(rec)
        expect(s2.head.toString("hex")).toBe(chain.last().toString("hex"))
        expect(await checkBlocks(chain, 2)).toBe(3)

        // readFrom: from the start, mid-block, across block boundaries, limited by maxBytes
        await checkRead(s2, chain, 0, 10000) // everything
        await checkRead(s2, chain, 5, 200) // from mid block 1 into block 2, cut by maxBytes
        await checkRead(s2, chain, 9, 18) // exactly one sample
        await checkRead(s2, chain, 18, 10000) // the last record only, in the open block
        expect(await s2.readFrom(19, 10000)).toBe(undefined)
    })

    test("restart finds a block created just before a power cut", async () => {
        const devid = newDevid()
        const chain = new Chain(devid)
        const s = new LogStore(devid, 10)
        await s.start()
        await appendCfg(s, chain, 7) // 36 + 6 * 26 = 192 exactly: the 7th record opened block 2
        expect(await checkBlocks(chain)).toBe(2)
        // the cut came after the new block but before its meta update
        const meta = await kvGet("lgmeta")
        meta.setAt(4, "u32", meta.getAt(4, "u32") - 1)
        await kvSet("lgmeta", meta)
        const s2 = new LogStore(devid, 10)
        await s2.start()
        expect(s2.nextSeq).toBe(7)
        expect(s2.head.toString("hex")).toBe(chain.last().toString("hex"))
        expect(s2.status().blocks).toBe(2)
        await appendCfg(s2, chain, 1)
        expect(await checkBlocks(chain, 2)).toBe(2)
    })

    test("acknowledge frees fully acknowledged blocks, keeps the last, refuses a wrong head", async () => {
        const devid = newDevid()
        const chain = new Chain(devid)
        const s = new LogStore(devid, 10)
        await s.start()
        await appendCfg(s, chain, 14) // blocks 1..3: seq 0-5, 6-11, 12-13
        expect(await checkBlocks(chain)).toBe(3)

        // a wrong head, the head of another seq, a seq not yet written: refused, nothing freed
        const wrong = Buffer.from(chain.heads[7])
        wrong[31] = wrong[31] ^ 1
        expect(await s.acknowledge(7, wrong)).toBe(false)
        expect(await s.acknowledge(7, chain.heads[8])).toBe(false)
        expect(await s.acknowledge(14, chain.last())).toBe(false)
        expect(s.ackSeq).toBe(NONE)
        expect(s.status().blocks).toBe(3)
        expect(await kvGet("lgack")).toBe(undefined)

        // seq 8 is inside block 2: block 1 is freed, block 2 stays
        expect(await s.acknowledge(8, chain.heads[8])).toBe(true)
        expect(s.ackSeq).toBe(8)
        const ack = await kvGet("lgack")
        expect(ack.length).toBe(36)
        expect(ack.getAt(0, "u32")).toBe(8)
        expect(ack.slice(4, 36).toString("hex")).toBe(chain.heads[8].toString("hex"))
        expect(await kvGet(blockKey(1))).toBe(undefined)
        expect(s.status().blocks).toBe(2)
        const meta = await kvGet("lgmeta")
        expect(meta.getAt(0, "u32")).toBe(2)
        expect(meta.getAt(4, "u32")).toBe(3)

        // an older ack is accepted and changes nothing
        expect(await s.acknowledge(3, chain.heads[3])).toBe(true)
        expect(s.ackSeq).toBe(8)
        expect(s.status().blocks).toBe(2)

        // everything (seq 11 ends block 2): block 2 is freed, the last block stays, it carries the head
        expect(await s.acknowledge(13, chain.heads[13])).toBe(true)
        expect(s.ackSeq).toBe(13)
        expect(s.status().blocks).toBe(1)
        expect(await kvGet(blockKey(2))).toBe(undefined)
        expect(await checkBlocks(chain)).toBe(1)

        // restart after acks: same head, same next seq, ack remembered
        const s2 = new LogStore(devid, 10)
        await s2.start()
        expect(s2.nextSeq).toBe(14)
        expect(s2.ackSeq).toBe(13)
        expect(s2.head.toString("hex")).toBe(chain.last().toString("hex"))
        expect(s2.status().blocks).toBe(1)
        await appendCfg(s2, chain, 1)
        await checkRead(s2, chain, 14, 10000)
    })

    test("evictOldest and overBudget", async () => {
        const devid = newDevid()
        const chain = new Chain(devid)
        const s = new LogStore(devid, 1)
        await s.start()
        await appendCfg(s, chain, 6) // one full block
        expect(s.overBudget()).toBe(false)
        expect(await s.evictOldest()).toBe(undefined) // never the only (open) block
        await appendCfg(s, chain, 1) // opens block 2 of a budget of 1
        expect(s.overBudget()).toBe(true)
        const gone = await s.evictOldest()
        expect(gone.length).toBe(2)
        expect(gone[0]).toBe(0)
        expect(gone[1]).toBe(5)
        expect(s.status().evicted).toBe(6)
        expect(s.status().blocks).toBe(1)
        expect(s.overBudget()).toBe(false)
        expect(await kvGet(blockKey(1))).toBe(undefined)
        // the caller records the eviction as a gap record
        const gap = gapRecord(s.nextSeq, 5000, gone[0], gone[1])
        await s.append(gap)
        chain.add(gap)
        expect(s.head.toString("hex")).toBe(chain.last().toString("hex"))
        // the chain still verifies from the first block left: readFrom(0) starts there
        const b = await s.readFrom(0, 10000)
        expect(b.firstSeq).toBe(6)
        expect(b.prevHead.toString("hex")).toBe(chain.before(6).toString("hex"))
        expect(b.records.length).toBe(2)
        expect(bufEq(b.records[1], gap)).toBe(true)
        // restart sees the same
        const s2 = new LogStore(devid, 1)
        await s2.start()
        expect(s2.nextSeq).toBe(8)
        expect(s2.head.toString("hex")).toBe(chain.last().toString("hex"))
        expect(s2.status().blocks).toBe(1)
    })
})
