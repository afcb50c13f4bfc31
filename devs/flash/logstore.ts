import * as ds from "@devicescript/core"
import { genesisHead, nextHead, bufEq } from "../chain/chain"
import { recordSeq } from "../record/record"
import { ItemDecoder, ItemEncoder } from "../record/items"
import { kvGet, kvSet, kvDelete, MAX_VALUE } from "./kv"
import { Mutex } from "../hal/mutex"

/**
 * The record log in flash (docs/format.md section 5): blocks of compactly encoded records in the
 * settings store, each block carrying the chain head before its first record, so the head can
 * always be recomputed from flash alone after a power cut.
 */
const BLOCK_HDR = 36
const META_KEY = "lgmeta"
const ACK_KEY = "lgack"
export const NONE = 0xffffffff

/**
 * Block n lives under a key reused round a ring of 64 names (docs/format.md 5.1): the settings store
 * keeps a small record of every deleted key for good, so one new name per block would fill it in
 * months. At most maxBlocks + 1 (< 64) blocks are live.
 */
export const BLOCK_SLOTS = 64

export function blockKey(n: number) {
    const b = Buffer.alloc(4)
    b.setAt(0, "u32", n & (BLOCK_SLOTS - 1))
    // big-endian hex so keys sort like the numbers
    return (
        "lg" + b.slice(3, 4).toString("hex") + b.slice(2, 3).toString("hex") + b.slice(1, 2).toString("hex") + b.slice(0, 1).toString("hex")
    )
}

export interface Batch {
    firstSeq: number
    prevHead: Buffer
    records: Buffer[]
}

export interface StoreStatus {
    nextSeq: number
    ackSeq: number
    blocks: number
    bytes: number
    evicted: number
}

function firstSeqOf(blk: Buffer): number {
    return blk.getAt(0, "u32")
}

/** Canonical records of a block (throws on a malformed block: flash we wrote ourselves). */
export function blockRecords(blk: Buffer): Buffer[] {
    const out: Buffer[] = []
    const d = new ItemDecoder(firstSeqOf(blk))
    if (!d.decode(blk, BLOCK_HDR, blk.length, out)) throw new Error("log block: " + d.error)
    return out
}

export class LogStore {
    private lock = new Mutex()
    // block numbers start at 1; lastBlock = firstBlock - 1 means no block yet
    private firstBlock = 1
    private lastBlock = 0
    // RAM mirror of the live blocks (index i = block firstBlock + i): reads for uploads never touch
    // flash or hold the lock long, so sampling keeps its schedule while a backlog is being sent
    private blocks: Buffer[] = []
    private enc = new ItemEncoder()
    head: Buffer
    nextSeq = 0
    ackSeq = NONE
    ackBoot = 0
    boot = 0
    evicted = 0
    /** the last record appended (or found at start), canonical */
    last: Buffer = undefined

    /** `maxBlocks`: live blocks allowed before the oldest unacknowledged one is evicted */
    constructor(
        readonly devid: Buffer,
        readonly maxBlocks: number,
    ) {
        this.head = genesisHead(devid)
    }

    /** Find the head after a restart and count this boot. */
    async start(): Promise<void> {
        await this.lock.acquire()
        try {
            const meta = await kvGet(META_KEY)
            if (meta && meta.length >= 12) {
                this.firstBlock = meta.getAt(0, "u32")
                this.lastBlock = meta.getAt(4, "u32")
                this.boot = meta.getAt(8, "u32")
            }
            const ack = await kvGet(ACK_KEY)
            if (ack && ack.length >= 40) {
                this.ackSeq = ack.getAt(0, "u32")
                this.ackBoot = ack.getAt(36, "u32")
            }
            this.blocks = []
            for (let n = this.firstBlock; n <= this.lastBlock; ++n) {
                const b = await kvGet(blockKey(n))
                if (b) this.blocks.push(b)
                else if (this.blocks.length) throw new Error(`log block ${n} missing`)
                else this.firstBlock = n + 1 // leading blocks already freed
            }
            this.lastBlock = this.firstBlock + this.blocks.length - 1
            // a block written just before a cut, before its meta update: the next slot, if it holds
            // the continuation (a stale block from a lap ago does not)
            const after = await kvGet(blockKey(this.lastBlock + 1))
            if (after && after.length > BLOCK_HDR) {
                const expect = this.blocks.length ? new ItemDecoder(firstSeqOf(this.blocks[this.blocks.length - 1])) : undefined
                if (expect)
                    expect.decode(this.blocks[this.blocks.length - 1], BLOCK_HDR, this.blocks[this.blocks.length - 1].length, undefined)
                if (!expect || firstSeqOf(after) === expect.seq) {
                    this.blocks.push(after)
                    this.lastBlock++
                }
            }
            if (this.blocks.length) {
                const blk = this.blocks[this.blocks.length - 1]
                const d = new ItemDecoder(firstSeqOf(blk))
                const recs: Buffer[] = []
                if (!d.decode(blk, BLOCK_HDR, blk.length, recs)) throw new Error("log block: " + d.error)
                let h = blk.slice(4, BLOCK_HDR)
                for (const r of recs) h = nextHead(h, r)
                this.head = h
                this.nextSeq = d.seq
                this.last = recs[recs.length - 1]
                this.enc.resume(d)
            }
            // a cut between the meta update and the delete of a freed block leaves it behind
            if (this.firstBlock > 1 && (await kvGet(blockKey(this.firstBlock - 1)))) await kvDelete(blockKey(this.firstBlock - 1))
            this.boot++
            await this.writeMeta()
        } finally {
            this.lock.release()
        }
    }

    status(): StoreStatus {
        let bytes = 0
        for (const b of this.blocks) bytes += b.length
        return { nextSeq: this.nextSeq, ackSeq: this.ackSeq, blocks: this.blocks.length, bytes, evicted: this.evicted }
    }

    /**
     * Append one record, built with `seq = nextSeq` (one fiber appends; others only read and ack).
     * Resolves once it is in flash.
     */
    async append(rec: Buffer): Promise<number> {
        await this.lock.acquire()
        try {
            const seq = this.nextSeq
            if (recordSeq(rec) !== seq) throw new Error(`record seq ${recordSeq(rec)}, expected ${seq}`)
            const open = this.blocks.length ? this.blocks[this.blocks.length - 1] : undefined
            // try the open block with a scratch encoder; keep its state only once flash has it
            const trial = new ItemEncoder()
            trial.ref = this.enc.ref
            trial.runAt = this.enc.runAt
            trial.runN = this.enc.runN
            trial.runStep = this.enc.runStep
            const grown = open ? trial.append(open, rec) : undefined
            if (grown && grown.length <= MAX_VALUE) {
                await kvSet(blockKey(this.lastBlock), grown)
                this.blocks[this.blocks.length - 1] = grown
                this.enc = trial
            } else {
                const hdr = Buffer.alloc(BLOCK_HDR)
                hdr.setAt(0, "u32", seq)
                hdr.blitAt(4, this.head, 0, 32)
                const fresh = new ItemEncoder() // a block decodes on its own: no reference from before
                const nb = fresh.append(hdr, rec)
                // block first, meta second: a cut in between leaves a block that start() finds
                await kvSet(blockKey(this.lastBlock + 1), nb)
                this.lastBlock++
                this.blocks.push(nb)
                this.enc = fresh
                // the record is in flash now (start() probes last_block + 1): count it before the
                // meta write, so a failing meta write cannot leave the RAM state one record behind
                // the block (the next append would then write this seq a second time)
                this.head = nextHead(this.head, rec)
                this.nextSeq = seq + 1
                this.last = rec
                await this.writeMeta()
                return seq
            }
            this.head = nextHead(this.head, rec)
            this.nextSeq = seq + 1
            this.last = rec
            return seq
        } finally {
            this.lock.release()
        }
    }

    /** Whether the store is over its block budget (the caller then evicts with a summary). */
    overBudget(): boolean {
        return this.blocks.length > this.maxBlocks
    }

    /** Canonical records of the oldest block, if it is not the only one (for the eviction summary). */
    async oldestRecords(): Promise<Buffer[]> {
        await this.lock.acquire()
        try {
            return this.blocks.length < 2 ? undefined : blockRecords(this.blocks[0])
        } finally {
            this.lock.release()
        }
    }

    /** Drop the oldest block even if unacknowledged; returns [first, last] seq dropped. */
    async evictOldest(): Promise<number[]> {
        await this.lock.acquire()
        try {
            if (this.blocks.length < 2) return undefined
            const first = firstSeqOf(this.blocks[0])
            const last = firstSeqOf(this.blocks[1]) - 1
            await this.dropFirstBlock()
            this.evicted += last - first + 1
            return [first, last]
        } finally {
            this.lock.release()
        }
    }

    /** Up to `max` records from `fromSeq` on (or the oldest held, if evicted), with the head before them. */
    async readFrom(fromSeq: number, max: number): Promise<Batch> {
        await this.lock.acquire()
        try {
            if (fromSeq >= this.nextSeq || !this.blocks.length) return undefined
            let i = this.indexOf(fromSeq)
            const out: Buffer[] = []
            let prevHead: Buffer
            for (; i < this.blocks.length && out.length < max; ++i) {
                // the VM panics after ~100k instructions without a pause: yield between blocks
                await ds.sleep(0)
                const blk = this.blocks[i]
                let h = blk.slice(4, BLOCK_HDR)
                for (const rec of blockRecords(blk)) {
                    if (recordSeq(rec) >= fromSeq && out.length < max) {
                        if (!prevHead) prevHead = h
                        out.push(rec)
                    }
                    h = nextHead(h, rec)
                }
            }
            if (!out.length) return undefined
            return { firstSeq: recordSeq(out[0]), prevHead, records: out }
        } finally {
            this.lock.release()
        }
    }

    /**
     * The server durably holds everything up to `seq` with chain head `head`. Frees those blocks,
     * but only if `head` is our own head at `seq` (a server holding other bytes frees nothing).
     */
    async acknowledge(seq: number, head: Buffer, boot: number): Promise<boolean> {
        await this.lock.acquire()
        try {
            if (seq >= this.nextSeq || !this.blocks.length) return false
            if (this.ackSeq !== NONE && seq <= this.ackSeq) return true
            const blk = this.blocks[this.indexOf(seq)]
            let h = blk.slice(4, BLOCK_HDR)
            let found = false
            for (const rec of blockRecords(blk)) {
                h = nextHead(h, rec)
                if (recordSeq(rec) === seq) {
                    found = true
                    break
                }
            }
            if (!found || !bufEq(h, head)) return false
            const a = Buffer.alloc(40)
            a.setAt(0, "u32", seq)
            a.blitAt(4, head, 0, 32)
            a.setAt(36, "u32", boot)
            await kvSet(ACK_KEY, a)
            this.ackSeq = seq
            this.ackBoot = boot
            // free whole blocks that are acknowledged; the last block stays (it holds the head)
            while (this.blocks.length > 1 && firstSeqOf(this.blocks[1]) - 1 <= seq) await this.dropFirstBlock()
            return true
        } finally {
            this.lock.release()
        }
    }

    /** first seq still held in flash */
    firstHeld(): number {
        return this.blocks.length ? firstSeqOf(this.blocks[0]) : this.nextSeq
    }

    /** index of the block holding `seq` (or the first block when `seq` was evicted) */
    private indexOf(seq: number): number {
        let i = this.blocks.length - 1
        while (i > 0 && firstSeqOf(this.blocks[i]) > seq) i--
        return i
    }

    private async dropFirstBlock() {
        const n = this.firstBlock
        this.firstBlock++
        this.blocks.shift()
        await this.writeMeta() // meta first: a cut between the two leaves an orphan, never a hole
        await kvDelete(blockKey(n))
    }

    private async writeMeta() {
        const m = Buffer.alloc(12)
        m.setAt(0, "u32", this.firstBlock)
        m.setAt(4, "u32", this.lastBlock)
        m.setAt(8, "u32", this.boot)
        await kvSet(META_KEY, m)
    }
}
