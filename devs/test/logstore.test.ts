import * as ds from "@devicescript/core"
import { describe, test, expect, beforeEach } from "@devicescript/test"
import { LogStore, blockRecords } from "../flash/logstore"
import { kvGet, kvSet, kvDelete, MAX_VALUE } from "../flash/kv"
import { genesisHead, nextHead, bufEq } from "../chain/chain"
import { ItemDecoder, ItemEncoder, ITEM_FULL } from "../record/items"
import { bootRecord, configRecord, sampleRecord, evictedRecord, EvictedSummary, recordSeq } from "../record/record"

/**
 * LogStore (docs/format.md section 5) on the settings store of the test VM.
 *
 * Measured here: in `--test` mode the settings store works (set/get/delete, compaction), but
 * `settings.clear()` is a no-op and the store lives for the whole run, so every test wipes the
 * LogStore keys itself (they are fixed: lgmeta, lgack, lgNNNNNNNN) and uses its own devid.
 * Time: the first settings write in a fresh test VM costs ~0.9 s, every read, write or delete
 * after that ~20-25 ms; an append is a write and its read-back. Long loops yield: the VM panics
 * (InfiniteLoop) on a fiber that runs long without yielding.
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

async function yieldNow() {
    await ds.sleep(0)
}

let devCounter = 0
function newDevid(): Buffer {
    const b = Buffer.from("c01d7ace00000000", "hex")
    b.setAt(4, "u32", 0x2000 + ++devCounter)
    return b
}

/** Delete everything a LogStore may have left in the store. */
async function wipe() {
    const meta = await kvGet("lgmeta")
    if (meta) {
        const first = meta.getAt(0, "u32")
        const last = meta.getAt(4, "u32")
        for (let n = first > 2 ? first - 2 : 1; n <= last + 1; ++n) await kvDelete(blockKey(n))
        await kvDelete("lgmeta")
    }
    await kvDelete("lgack")
}

/**
 * The test's own copy of the chain, recomputed with chain.ts. The VM heap is small (~58 KB; an
 * 18-byte record costs ~44 bytes of it), so the chain keeps every 16th head only and, for long
 * runs, no records either: `gen` regenerates record n.
 */
class Chain {
    genesis: Buffer
    private stored: Buffer[] = []
    private marks: Buffer[] = [] // marks[i] = head[16 i - 1]
    private lastHead: Buffer
    n = 0
    constructor(
        devid: Buffer,
        readonly gen?: (seq: number) => Buffer,
    ) {
        this.genesis = genesisHead(devid)
        this.lastHead = this.genesis
    }
    add(rec: Buffer) {
        if (this.gen) expect(bufEq(rec, this.gen(this.n))).toBe(true)
        else this.stored.push(rec)
        if ((this.n & 15) === 0) this.marks.push(this.lastHead)
        this.lastHead = nextHead(this.lastHead, rec)
        this.n++
    }
    rec(seq: number): Buffer {
        return this.gen ? this.gen(seq) : this.stored[seq]
    }
    /** head[seq - 1] */
    before(seq: number): Buffer {
        if (seq === this.n) return this.lastHead
        let h = this.marks[seq >> 4]
        for (let k = seq & ~15; k < seq; ++k) h = nextHead(h, this.rec(k))
        return h
    }
    /** head[seq] */
    head(seq: number): Buffer {
        return this.before(seq + 1)
    }
    last(): Buffer {
        return this.lastHead
    }
}

/** A config record: 26 bytes canonical, a 23-byte full item, so 6 fill a block (36 + 6 * 23 = 174; a 7th would make 197). */
function cfgRec(seq: number): Buffer {
    const h = Buffer.alloc(16)
    h.setAt(0, "u32", (seq * 40503) & 0xffff)
    h.setAt(12, "u32", seq)
    return configRecord(seq, 1000 + seq, h)
}

/** stable samples every 300 s, tc within +-3 counts: runs */
function stableSample(seq: number): Buffer {
    return sampleRecord(seq, 300000 * seq + 1000, -10048 + ((seq * 5) % 7) - 3, 1472, 0, 0)
}

async function appendAll(store: LogStore, chain: Chain, recs: Buffer[]) {
    for (const rec of recs) {
        const seq = await store.append(rec)
        expect(seq).toBe(chain.n)
        chain.add(rec)
    }
}

async function appendCfg(store: LogStore, chain: Chain, n: number) {
    for (let i = 0; i < n; ++i) await appendAll(store, chain, [cfgRec(store.nextSeq)])
}

async function appendStable(store: LogStore, chain: Chain, n: number) {
    for (let i = 0; i < n; ++i) await appendAll(store, chain, [stableSample(store.nextSeq)])
}

/** header + the items a fresh encoder makes of recs[first..last] (what a block must hold) */
function encodeBlock(chain: Chain, first: number, last: number): Buffer {
    const enc = new ItemEncoder()
    let b = Buffer.alloc(BLOCK_HDR)
    b.setAt(0, "u32", first)
    b.blitAt(4, chain.before(first), 0, 32)
    for (let s = first; s <= last; ++s) b = enc.append(b, chain.rec(s))
    return b
}

/** "F R19/300": the item structure of a block */
function shape(blk: Buffer): string {
    let s = ""
    let off = BLOCK_HDR
    while (off < blk.length) {
        if (s.length) s += " "
        if (blk[off] === ITEM_FULL) {
            s += "F"
            off += 3 + blk[off + 2]
        } else {
            s += `R${blk[off + 1]}/${blk.getAt(off + 2, "u16")}`
            off += 4 + ((blk[off + 1] + 1) >> 1)
        }
    }
    return s
}

/**
 * Check every live block in flash against the format and the test's chain: contiguous seqs,
 * prev_head = head[first_seq - 1], the items decode to the appended canonical records and are
 * exactly a fresh encoding of them, and a block was closed only when the next record did not fit.
 * Returns the block count.
 */
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
            `${blockKey(n)} prev_head ${chain.before(fs).toString("hex")}`,
        )
        const d = new ItemDecoder(fs)
        let recs: Buffer[] = []
        expect(`${blockKey(n)} decodes: ${d.decode(blk, BLOCK_HDR, blk.length, recs)}`).toBe(`${blockKey(n)} decodes: true`)
        const nrec = recs.length
        expect(nrec > 0).toBe(true)
        for (let i = 0; i < nrec; ++i) {
            if (i % 16 === 15) await yieldNow()
            const want = chain.rec(fs + i)
            if (!bufEq(recs[i], want)) expect(`seq ${fs + i}: ${recs[i].toString("hex")}`).toBe(`seq ${fs + i}: ${want.toString("hex")}`)
        }
        recs = undefined
        await yieldNow()
        // blockRecords (what the store itself uses) agrees
        expect(blockRecords(blk).length).toBe(nrec)
        await yieldNow()
        const lastSeq = fs + nrec - 1
        const fresh = encodeBlock(chain, fs, lastSeq)
        expect(`${blockKey(n)}: ${blk.toString("hex")}`).toBe(`${blockKey(n)}: ${fresh.toString("hex")}`)
        if (n < last) {
            await yieldNow()
            expect(`${blockKey(n)} could not take seq ${lastSeq + 1}: ${encodeBlock(chain, fs, lastSeq + 1).length > MAX_VALUE}`).toBe(
                `${blockKey(n)} could not take seq ${lastSeq + 1}: true`,
            )
        }
        expectSeq = lastSeq + 1
    }
    expect(expectSeq).toBe(chain.n)
    // nothing beyond the last block
    expect(!(await kvGet(blockKey(last + 1)))).toBe(true)
    return last - first + 1
}

/** readFrom(from, max) returns consecutive records from `from`, as many as asked or held, with head[from - 1] */
async function checkRead(store: LogStore, chain: Chain, from: number, max: number) {
    const b = await store.readFrom(from, max)
    expect(b !== undefined).toBe(true)
    expect(b.firstSeq).toBe(from)
    expect(`prev head of ${from}: ${b.prevHead.toString("hex")}`).toBe(`prev head of ${from}: ${chain.before(from).toString("hex")}`)
    const avail = chain.n - from
    expect(b.records.length).toBe(avail < max ? avail : max)
    for (let i = 0; i < b.records.length; ++i) {
        if (i % 16 === 15) await yieldNow()
        const r = b.records[i]
        expect(recordSeq(r)).toBe(from + i)
        const want = chain.rec(from + i)
        if (!bufEq(r, want)) expect(r.toString("hex")).toBe(want.toString("hex"))
    }
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
        // kvSet refuses what could not be read back
        let threw = false
        try {
            await kvSet("ctprobe", Buffer.alloc(MAX_VALUE + 1))
        } catch (e) {
            threw = true
        }
        expect(threw).toBe(true)
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
        expect(s.last).toBe(undefined)
        expect(s.head.toString("hex")).toBe(genesisHead(devid).toString("hex"))
        expect(s.status().blocks).toBe(0)
        expect(s.firstHeld()).toBe(0)
        expect(await s.readFrom(0, 1000)).toBe(undefined)
        expect(await s.oldestRecords()).toBe(undefined)
        expect(await s.acknowledge(0, genesisHead(devid), 1)).toBe(false)
        const meta = await kvGet("lgmeta")
        expect(meta.length).toBe(12)
        expect(meta.getAt(0, "u32")).toBe(1)
        expect(meta.getAt(4, "u32")).toBe(0)
        expect(meta.getAt(8, "u32")).toBe(1)
    })

    test("appends across blocks; restart continues the same run; readFrom", async () => {
        const devid = newDevid()
        const chain = new Chain(devid)
        const s = new LogStore(devid, 10)
        await s.start()
        const boot = bootRecord(0, 812, 1, 0, chain.genesis)
        await appendAll(s, chain, [boot])
        // boot item 20 bytes + 5 configs of 23 = 135 (a 6th would make 158 > 156): seq 0-5 | 6-11 | 12-13 ...
        await appendCfg(s, chain, 13)
        // ... then samples into block 3: a full item and a run of 28 (odd: the last nibble byte is half used)
        await appendStable(s, chain, 29)
        expect(await checkBlocks(chain, 1)).toBe(3)
        expect(s.status().blocks).toBe(3)
        expect(s.nextSeq).toBe(43)
        expect(s.head.toString("hex")).toBe(chain.last().toString("hex"))
        expect(bufEq(s.last, chain.rec(42))).toBe(true)
        const blk3 = await kvGet(blockKey(3))
        expect(blk3.getAt(0, "u32")).toBe(12)
        expect(shape(blk3)).toBe("F F F R28/300")

        // a record with the wrong seq is refused and changes nothing
        let threw = false
        try {
            await s.append(stableSample(5))
        } catch (e) {
            threw = true
        }
        expect(threw).toBe(true)
        expect(s.nextSeq).toBe(43)
        expect((await kvGet(blockKey(3))).toString("hex")).toBe(blk3.toString("hex"))

        // restart: a new instance on the same store finds the head and the next seq, counts the boot
        const s2 = new LogStore(devid, 10)
        await s2.start()
        expect(s2.nextSeq).toBe(43)
        expect(s2.head.toString("hex")).toBe(chain.last().toString("hex"))
        expect(s2.boot).toBe(2)
        expect(bufEq(s2.last, chain.rec(42))).toBe(true)
        // the next samples extend the same run (first into the half-used byte): as if never restarted
        await appendStable(s2, chain, 3)
        expect(shape(await kvGet(blockKey(3)))).toBe("F F F R31/300")
        expect(await checkBlocks(chain, 2)).toBe(3)
        // a boot record ends the run; the samples after it start a new one from the last sample
        await appendAll(s2, chain, [bootRecord(46, 150, 2, 1, chain.last())])
        await appendStable(s2, chain, 2)
        // the first sample after it is 600 s after the last sample: a run of step 600, then 300 again
        expect(shape(await kvGet(blockKey(3)))).toBe("F F F R31/300 F R1/600 R1/300")
        expect(s2.head.toString("hex")).toBe(chain.last().toString("hex"))
        expect(await checkBlocks(chain, 2)).toBe(3)

        // readFrom: from the start, mid-block, across block boundaries, limited by the record count
        await checkRead(s2, chain, 0, 1000) // everything
        await checkRead(s2, chain, 3, 5) // from mid block 1 into block 2
        await checkRead(s2, chain, 5, 1) // the last record of block 1 alone
        await checkRead(s2, chain, 6, 1) // the first record of block 2 alone
        await checkRead(s2, chain, 11, 3) // across into block 3
        await checkRead(s2, chain, 20, 10) // inside the run
        await checkRead(s2, chain, 48, 10) // the last record only, in the open block
        expect(await s2.readFrom(49, 10)).toBe(undefined)
    })

    test("restart finds a block created just before a power cut", async () => {
        const devid = newDevid()
        const chain = new Chain(devid)
        const s = new LogStore(devid, 10)
        await s.start()
        await appendCfg(s, chain, 7) // 6 fill block 1: the 7th opened block 2
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
        expect((await kvGet("lgmeta")).getAt(4, "u32")).toBe(2)
        await appendCfg(s2, chain, 1)
        expect(await checkBlocks(chain, 2)).toBe(2)
        await checkRead(s2, chain, 0, 100)
    })

    test("acknowledge(seq, head, boot) frees acknowledged blocks, keeps the last, refuses a wrong head", async () => {
        const devid = newDevid()
        const chain = new Chain(devid)
        const s = new LogStore(devid, 10)
        await s.start()
        await appendCfg(s, chain, 14) // blocks 1..3: seq 0-5, 6-11, 12-13
        expect(await checkBlocks(chain)).toBe(3)

        // a wrong head, the head of another seq, a seq not yet written: refused, nothing freed
        const wrong = Buffer.from(chain.head(7))
        wrong[31] = wrong[31] ^ 1
        expect(await s.acknowledge(7, wrong, 1)).toBe(false)
        expect(await s.acknowledge(7, chain.head(8), 1)).toBe(false)
        expect(await s.acknowledge(14, chain.last(), 1)).toBe(false)
        expect(await s.acknowledge(NONE, Buffer.alloc(32), 1)).toBe(false)
        expect(s.ackSeq).toBe(NONE)
        expect(s.status().blocks).toBe(3)
        expect(await kvGet("lgack")).toBe(undefined)

        // seq 8 is inside block 2: block 1 is freed, block 2 stays
        expect(await s.acknowledge(8, chain.head(8), 1)).toBe(true)
        expect(s.ackSeq).toBe(8)
        expect(s.ackBoot).toBe(1)
        const ack = await kvGet("lgack")
        expect(ack.length).toBe(40)
        expect(ack.getAt(0, "u32")).toBe(8)
        expect(ack.slice(4, 36).toString("hex")).toBe(chain.head(8).toString("hex"))
        expect(ack.getAt(36, "u32")).toBe(1)
        expect(await kvGet(blockKey(1))).toBe(undefined)
        expect(s.status().blocks).toBe(2)
        expect(s.firstHeld()).toBe(6)
        const meta = await kvGet("lgmeta")
        expect(meta.getAt(0, "u32")).toBe(2)
        expect(meta.getAt(4, "u32")).toBe(3)

        // an older ack is accepted and changes nothing
        expect(await s.acknowledge(3, chain.head(3), 1)).toBe(true)
        expect(s.ackSeq).toBe(8)
        expect(s.status().blocks).toBe(2)
        expect((await kvGet("lgack")).getAt(0, "u32")).toBe(8)

        // everything (seq 11 ends block 2): block 2 is freed, the last block stays, it carries the head
        expect(await s.acknowledge(13, chain.head(13), 2)).toBe(true)
        expect(s.ackSeq).toBe(13)
        expect(s.ackBoot).toBe(2)
        expect(s.status().blocks).toBe(1)
        expect(await kvGet(blockKey(2))).toBe(undefined)
        expect(await checkBlocks(chain)).toBe(1)
        const ack2 = await kvGet("lgack")
        expect(ack2.length).toBe(40)
        expect(ack2.getAt(0, "u32")).toBe(13)
        expect(ack2.slice(4, 36).toString("hex")).toBe(chain.head(13).toString("hex"))
        expect(ack2.getAt(36, "u32")).toBe(2)

        // restart after acks: same head, same next seq, ack remembered
        const s2 = new LogStore(devid, 10)
        await s2.start()
        expect(s2.nextSeq).toBe(14)
        expect(s2.ackSeq).toBe(13)
        expect(s2.ackBoot).toBe(2)
        expect(s2.head.toString("hex")).toBe(chain.last().toString("hex"))
        expect(s2.status().blocks).toBe(1)
        expect(s2.status().ackSeq).toBe(13)
        await appendCfg(s2, chain, 1)
        await checkRead(s2, chain, 14, 10)
        await checkRead(s2, chain, 12, 10)
    })

    test("oldestRecords, evictOldest and overBudget", async () => {
        const devid = newDevid()
        const chain = new Chain(devid)
        const s = new LogStore(devid, 1)
        await s.start()
        await appendCfg(s, chain, 6) // one full block
        expect(s.overBudget()).toBe(false)
        expect(await s.oldestRecords()).toBe(undefined) // never the only (open) block
        expect(await s.evictOldest()).toBe(undefined)
        await appendCfg(s, chain, 1) // opens block 2 of a budget of 1
        expect(s.overBudget()).toBe(true)
        const old = await s.oldestRecords()
        expect(old.length).toBe(6)
        for (let i = 0; i < 6; ++i) expect(old[i].toString("hex")).toBe(chain.rec(i).toString("hex"))
        // the caller summarises them in an evicted record before evicting
        const sum = new EvictedSummary()
        sum.first = recordSeq(old[0])
        sum.last = recordSeq(old[old.length - 1])
        const ev = evictedRecord(s.nextSeq, 5000, sum)
        await appendAll(s, chain, [ev])
        const gone = await s.evictOldest()
        expect(gone.length).toBe(2)
        expect(gone[0]).toBe(0)
        expect(gone[1]).toBe(5)
        expect(s.status().evicted).toBe(6)
        expect(s.status().blocks).toBe(1)
        expect(s.overBudget()).toBe(false)
        expect(s.firstHeld()).toBe(6)
        expect(await kvGet(blockKey(1))).toBe(undefined)
        expect((await kvGet("lgmeta")).getAt(0, "u32")).toBe(2)
        expect(s.head.toString("hex")).toBe(chain.last().toString("hex"))
        expect(await checkBlocks(chain)).toBe(1)
        // readFrom(0) starts at the first record held, with the head before it: the chain verifies from there
        const b = await s.readFrom(0, 100)
        expect(b.firstSeq).toBe(6)
        expect(b.prevHead.toString("hex")).toBe(chain.before(6).toString("hex"))
        expect(b.records.length).toBe(2)
        expect(bufEq(b.records[1], ev)).toBe(true)
        // an ack of an evicted seq frees nothing
        expect(await s.acknowledge(3, chain.head(3), 1)).toBe(false)
        // restart sees the same
        const s2 = new LogStore(devid, 1)
        await s2.start()
        expect(s2.nextSeq).toBe(8)
        expect(s2.head.toString("hex")).toBe(chain.last().toString("hex"))
        expect(s2.status().blocks).toBe(1)
        expect(s2.firstHeld()).toBe(6)
    })

    test("500 stable samples take a few blocks, not 500 * 18 bytes", async () => {
        const t0 = ds.millis()
        const devid = newDevid()
        // records are regenerated, not kept: 500 of them would take most of the VM heap
        const chain = new Chain(devid, (seq: number) => (seq === 0 ? bootRecord(0, 500, 1, 0, Buffer.alloc(32)) : stableSample(seq)))
        const s = new LogStore(devid, 100)
        await s.start()
        await appendAll(s, chain, [chain.rec(0)])
        await appendStable(s, chain, 500)
        const st = s.status()
        const raw = 500 * 18
        console.log(`logstore: 500 stable samples in ${st.blocks} blocks, ${st.bytes} bytes (canonical: ${raw} bytes)`)
        expect(st.blocks <= 3).toBe(true)
        expect(st.bytes * 10 < raw).toBe(true)
        expect(await checkBlocks(chain, 1)).toBe(st.blocks)
        // a batch of 400 from anywhere, decoded from the RAM mirror
        await checkRead(s, chain, 0, 400)
        await checkRead(s, chain, 101, 400)
        // restart re-hashes the open block (here full to the byte: the next sample opens a block)
        const s2 = new LogStore(devid, 100)
        await s2.start()
        expect(s2.nextSeq).toBe(501)
        expect(s2.head.toString("hex")).toBe(chain.last().toString("hex"))
        await appendStable(s2, chain, 2)
        expect(await checkBlocks(chain, 2)).toBe(s2.status().blocks)
        // acknowledging the middle frees the blocks before it
        const before = s2.status().blocks
        expect(await s2.acknowledge(400, chain.head(400), 2)).toBe(true)
        expect(s2.status().blocks).toBe(before - 1)
        expect(s2.firstHeld() <= 400).toBe(true)
        await checkRead(s2, chain, 401, 400)
        console.log(`logstore: 500-sample test took ${ds.millis() - t0} ms`)
    })
})
