import { LogStore, NONE } from "../flash/logstore"
import { evictedRecord, EvictedSummary, recordKind, sampleTc, sampleSr, sampleFlags, KIND_SAMPLE } from "../record/record"
import { Provisioning } from "./config"
import { DeviceTime } from "./devtime"

/** What eviction needs of the logger (devs/app/logger.ts). */
export interface EvictionLog {
    readonly store: LogStore
    readonly prov: Provisioning
    readonly time: DeviceTime
    add(make: (seq: number) => Buffer): Promise<number>
    seal(): Promise<void>
    /** what the logger's time records place: UTC seconds of a record of the current clock run, 0 if none */
    readonly anchors: { placedUtc(r: Buffer): number }
}

/**
 * A full store of unsent records (docs/format.md 5.3, 5.5): the oldest block summarized in an
 * `evicted` record (samples, time span, min/max, minutes out of band, faults), sealed so the summary
 * is authenticated before the records go, then freed. A block the server already holds is freed
 * without a summary.
 */
export class Evictions {
    // the summary being built by evictOldest() (LogStore.oldest calls back per record)
    private summary: EvictedSummary = undefined
    private any = false

    constructor(readonly lg: EvictionLog) {}

    /**
     * Store full of unsent records: summarise the oldest block in an `evicted` record, seal it (so
     * the summary is authenticated before the records go), then evict (docs/format.md 5.3).
     */
    async makeRoom() {
        while (this.lg.store.overBudget()) if (!(await this.evictOldest())) return
    }

    private async evictOldest(): Promise<boolean> {
        const store = this.lg.store
        const s = new EvictedSummary()
        this.summary = s
        this.any = false
        const self = this
        const range = await store.oldest(r => self.summarize(r))
        this.summary = undefined
        if (!range) return false
        if (store.ackSeq !== NONE && range[1] <= store.ackSeq) {
            // the server holds all of it (acknowledged after the block closed): just free it
            await store.evictOldest()
            return true
        }
        s.first = range[0]
        s.last = range[1]
        const now = this.lg.time.now()
        await this.lg.add(seq => evictedRecord(seq, now, s))
        await this.lg.seal()
        await store.evictOldest()
        console.log(`ct:evicted first=${s.first} last=${s.last} samples=${s.samples}`)
        return true
    }

    /** one record of a block being evicted, into its summary (docs/format.md 5.5) */
    summarize(r: Buffer) {
        const s = this.summary
        if (recordKind(r) !== KIND_SAMPLE) return
        const cfg = this.lg.prov.config
        s.samples++
        const sr = sampleSr(r)
        const fl = sampleFlags(r)
        s.srOr |= sr
        s.sflagsOr |= fl
        // UTC only for records the current clock run places (since the last time record's run began)
        const t = this.lg.anchors.placedUtc(r)
        if (t) {
            if (!s.tFirst) s.tFirst = t
            s.tLast = t
        }
        if (sr || fl) return
        const tc = sampleTc(r)
        if (!this.any || tc < s.minTc) s.minTc = tc
        if (!this.any || tc > s.maxTc) s.maxTc = tc
        this.any = true
        const c = tc / 128
        if (c > cfg.high || c < cfg.low) s.outMin += Math.round(cfg.interval / 60)
    }
}
