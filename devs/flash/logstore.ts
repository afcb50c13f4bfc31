import { genesisHead, nextHead, bufEq } from "../chain/chain"
import { recordLengthAt, recordSeq } from "../record/record"
import { kvGet, kvSet, kvDelete, MAX_VALUE, Mutex } from "./kv"

/**
 * The record log in flash (docs/format.md section 4): blocks of consecutive canonical records in the
 * settings store, each block carrying the chain head before its first record, so the head can always
 * be recomputed from flash alone after a power cut.
 */
const BLOCK_HDR = 36
const META_KEY = "lgmeta"
const ACK_KEY = "lgack"
const NONE = 0xffffffff

function blockKey(n: number) {
    const b = Buffer.alloc(4)
    b.setAt(0, "u32", n)
    // big-endian hex so keys sort like the numbers
    return "lg" + b.slice(3, 4).toString("hex") + b.slice(2, 3).toString("hex") + b.slice(1, 2).toString("hex") + b.slice(0, 1).toString("hex")
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
    evicted: number
}

export class LogStore {
    private lock = new Mutex()
    // block numbers start at 1; lastBlock = firstBlock - 1 means no block yet
    private firstBlock = 1
    private lastBlock = 0
    // RAM mirror of the live blocks (index i = block firstBlock + i): reads for uploads never touch
    // flash or hold the lock long, so sampling keeps its schedule while a backlog is being sent
    private blocks: Buffer[] = []
    head: Buffer
    nextSeq = 0
    ackSeq = NONE
    boot = 0
    evicted = 0

    /** `maxBlocks`: live blocks allowed before the oldest unacknowledged one is evicted */
    constructor(readonly devid: Buffer, readonly maxBlocks: number) {
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
                // a block written just before a cut, before its meta update
                if (await kvGet(blockKey(this.lastBlock + 1))) this.lastBlock++
            }
            const ack = await kvGet(ACK_KEY)
            if (ack && ack.length >= 4) this.ackSeq = ack.getAt(0, "u32")
            this.blocks = []
            for (let n = this.firstBlock; n <= this.lastBlock; ++n) {
                const b = await kvGet(blockKey(n))
                if (b) this.blocks.push(b)
                else if (this.blocks.length) throw new Error(`log block ${n} missing`)
                else this.firstBlock = n + 1 // leading blocks already freed
            }
            this.lastBlock = this.firstBlock + this.blocks.length - 1
            if (this.blocks.length) {
                const r = rehash(this.blocks[this.blocks.length - 1], NONE)
                this.head = r.head
                this.nextSeq = r.lastSeq + 1
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
        return {
            nextSeq: this.nextSeq,
            ackSeq: this.ackSeq,
            blocks: this.blocks.length,
            evicted: this.evicted,
        }
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
            const last = this.blocks.length ? this.blocks[this.blocks.length - 1] : undefined
            if (last && last.length + rec.length <= MAX_VALUE) {
                const nb = last.concat(rec)
                await kvSet(blockKey(this.lastBlock), nb)
                this.blocks[this.blocks.length - 1] = nb
            } else {
                const hdr = Buffer.alloc(BLOCK_HDR)
                hdr.setAt(0, "u32", seq)
                hdr.blitAt(4, this.head, 0, 32)
                const nb = hdr.concat(rec)
                // block first, meta second: a cut in between leaves a block that start() finds
                await kvSet(blockKey(this.lastBlock + 1), nb)
                this.lastBlock++
                this.blocks.push(nb)
                await this.writeMeta()
            }
            this.head = nextHead(this.head, rec)
            this.nextSeq = seq + 1
            return seq
        } finally {
            this.lock.release()
        }
    }

    /** Whether the store is over its block budget (the caller then evicts with a gap record). */
    overBudget(): boolean {
        return this.blocks.length > this.maxBlocks
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

    /** Records from `fromSeq` on, at most `maxBytes` of records, with the head before them. */
    async readFrom(fromSeq: number, maxBytes: number): Promise<Batch> {
        await this.lock.acquire()
        try {
            if (fromSeq >= this.nextSeq || !this.blocks.length) return undefined
            let i = this.indexOf(fromSeq)
            if (firstSeqOf(this.blocks[i]) > fromSeq) fromSeq = firstSeqOf(this.blocks[i]) // evicted before
            const out: Buffer[] = []
            let prevHead: Buffer
            let bytes = 0
            for (; i < this.blocks.length; ++i) {
                const blk = this.blocks[i]
                let h = blk.slice(4, BLOCK_HDR)
                let off = BLOCK_HDR
                for (;;) {
                    const n = recordLengthAt(blk, off)
                    if (!n) break
                    const rec = blk.slice(off, off + n)
                    if (recordSeq(rec) >= fromSeq) {
                        if (!prevHead) prevHead = h
                        if (bytes + n > maxBytes) return { firstSeq: fromSeq, prevHead, records: out }
                        out.push(rec)
                        bytes += n
                    }
                    h = nextHead(h, rec)
                    off += n
                }
            }
            if (!out.length) return undefined
            return { firstSeq: fromSeq, prevHead, records: out }
        } finally {
            this.lock.release()
        }
    }

    /**
     * The server durably holds everything up to `seq` with chain head `head`. Frees those blocks,
     * but only if `head` is our own head at `seq` (a server holding other bytes frees nothing).
     */
    async acknowledge(seq: number, head: Buffer): Promise<boolean> {
        await this.lock.acquire()
        try {
            if (seq >= this.nextSeq || !this.blocks.length) return false
            if (this.ackSeq !== NONE && seq <= this.ackSeq) return true
            const r = rehash(this.blocks[this.indexOf(seq)], seq)
            if (r.lastSeq !== seq || !bufEq(r.head, head)) return false
            const a = Buffer.alloc(36)
            a.setAt(0, "u32", seq)
            a.blitAt(4, head, 0, 32)
            await kvSet(ACK_KEY, a)
            this.ackSeq = seq
            // free whole blocks that are acknowledged; the last block stays (it holds the head)
            while (this.blocks.length > 1 && firstSeqOf(this.blocks[1]) - 1 <= seq) await this.dropFirstBlock()
            return true
        } finally {
            this.lock.release()
        }
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

function firstSeqOf(blk: Buffer): number {
    return blk.getAt(0, "u32")
}

/** Re-hash a block from its stored prev_head, up to `stopSeq` (NONE = to the end). */
function rehash(blk: Buffer, stopSeq: number) {
    let h = blk.slice(4, BLOCK_HDR)
    let lastSeq = firstSeqOf(blk) - 1
    let off = BLOCK_HDR
    for (;;) {
        const n = recordLengthAt(blk, off)
        if (!n) break
        const rec = blk.slice(off, off + n)
        h = nextHead(h, rec)
        lastSeq = recordSeq(rec)
        off += n
        if (lastSeq === stopSeq) break
    }
    return { head: h, lastSeq }
}
