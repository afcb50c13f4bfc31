import * as ds from "@devicescript/core"
import { Clock, Signal } from "../hal/clock"
import { LogStore, NONE } from "../flash/logstore"
import { EpochKeys } from "../chain/keys"
import { Provisioning } from "./config"
import {
    sampleRecord,
    bootRecord,
    configRecord,
    timeRecord,
    alarmRecord,
    evictedRecord,
    sealRecord,
    fixRecord,
    stopRecord,
    EvictedSummary,
    recordKind,
    recordSeq,
    recordUptime,
    KIND_SAMPLE,
    KIND_SEAL,
    SFLAG_NO_READING,
    TIME_SOURCE_GPS,
} from "../record/record"
import { encodeBatch, parseAck } from "../batch/batch"
import { Uplink, HttpsUplink } from "../uplink/uplink"
import { Mutex } from "../hal/mutex"
import { GnssTracker, GnssEvents, encryptLoc } from "./gnss"

/** What the logger needs from a temperature front end (the MAX31856 driver). Never throws from read(). */
export interface Thermometer {
    read(): Promise<ThermoReading>
}

export interface ThermoReading {
    tc: number
    cj: number
    sr: number
    sflags: number
}

export interface Board {
    clock: Clock
    thermo: Thermometer
    /** UTC in ms now, when a trustworthy source has it (network, simulator world) */
    utcNow?: () => number
    utcSource?: number
    /** the GNSS receiver: position, stops, and UTC (preferred over utcNow) */
    gnss?: GnssTracker
    /** uplinks in order of preference (default: HTTPS to the endpoint); the next is tried on failure */
    uplinks?: Uplink[]
    /** false inside radio-off windows (flights): nothing transmits, logging goes on */
    radioAllowed?: () => boolean
    /** live blocks in flash before the oldest unsent one is evicted */
    maxBlocks: number
}

// bounded by the VM heap (~58 KB for firmware and, in the simulator, the chip models): a canonical
// record costs ~44 bytes of heap while a batch is built; 64 also keeps a batch within one Notecard note
const MAX_BATCH_RECORDS = 64
const BACKOFF_MIN = 30_000
const BACKOFF_MAX = 3_600_000
// 12 h: an ESP32 crystal drifts < 2 s in that time, and every anchor costs flash (docs/timebase.md)
const TIME_ANCHOR_EVERY = 12 * 3_600_000
const ALARM_HYSTERESIS_C = 0.5

/**
 * The logger: sample on an absolute schedule, append every record to flash before it counts as
 * taken, seal every epoch with a forward-secure key, and upload in batches, freeing flash only on
 * an authenticated acknowledgement.
 */
export class Logger {
    readonly store: LogStore
    readonly keys = new EpochKeys()
    uploadNow = false
    /** fired when something must be uploaded at once (an alarm): wakes the uploader early */
    private uploadSignal = new Signal()
    private lastAnchor = -1
    private anchorUptime = -1
    private anchorUtc = 0
    private bootSeq = 0
    private epochStart = 0
    private inBand = true
    // several fibers record (sampling, GNSS): each record is built and appended under this lock,
    // so its seq and the head it may state are the ones it really gets
    private appending = new Mutex()

    private uplinks: Uplink[]

    constructor(
        readonly board: Board,
        readonly prov: Provisioning,
    ) {
        this.store = new LogStore(prov.devid, board.maxBlocks)
        this.uplinks = board.uplinks || [new HttpsUplink(prov.endpoint)]
    }

    async start(): Promise<void> {
        const clock = this.board.clock
        const store = this.store
        await store.start()
        if (!(await this.keys.load())) throw new Error("no epoch key: provisioning incomplete")
        // the epoch left open by the previous boot: finish an interrupted evolution, or seal it now
        const last = store.last
        if (last && recordKind(last) === KIND_SEAL && last.getAt(10, "u32") === this.keys.epoch) await this.keys.evolve(recordSeq(last))
        else if (store.nextSeq > 0) await this.seal()
        this.bootSeq = store.nextSeq
        const now = clock.now()
        const hash = this.prov.configHash
        await this.add(seq => bootRecord(seq, now, store.boot, 0, store.head))
        // the configuration in force is part of the chain from every boot on
        await this.add(seq => configRecord(seq, now, hash))
        this.epochStart = clock.now()
        const st = store.status()
        console.log(`ct:boot boot=${store.boot} next=${st.nextSeq} ack=${st.ackSeq === NONE ? -1 : st.ackSeq} epoch=${this.keys.epoch}`)
        clock.spawn(runSampling, this)
        clock.spawn(runUploads, this)
        if (this.board.gnss) clock.spawn(runGnss, this)
    }

    /** Build a record for the next seq and append it; resolves with its seq once it is in flash. */
    async add(make: (seq: number) => Buffer): Promise<number> {
        await this.appending.acquire()
        try {
            return await this.store.append(make(this.store.nextSeq))
        } finally {
            this.appending.release()
        }
    }

    /** Seal the current epoch (section 3.2), then evolve the key; the old key is overwritten. */
    async seal() {
        await this.appending.acquire()
        try {
            const store = this.store
            const seq = store.nextSeq
            const count = this.keys.countAt(seq)
            const mac = this.keys.seal(this.prov.devid, seq, store.head, count)
            await store.append(sealRecord(seq, this.board.clock.now(), this.keys.epoch, count, mac))
            await this.keys.evolve(seq)
            console.log(`ct:seal epoch=${this.keys.epoch - 1} seq=${seq} count=${count}`)
        } finally {
            this.appending.release()
        }
    }

    private utcNow(): number {
        const b = this.board
        if (b.gnss) return b.gnss.utcNow()
        return b.utcNow ? b.utcNow() : 0
    }

    /** A time record at the first valid UTC of a boot and every 6 hours after (docs/timebase.md). */
    private async appendTimeAnchor() {
        const b = this.board
        const utc = this.utcNow()
        if (!(utc > 0)) return
        const now = b.clock.now()
        if (this.lastAnchor >= 0 && now - this.lastAnchor < TIME_ANCHOR_EVERY) return
        this.lastAnchor = now
        this.anchorUptime = now
        this.anchorUtc = utc
        const source = b.gnss ? TIME_SOURCE_GPS : b.utcSource
        await this.add(seq => timeRecord(seq, now, utc, source))
    }

    /** The GNSS fiber: fixes on their schedule, time anchors, encrypted positions, stops. */
    async tracking() {
        const g = this.board.gnss
        for (;;) {
            try {
                await this.recordGnss(await g.step())
            } catch (e) {
                console.log("ct:gnss-error " + e)
            }
            await this.board.clock.sleep(g.nextIn())
        }
    }

    // (a method of its own: DeviceScript closures cannot capture variables of a loop body)
    private async recordGnss(ev: GnssEvents) {
        await this.appendTimeAnchor()
        const now = this.board.clock.now()
        const devid = this.prov.devid
        const lockey = this.prov.lockey
        const fix = ev.fix
        if (fix) {
            const at = ev.at
            await this.add(seq => fixRecord(seq, at, encryptLoc(lockey, devid, seq, fix.lat, fix.lon), fix.fixType, fix.numSV))
            console.log(`ct:fix lat=${fix.lat} lon=${fix.lon} sv=${fix.numSV}`)
        }
        if (ev.stopStart >= 0) {
            const start = ev.stopStart
            const lat = ev.stopLat
            const lon = ev.stopLon
            await this.add(seq => stopRecord(seq, now, start, encryptLoc(lockey, devid, seq, lat, lon)))
            console.log(`ct:stop start=${start} end=${now}`)
        }
    }

    async sampling() {
        const clock = this.board.clock
        const interval = this.prov.config.interval * 1000
        const epochLen = this.prov.config.epoch * 1000
        let next = clock.now()
        for (;;) {
            const wait = next - clock.now()
            if (wait > 0) await clock.sleep(wait)
            try {
                await this.takeSample()
                // every epoch is sealed, empty ones included
                while (clock.now() - this.epochStart >= epochLen) {
                    await this.seal()
                    this.epochStart += epochLen
                }
                await this.makeRoom()
            } catch (e) {
                // the schedule survives anything a cycle can throw; the error is on the console
                console.log("ct:sample-error " + e)
            }
            // absolute schedule: no drift. A cycle that ran late (store compaction, slow bus) is
            // followed at once by the next sample; only slots missed entirely (power off) are skipped
            next += interval
            const now = clock.now()
            if (next + interval <= now) next += Math.floor((now - next) / interval) * interval
        }
    }

    private async takeSample() {
        const clock = this.board.clock
        const t0 = ds.millis()
        await this.appendTimeAnchor()
        let r: ThermoReading
        const tr = ds.millis()
        try {
            r = await this.board.thermo.read()
        } catch (e) {
            r = { tc: 0, cj: 0, sr: 0, sflags: SFLAG_NO_READING }
        }
        // stamped when the conversion ended, in whole seconds (docs/format.md 2.1)
        const uptime = Math.round(clock.now() / 1000) * 1000
        const readMs = ds.millis() - tr
        const seq = await this.add(s => sampleRecord(s, uptime, r.tc, r.cj, r.sr, r.sflags))
        // rd = VM wall ms of the driver read, ms = of the whole cycle (read + flash append)
        // (the compiler takes at most a handful of substitutions per template: two halves)
        const timing = `rd=${readMs} ms=${ds.millis() - t0}`
        console.log(`ct:sample seq=${seq} up=${uptime} tc=${r.tc} cj=${r.cj} sr=${r.sr} fl=${r.sflags} ` + timing)
        if (!r.sr && !r.sflags) await this.checkAlarm(r.tc, uptime)
    }

    /**
     * Store full of unsent records: summarise the oldest block in an `evicted` record, seal it (so
     * the summary is authenticated before the records go), then evict (docs/format.md 5.3).
     */
    private async makeRoom() {
        while (this.store.overBudget()) if (!(await this.evictOldest())) return
    }

    private async evictOldest(): Promise<boolean> {
        const store = this.store
        const recs = await store.oldestRecords()
        if (!recs) return false
        const s = this.summarize(recs)
        const now = this.board.clock.now()
        await this.add(seq => evictedRecord(seq, now, s))
        await this.seal()
        this.epochStart = this.board.clock.now()
        await store.evictOldest()
        console.log(`ct:evicted first=${s.first} last=${s.last} samples=${s.samples}`)
        return true
    }

    private summarize(recs: Buffer[]): EvictedSummary {
        const s = new EvictedSummary()
        const cfg = this.prov.config
        s.first = recordSeq(recs[0])
        s.last = recordSeq(recs[recs.length - 1])
        let any = false
        for (const r of recs) {
            if (recordKind(r) !== KIND_SAMPLE) continue
            s.samples++
            const sr = r[16]
            const fl = r[17]
            s.srOr |= sr
            s.sflagsOr |= fl
            // UTC only for records of this boot, placed from this boot's anchor
            if (this.anchorUptime >= 0 && recordSeq(r) > this.bootSeq) {
                const t = Math.floor((this.anchorUtc + recordUptime(r) - this.anchorUptime) / 1000)
                if (!s.tFirst) s.tFirst = t
                s.tLast = t
            }
            if (sr || fl) continue
            const tc = r.getAt(10, "i32")
            if (!any || tc < s.minTc) s.minTc = tc
            if (!any || tc > s.maxTc) s.maxTc = tc
            any = true
            const c = tc / 128
            if (c > cfg.high || c < cfg.low) s.outMin += Math.round(cfg.interval / 60)
        }
        return s
    }

    private async checkAlarm(tc: number, uptime: number) {
        const c = tc / 128
        const cfg = this.prov.config
        const type = c > cfg.high ? 1 : c < cfg.low ? 2 : 3
        const inBand = type === 3
        if (inBand === this.inBand) return
        // hysteresis: back in band only once clearly inside, so a reading on the edge does not flap
        // (the excursion itself is judged on every raw reading by whoever reads the log)
        if (inBand && (c > cfg.high - ALARM_HYSTERESIS_C || c < cfg.low + ALARM_HYSTERESIS_C)) return
        this.inBand = inBand
        await this.add(seq => alarmRecord(seq, uptime, type, tc))
        console.log(`ct:alarm type=${type} tc=${tc}`)
        this.uploadNow = true // an excursion is reported at once, not at the next upload slot
        this.board.clock.raise(this.uploadSignal)
    }

    async uploading() {
        const clock = this.board.clock
        const period = this.prov.config.upload * 1000
        let backoff = BACKOFF_MIN
        let next = clock.now() + 10_000
        for (;;) {
            // one wait until the next upload is due, cut short by an alarm (not a poll: every wake-up of
            // a fiber costs energy on the board and a world jump in the simulator)
            while (!this.uploadNow && clock.now() < next) await clock.sleepOr(next - clock.now(), this.uploadSignal)
            if (this.board.radioAllowed && !this.board.radioAllowed()) {
                // radio-off window: keep the upload (and any alarm) pending, look again in a minute
                next = clock.now() + 60_000
                continue
            }
            this.uploadNow = false
            const ok = await this.uploadPending()
            if (ok) {
                backoff = BACKOFF_MIN
                next = clock.now() + period
            } else {
                // exponential back-off with jitter, so a fleet does not hammer a recovering server
                next = clock.now() + backoff / 2 + Math.random() * (backoff / 2)
                backoff = Math.min(backoff * 2, BACKOFF_MAX)
            }
        }
    }

    /** Try each uplink in order; undefined when none got the batch through. */
    private async sendVia(body: Buffer, first: number, last: number) {
        for (const u of this.uplinks) {
            try {
                const r = await u.send(body)
                return { status: r.status, body: r.body, via: u.name }
            } catch (e) {
                console.log(`ct:upload-error first=${first} last=${last} via=${u.name} ${e}`)
            }
        }
        return undefined
    }

    /**
     * Send what was recorded up to now; true when the server has acknowledged all of it. Records
     * taken meanwhile wait for the next upload (else a slow link would send them one by one).
     */
    async uploadPending(): Promise<boolean> {
        const store = this.store
        const upTo = store.nextSeq - 1
        for (;;) {
            const expected = store.ackSeq === NONE ? 0 : store.ackSeq + 1
            if (expected > upTo) return true
            const batch = await store.readFrom(expected, Math.min(MAX_BATCH_RECORDS, upTo - expected + 1))
            if (!batch) return true
            // evicted records: the batch starts a new segment at its stated prev_head
            const prev = batch.firstSeq !== expected ? batch.prevHead : undefined
            const body = await encodeBatch(
                this.prov.devid,
                this.keys.current(),
                store.boot,
                this.keys.epoch,
                batch.firstSeq,
                prev,
                batch.records,
            )
            const last = batch.firstSeq + batch.records.length - 1
            const reply = await this.sendVia(body, batch.firstSeq, last)
            if (!reply) return false
            const ack = parseAck(reply.body, this.prov.devid, this.prov.ackkey)
            if (ack && ack.seq !== NONE) await store.acknowledge(ack.seq, ack.head, ack.boot)
            const what = `n=${batch.records.length} bytes=${body.length} status=${reply.status} via=${reply.via}`
            console.log(`ct:upload first=${batch.firstSeq} last=${last} ` + what + ` ack=${ack ? ack.seq : "none"}`)
            if (reply.status !== 200 || store.ackSeq !== last) return false
        }
    }
}

// fibers: the clock runs each in the background (Function.start() loses `this` of a method: wrap them)
async function runSampling(lg: Logger) {
    await lg.sampling()
}
async function runUploads(lg: Logger) {
    await lg.uploading()
}
async function runGnss(lg: Logger) {
    await lg.tracking()
}
