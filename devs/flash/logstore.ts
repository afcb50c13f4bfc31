import * as ds from "@devicescript/core"
import { genesisHead, nextHead, bufEq } from "../chain/chain"
import { PackEncoder, PackDecoder, PACK_STATE_LEN } from "../record/pack"
import { recordSeq } from "../record/record"
import { Kv, SettingsKv } from "./kv"

/**
 * The record log in flash (docs/format.md section 5). Closed blocks hold packed streams of records;
 * the open block grows one record at a time: its stored value holds the bytes written at its last
 * flush, and the tail (`tl`, written at every append) holds the bytes since, the chain head and the
 * encoder's state, so an append costs one settings write and nothing is re-encoded or re-hashed at a
 * wake. `lgmeta` names the held blocks and the heads before the first and the open one.
 */
export const VALUE_MAX = 224
const BLOCK_HDR = 4
const TAIL_KEY = "tl"
const META_KEY = "lgmeta"
const ACK_KEY = "lgack"
const TAIL_VERSION = 4
const TAIL_HDR = 40
/** tail bytes kept in `tl` before they are flushed into the open block's value */
export const TAIL_MAX = VALUE_MAX - TAIL_HDR - PACK_STATE_LEN
export const NONE = 0xffffffff
/** block keys are reused round a ring (deleted keys cost the store an entry until rewritten) */
export const BLOCK_SLOTS = 64

export function blockKey(n: number): string {
    const s = n & (BLOCK_SLOTS - 1)
    const hex = "0123456789abcdef"
    return "b" + hex[s >> 4] + hex[s & 15]
}

function u32(v: number): Buffer {
    const b = Buffer.alloc(4)
    b.setAt(0, "u32", v)
    return b
}

/** One part of an upload: a block's packed stream and how many records it holds. */
export class Part {
    constructor(
        readonly count: number,
        readonly stream: Buffer,
    ) {}
}

/** What an upload sends: parts from `firstSeq`, with the head before it. */
export class Pending {
    firstSeq = 0
    count = 0
    prevHead: Buffer = undefined
    parts: Part[] = []
    bytes = 0
}

export class LogStore {
    // lgmeta
    firstBlock = 1
    lastBlock = 1
    baseHead: Buffer
    openHead: Buffer
    // tl
    nextSeq = 0
    head: Buffer
    private blockLen = BLOCK_HDR
    private tail: Buffer = Buffer.alloc(0)
    private enc: PackEncoder
    /** the open block's stored value, when read */
    private openValue: Buffer = undefined
    // lgack
    ackSeq = NONE
    ackHead: Buffer = undefined
    ackBoot = 0

    constructor(
        readonly devid: Buffer,
        readonly maxBlocks: number,
        readonly kv: Kv = new SettingsKv(),
    ) {
        this.head = genesisHead(devid)
        this.baseHead = this.head
        this.openHead = this.head
        this.enc = new PackEncoder(0)
    }

    /**
     * A wake: the tail, the ring and the ack, as the last append left them. False when there is no
     * log yet or the tail is not this version (the caller then opens it as at a boot).
     */
    async load(): Promise<boolean> {
        const tl = await this.kv.get(TAIL_KEY)
        const meta = await this.kv.get(META_KEY)
        if (!tl || !meta || tl[0] !== TAIL_VERSION || tl.length < TAIL_HDR + PACK_STATE_LEN || meta.length !== 72) return false
        this.firstBlock = meta.getAt(0, "u32")
        this.lastBlock = meta.getAt(4, "u32")
        this.baseHead = meta.slice(8, 40)
        this.openHead = meta.slice(40, 72)
        this.blockLen = tl[1]
        this.nextSeq = tl.getAt(4, "u32")
        this.head = tl.slice(8, 40)
        this.enc = PackEncoder.resume(this.nextSeq, tl.slice(TAIL_HDR, TAIL_HDR + PACK_STATE_LEN))
        this.tail = tl.slice(TAIL_HDR + PACK_STATE_LEN, TAIL_HDR + PACK_STATE_LEN + tl[2])
        const ack = await this.kv.get(ACK_KEY)
        if (ack && ack.length === 40) {
            this.ackSeq = ack.getAt(0, "u32")
            this.ackHead = ack.slice(4, 36)
            this.ackBoot = ack.getAt(36, "u32")
        }
        return true
    }

    /**
     * A boot: load, then check the open block against the tail (docs/format.md 5.3): a flush or a
     * close that landed just before a power cut is completed, and the open block's records are
     * re-hashed from `openHead` to the tail's head. Returns a problem found, or undefined.
     */
    async open(): Promise<string> {
        if (!(await this.load())) {
            // a new log: block 1, empty
            await this.kv.set(blockKey(1), u32(0))
            await this.writeMeta()
            await this.writeTail()
            return undefined
        }
        const value = await this.readOpen()
        if (!value) return `open block ${this.lastBlock} is missing`
        const first = value.getAt(0, "u32")
        if (first === this.nextSeq) return undefined // just opened: nothing in it yet
        if (value.length === this.blockLen + this.tail.length && bufEq(value.slice(this.blockLen), this.tail)) {
            // flushed, then cut before the tail was rewritten
            this.blockLen = value.length
            this.tail = Buffer.alloc(0)
            await this.writeTail()
        } else if (value.length !== this.blockLen) {
            // closed (rewritten finished), then cut before the next block opened: open it now
            const h = await this.hashBlock(value, this.openHead, this.nextSeq - first)
            if (!h || !bufEq(h, this.head)) return `block ${this.lastBlock} does not end at the tail's head`
            await this.openNext()
            return undefined
        }
        const h = await this.hashBlock(this.complete(value), this.openHead, this.nextSeq - first)
        if (!h || !bufEq(h, this.head)) return `open block ${this.lastBlock} does not end at the tail's head`
        return undefined
    }

    /** held blocks, the open one included */
    blocks(): number {
        return this.lastBlock - this.firstBlock + 1
    }

    overBudget(): boolean {
        return this.blocks() > this.maxBlocks
    }

    /** first seq still held */
    async firstHeld(): Promise<number> {
        const b = await this.kv.get(blockKey(this.firstBlock))
        return b ? b.getAt(0, "u32") : this.nextSeq
    }

    /** Append one canonical record (seq = nextSeq); resolves once it is in flash. */
    async append(rec: Buffer): Promise<number> {
        const seq = this.nextSeq
        if (recordSeq(rec) !== seq) throw new Error(`record seq ${recordSeq(rec)}, expected ${seq}`)
        const trial = PackEncoder.resume(seq, this.enc.saveState())
        trial.add(rec)
        const out = trial.takeOut()
        const closedLen = this.blockLen + this.tail.length + out.length + trial.flushBytes().length
        if (closedLen <= VALUE_MAX) {
            this.enc = trial
            this.tail = this.tail.concat(out)
            this.head = nextHead(this.head, rec)
            this.nextSeq = seq + 1
            if (this.tail.length > TAIL_MAX) await this.flush()
            await this.writeTail()
            return seq
        }
        await this.close()
        await this.openNext()
        return await this.append(rec)
    }

    /** the open block's value followed by the tail's bytes */
    private async flush() {
        const value = await this.readOpen()
        const grown = value.slice(0, this.blockLen).concat(this.tail)
        await this.kv.set(blockKey(this.lastBlock), grown)
        this.openValue = grown
        this.blockLen = grown.length
        this.tail = Buffer.alloc(0)
    }

    /** the open block rewritten finished (it holds everything up to nextSeq - 1) */
    private async close() {
        const value = await this.readOpen()
        await this.kv.set(blockKey(this.lastBlock), this.complete(value))
    }

    /** a new, empty open block at nextSeq; the ring and the tail follow */
    private async openNext() {
        this.lastBlock++
        this.openHead = this.head
        this.openValue = u32(this.nextSeq)
        await this.kv.set(blockKey(this.lastBlock), this.openValue)
        await this.writeMeta()
        this.enc = new PackEncoder(this.nextSeq)
        this.blockLen = BLOCK_HDR
        this.tail = Buffer.alloc(0)
        await this.writeTail()
    }

    private async readOpen(): Promise<Buffer> {
        if (!this.openValue) this.openValue = await this.kv.get(blockKey(this.lastBlock))
        return this.openValue
    }

    /** the open block finished: stored bytes, tail, flush */
    private complete(value: Buffer): Buffer {
        return value.slice(0, this.blockLen).concat(this.tail).concat(this.enc.flushBytes())
    }

    private async writeTail() {
        const b = Buffer.alloc(TAIL_HDR + PACK_STATE_LEN + this.tail.length)
        b[0] = TAIL_VERSION
        b[1] = this.blockLen
        b[2] = this.tail.length
        b.setAt(4, "u32", this.nextSeq)
        b.blitAt(8, this.head, 0, 32)
        b.blitAt(TAIL_HDR, this.enc.saveState(), 0, PACK_STATE_LEN)
        b.blitAt(TAIL_HDR + PACK_STATE_LEN, this.tail, 0, this.tail.length)
        await this.kv.set(TAIL_KEY, b)
    }

    private async writeMeta() {
        const m = Buffer.alloc(72)
        m.setAt(0, "u32", this.firstBlock)
        m.setAt(4, "u32", this.lastBlock)
        m.blitAt(8, this.baseHead, 0, 32)
        m.blitAt(40, this.openHead, 0, 32)
        await this.kv.set(META_KEY, m)
    }

    /**
     * Decode `count` records of a finished block value from `head`, calling `each` with every record;
     * resolves with the head after them (undefined if the block does not decode). Yields between
     * records: the VM allows a fiber only so many instructions without a pause.
     */
    async walk(value: Buffer, head: Buffer, count: number, each: (rec: Buffer) => void): Promise<Buffer> {
        const d = new PackDecoder(value, BLOCK_HDR, value.getAt(0, "u32"))
        for (let i = 0; i < count; ++i) {
            // a pause before every 4 records, the first included: the VM panics (InfiniteLoop) on a
            // fiber that runs too long without one, and the caller may have just walked a block too
            if ((i & 3) === 0) await ds.sleep(0)
            const r = d.next()
            if (!r) return undefined
            head = nextHead(head, r)
            if (each) each(r)
        }
        return head
    }

    private async hashBlock(value: Buffer, head: Buffer, count: number): Promise<Buffer> {
        return await this.walk(value, head, count, undefined)
    }

    /** The last record in the log (undefined when empty): for a boot's look at how the last run ended. */
    async lastRecord(): Promise<Buffer> {
        let last: Buffer = undefined
        for (let n = this.lastBlock; n >= this.firstBlock && n >= this.lastBlock - 1; n--) {
            const part = await this.blockAt(n)
            if (part.count <= 0) continue
            await this.walk(part.stream, this.head, part.count, r => {
                last = r
            })
            return last
        }
        return undefined
    }

    /** the finished value and record count of held block n */
    async blockAt(n: number): Promise<Part> {
        const v = n === this.lastBlock ? this.complete(await this.readOpen()) : await this.kv.get(blockKey(n))
        const next = n === this.lastBlock ? this.nextSeq : (await this.kv.get(blockKey(n + 1))).getAt(0, "u32")
        return new Part(next - v.getAt(0, "u32"), v)
    }

    /**
     * Whole blocks from the one holding `fromSeq` (or the first held, if it is gone), up to `maxBytes`
     * of streams: what an upload sends (docs/format.md 6). `prevHead` is set when `fromSeq` is no longer
     * held (evicted): the parts then start at the first held block, after lgmeta's base head.
     */
    async pending(fromSeq: number, maxBytes: number): Promise<Pending> {
        const p = new Pending()
        if (fromSeq >= this.nextSeq) return p
        let n = this.lastBlock
        for (; n > this.firstBlock; n--) {
            const v = await this.kv.get(blockKey(n))
            if (v && v.getAt(0, "u32") <= fromSeq) break
        }
        for (; n <= this.lastBlock; n++) {
            const part = await this.blockAt(n)
            if (part.count <= 0) break
            if (p.parts.length && p.bytes + part.stream.length > maxBytes) break
            if (!p.parts.length) {
                p.firstSeq = part.stream.getAt(0, "u32")
                // records before fromSeq were evicted: the batch starts a new segment (docs/format.md 6)
                if (p.firstSeq > fromSeq) p.prevHead = this.baseHead
            }
            p.parts.push(new Part(part.count, part.stream.slice(BLOCK_HDR)))
            p.count += part.count
            p.bytes += part.stream.length - BLOCK_HDR
        }
        return p
    }

    /**
     * The head after record `seq`: the tail's head, a block boundary's, or decoded from the base head;
     * undefined if `seq` is not held.
     */
    async headAt(seq: number): Promise<Buffer> {
        if (seq === this.nextSeq - 1) return this.head
        let head = this.baseHead // before block n
        for (let n = this.firstBlock; n <= this.lastBlock; n++) {
            const part = await this.blockAt(n)
            const first = part.stream.getAt(0, "u32")
            if (seq === first - 1) return head
            if (seq < first + part.count) return await this.walk(part.stream, head, seq - first + 1, undefined)
            if (n + 1 === this.lastBlock) head = this.openHead
            else if (n < this.lastBlock) head = await this.walk(part.stream, head, part.count, undefined)
            if (!head) return undefined
        }
        return undefined
    }

    /**
     * The server durably holds everything up to `seq` with head `head`: keep that checkpoint and free
     * the blocks it covers, but only if `head` is our own head at `seq` (a server holding other bytes
     * frees nothing). The open block always stays (its value holds the stream the tail continues).
     */
    async acknowledge(seq: number, head: Buffer, boot: number): Promise<boolean> {
        if (seq >= this.nextSeq) return false
        if (this.ackSeq !== NONE && seq <= this.ackSeq) return true
        const mine = await this.headAt(seq)
        if (!mine || !bufEq(mine, head)) return false
        await this.writeAck(seq, head, boot)
        await this.freeThrough(seq, head)
        return true
    }

    /**
     * The server went back (its database restored from an older copy, docs/uplink.md): its 409 ack
     * names `seq` (NONE: nothing) below our own ack. Lower ours to it, so what follows is sent again
     * from what we still hold (pending() starts a new segment where records were freed). False, and
     * nothing changes, when it is not below ours or our head at `seq` differs (another history).
     */
    async rewindAck(seq: number, head: Buffer, boot: number): Promise<boolean> {
        if (this.ackSeq === NONE || (seq !== NONE && seq >= this.ackSeq)) return false
        if (seq === NONE) {
            await this.kv.del(ACK_KEY)
            this.ackSeq = NONE
            this.ackHead = undefined
            return true
        }
        if (seq + 1 >= (await this.firstHeld())) {
            const mine = await this.headAt(seq)
            if (!mine || !bufEq(mine, head)) return false
        }
        await this.writeAck(seq, head, boot)
        return true
    }

    private async writeAck(seq: number, head: Buffer, boot: number) {
        const a = Buffer.alloc(40)
        a.setAt(0, "u32", seq)
        a.blitAt(4, head, 0, 32)
        a.setAt(36, "u32", boot)
        await this.kv.set(ACK_KEY, a)
        this.ackSeq = seq
        this.ackHead = head
        this.ackBoot = boot
    }

    /** drop the closed blocks whose records are all at or before `seq` */
    private async freeThrough(seq: number, headAtSeq: Buffer) {
        let last = this.firstBlock - 1
        let newBase: Buffer = undefined
        for (let n = this.firstBlock; n < this.lastBlock; n++) {
            const next = await this.kv.get(blockKey(n + 1))
            const end = next.getAt(0, "u32") - 1
            if (end > seq) break
            last = n
            newBase = end === seq ? headAtSeq : n + 1 === this.lastBlock ? this.openHead : undefined
        }
        if (last < this.firstBlock) return
        if (!newBase) newBase = await this.headAt((await this.kv.get(blockKey(last + 1))).getAt(0, "u32") - 1)
        const from = this.firstBlock
        this.firstBlock = last + 1
        this.baseHead = newBase
        await this.writeMeta() // meta first: a cut leaves an unnamed block behind, never a hole
        for (let n = from; n <= last; n++) await this.kv.del(blockKey(n))
    }

    /**
     * The oldest held block, if it is closed: calls `each` with its records; resolves with the seq
     * range, or undefined. evictOldest() then drops it.
     */
    async oldest(each: (rec: Buffer) => void): Promise<number[]> {
        this.evictHead = undefined
        if (this.firstBlock >= this.lastBlock) return undefined
        const part = await this.blockAt(this.firstBlock)
        const first = part.stream.getAt(0, "u32")
        const h = await this.walk(part.stream, this.baseHead, part.count, each)
        if (!h) return undefined
        this.evictHead = h
        return [first, first + part.count - 1]
    }
    private evictHead: Buffer = undefined

    /** Drop the block oldest() read, records unsent (after its summary is in the log and sealed). */
    async evictOldest(): Promise<boolean> {
        if (this.firstBlock >= this.lastBlock || !this.evictHead) return false
        const n = this.firstBlock
        this.firstBlock++
        this.baseHead = this.evictHead
        this.evictHead = undefined
        await this.writeMeta()
        await this.kv.del(blockKey(n))
        return true
    }
}
