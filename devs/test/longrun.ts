import * as ds from "@devicescript/core"
import { expect } from "@devicescript/test"
import { LogStore, Pending, NONE, blockKey, BLOCK_SLOTS } from "../flash/logstore"
import { kvGet, kvDelete } from "../flash/kv"
import { genesisHead, nextHead, bufEq } from "../chain/chain"
import { PackDecoder } from "../record/pack"
import {
    sampleRecord,
    sealRecord,
    evictedRecord,
    evictedFirst,
    EvictedSummary,
    recordSeq,
    recordKind,
    KIND_EVICTED,
} from "../record/record"

/**
 * The log store over many simulated days on the real settings store (issue 11): 5-minute samples of
 * one temperature profile, a seal a day, an upload and ack every hour except during outages (the
 * store fills and evicts its oldest blocks, each after an evicted summary and a seal, as the logger
 * does), and a power cut (a new LogStore opened from flash) every few days. Every record the server
 * would get is decoded from the upload's parts and compared with the one appended; every head the
 * store states is checked against a chain kept here. Shared by the short suite (npm test) and the
 * 400-day soak (npm run soak).
 */
export const PROFILES = ["stable", "fridge", "excursion"]
const DAY = 288
const T0 = 1767225600

/** deterministic noise in [-1, 1) from a seq */
function noise(seq: number, salt: number): number {
    let x = (seq * 2654435761 + salt * 40503) >>> 0
    x = (x ^ (x >>> 15)) >>> 0
    x = Math.imul(x, 2246822519) >>> 0
    x = (x ^ (x >>> 13)) >>> 0
    return (x % 2000) / 1000 - 1
}

/** a triangle wave in [-1, 1] with period `n` (DeviceScript has no Math.sin) */
function wave(i: number, n: number): number {
    const x = (i % n) / n
    return x < 0.5 ? 4 * x - 1 : 3 - 4 * x
}

/** the thermocouple count (1/128 C) of sample `seq` in a profile */
export function profileTc(profile: string, seq: number): number {
    if (profile === "stable") return -8960 + Math.round(2 * noise(seq, 1)) // dry ice, -70 C
    if (profile === "fridge") {
        // 5 C, a compressor cycle of ~40 min (8 samples) of +-1.5 C, sensor noise
        return 640 + Math.round(192 * wave(seq, 8) + 3 * noise(seq, 2))
    }
    // a shipper whose contents wander and jump: a slow wave, a jump every ~2 days, noise
    return 768 + Math.round(640 * wave(seq, 250) + (Math.floor(seq / 600) % 3) * 900 + 24 * noise(seq, 3))
}

export class LongRunResult {
    appended = 0
    verified = 0
    evicted = 0
    evictions = 0
    reopens = 0
    maxBlocksSeen = 0
    bytesAcked = 0
    samplesAcked = 0
    /** samples taken in all */
    samples = 0
    /** the last upload: sample index of the oldest sample it held, and of the oldest sample an evicted summary in it covers (-1: none) */
    heldFrom = -1
    summarizedFrom = -1
}

/** One long run; `days` of samples, `outageEvery`/`outageDays`: uploads fail that long that often. */
export class LongRun {
    readonly r = new LongRunResult()
    private store: LogStore
    /** every seq that is not a sample (seals, evicted summaries), in order */
    private nonSample: number[] = []
    /** the last few of those records, by seq */
    private extra: Buffer[] = []
    private extraSeq: number[] = []
    private head: Buffer
    private sealSeq = NONE
    private ackedHead: Buffer

    constructor(
        readonly devid: Buffer,
        readonly profile: string,
        readonly maxBlocks: number,
    ) {
        this.head = genesisHead(devid)
        this.ackedHead = this.head
    }

    /** sample `sampleIndex` as the run appends it at `seq` */
    sampleAt(seq: number, sampleIndex: number): Buffer {
        return sampleRecord(seq, T0 + 300 * sampleIndex, profileTc(this.profile, sampleIndex), 1472, 0, 0)
    }

    private addExtra(rec: Buffer) {
        const seq = recordSeq(rec)
        this.nonSample.push(seq)
        this.extra.push(rec)
        this.extraSeq.push(seq)
        while (this.extraSeq.length > 128) {
            this.extraSeq.shift()
            this.extra.shift()
        }
    }

    async wipe() {
        for (let n = 0; n < BLOCK_SLOTS; n++) await kvDelete(blockKey(n))
        await kvDelete("lgmeta")
        await kvDelete("lgack")
        await kvDelete("tl")
    }

    /** `onDay(d)` after each day `d` (0-based), sealed and before a power cut: the harness's checkpoint */
    async run(
        days: number,
        outageEvery: number,
        outageDays: number,
        reopenEvery: number,
        onDay?: (day: number) => void,
    ): Promise<LongRunResult> {
        await this.wipe()
        this.store = new LogStore(this.devid, this.maxBlocks)
        expect(await this.store.open()).toBe(undefined)
        let sampleIndex = 0
        for (let d = 0; d < days; d++) {
            const down = outageEvery > 0 && d % outageEvery >= outageEvery - outageDays
            for (let h = 0; h < 24; h++) {
                for (let k = 0; k < 12; k++) {
                    await this.append(this.sampleAt(this.store.nextSeq, sampleIndex))
                    sampleIndex++
                    while (this.store.overBudget()) await this.evict()
                }
                if (!down) await this.upload()
                await ds.sleep(0)
            }
            await this.seal()
            if (onDay) onDay(d)
            if (reopenEvery > 0 && d % reopenEvery === reopenEvery - 1) await this.reopen()
        }
        this.r.samples = sampleIndex
        // the network is back at the end: everything still held goes up
        await this.upload()
        return this.r
    }

    private async append(rec: Buffer) {
        const seq = await this.store.append(rec)
        expect(seq).toBe(recordSeq(rec))
        this.head = nextHead(this.head, rec)
        expect(bufEq(this.store.head, this.head)).toBe(true)
        this.r.appended++
        const blocks = this.store.blocks()
        if (blocks > this.r.maxBlocksSeen) this.r.maxBlocksSeen = blocks
    }

    private async seal() {
        const seq = this.store.nextSeq
        const count = this.sealSeq === NONE ? seq : seq - this.sealSeq - 1
        const mac = Buffer.alloc(16)
        mac.setAt(0, "u32", seq)
        const rec = sealRecord(seq, T0 + seq, 1, count, mac)
        this.addExtra(rec)
        await this.append(rec)
        this.sealSeq = seq
    }

    /** a power cut: the next run of the firmware opens the store from flash */
    private async reopen() {
        const again = new LogStore(this.devid, this.maxBlocks)
        expect(await again.open()).toBe(undefined)
        expect(again.nextSeq).toBe(this.store.nextSeq)
        expect(bufEq(again.head, this.head)).toBe(true)
        expect(again.ackSeq).toBe(this.store.ackSeq)
        this.store = again
        this.r.reopens++
    }

    /** the store is full of unsent records: summarize the oldest block, seal, evict (as the logger) */
    private async evict() {
        const store = this.store
        const s = new EvictedSummary()
        let n = 0
        const range = await store.oldest(rec => {
            n++
        })
        expect(range !== undefined).toBe(true)
        const acked = store.ackSeq === NONE ? -1 : store.ackSeq
        if (range[1] <= acked) {
            // all of it is on the server already: freed, nothing lost, no summary
            expect(await store.evictOldest()).toBe(true)
            return
        }
        s.first = range[0]
        s.last = range[1]
        s.samples = n
        const seq = store.nextSeq
        const rec = evictedRecord(seq, T0 + seq, s)
        this.addExtra(rec)
        await this.append(rec)
        await this.seal()
        expect(await store.evictOldest()).toBe(true)
        this.r.evicted += range[1] - Math.max(range[0], acked + 1) + 1
        this.r.evictions++
    }

    private nonSamplesBefore(seq: number): number {
        let n = 0
        while (n < this.nonSample.length && this.nonSample[n] < seq) n++
        return n
    }

    /** an evicted summary covering samples from seq `first` on */
    private noteSummary(first: number) {
        const from = first - this.nonSamplesBefore(first)
        if (this.r.summarizedFrom < 0 || from < this.r.summarizedFrom) this.r.summarizedFrom = from
    }

    /** an hourly upload: decode what would be sent, compare, and acknowledge it as the server would */
    private async upload() {
        const store = this.store
        this.r.heldFrom = -1
        this.r.summarizedFrom = -1
        let from = store.ackSeq === NONE ? 0 : store.ackSeq + 1
        let p: Pending = await store.pending(from, 900)
        while (p.count > 0) {
            // parts are whole blocks: they may start before `from` (records the server holds already
            // come back byte for byte); after evicted records they start at the stated base head
            let head = p.prevHead ? p.prevHead : this.ackedHead
            if (p.prevHead) expect(p.firstSeq > from).toBe(true)
            else expect(p.firstSeq <= from).toBe(true)
            const chainFrom = p.prevHead ? p.firstSeq : from
            let seq = p.firstSeq
            // samples before firstSeq: firstSeq minus the non-samples before it
            let ns = this.nonSamplesBefore(seq)
            for (const part of p.parts) {
                const d = new PackDecoder(part.stream, 0, seq)
                for (let i = 0; i < part.count; i++) {
                    const rec = d.next()
                    expect(rec !== undefined).toBe(true)
                    if (ns < this.nonSample.length && this.nonSample[ns] === seq) {
                        ns++
                        if (recordKind(rec) === KIND_EVICTED) this.noteSummary(evictedFirst(rec))
                        const j = this.extraSeq.indexOf(seq)
                        if (seq >= from) expect(j >= 0).toBe(true)
                        if (j >= 0) expect(bufEq(rec, this.extra[j])).toBe(true)
                    } else {
                        expect(bufEq(rec, this.sampleAt(seq, seq - ns))).toBe(true)
                        if (this.r.heldFrom < 0) this.r.heldFrom = seq - ns
                    }
                    if (seq >= chainFrom) {
                        head = nextHead(head, rec)
                        this.r.verified++
                    }
                    seq++
                    await ds.sleep(0)
                }
                this.r.bytesAcked += part.stream.length
            }
            const last = seq - 1
            expect(bufEq(await store.headAt(last), head)).toBe(true)
            if (last === store.nextSeq - 1) expect(bufEq(head, this.head)).toBe(true)
            expect(await store.acknowledge(last, head, 1)).toBe(true)
            this.ackedHead = head
            from = last + 1
            if (last >= store.nextSeq - 1) break
            p = await store.pending(from, 900)
        }
        // everything acknowledged: only the open block stays
        expect(store.blocks()).toBe(1)
        expect(await kvGet(blockKey(store.firstBlock - 1))).toBe(undefined)
    }
}
