import * as ds from "@devicescript/core"
import { Clock } from "../hal/clock"
import { LogStore } from "../flash/logstore"
import { Provisioning } from "./config"
import {
    sampleRecord,
    bootRecord,
    configRecord,
    timeRecord,
    alarmRecord,
    gapRecord,
    SFLAG_NO_READING,
} from "../record/record"
import { encodeBatch, ackKey, parseAck, ACK_NONE } from "../batch/batch"
import { postBatch } from "../uplink/http"

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
    /** UTC in ms now, when a trustworthy source has it (GPS, network, simulator world) */
    utcNow?: () => number
    utcSource?: number
    /** live blocks in flash before the oldest unsent one is evicted */
    maxBlocks: number
}

const MAX_BATCH_BYTES = 2000
const BACKOFF_MIN = 30_000
const BACKOFF_MAX = 3_600_000
const TIME_ANCHOR_EVERY = 6 * 3_600_000

/**
 * The logger: sample on an absolute schedule, append every record to flash before it counts as
 * taken, and upload in batches, freeing flash only on an authenticated acknowledgement.
 */
export class Logger {
    readonly store: LogStore
    private ackkey: Buffer
    private uploadNow = false
    private lastAnchor = -1
    private inBand = true

    constructor(readonly board: Board, readonly prov: Provisioning) {
        this.store = new LogStore(prov.devid, board.maxBlocks)
        this.ackkey = ackKey(prov.devkey)
    }

    async start(): Promise<void> {
        const clock = this.board.clock
        await this.store.start()
        const store = this.store
        await store.append(bootRecord(store.nextSeq, clock.now(), store.boot, 0))
        // the configuration in force is part of the chain from every boot on
        await store.append(configRecord(store.nextSeq, clock.now(), this.prov.configHash))
        const st = this.store.status()
        console.log(`ct:boot boot=${this.store.boot} next=${st.nextSeq} ack=${st.ackSeq === ACK_NONE ? -1 : st.ackSeq}`)
        runSampling.start(this)
        runUploads.start(this)
    }

    private async appendTimeAnchor() {
        const b = this.board
        if (!b.utcNow) return
        const utc = b.utcNow()
        if (!(utc > 0)) return
        const now = b.clock.now()
        if (this.lastAnchor >= 0 && now - this.lastAnchor < TIME_ANCHOR_EVERY) return
        this.lastAnchor = now
        await this.store.append(timeRecord(this.store.nextSeq, now, utc, b.utcSource))
    }

    async sampling() {
        const clock = this.board.clock
        const interval = this.prov.config.interval * 1000
        let next = clock.now()
        for (;;) {
            const wait = next - clock.now()
            if (wait > 0) await clock.sleep(wait)
            try {
                await this.takeSample()
            } catch (e) {
                // the schedule survives anything a sample can throw; the error is on the console
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
        // the sample is stamped when its conversion ended, the instant the chip measured
        const uptime = clock.now()
        const readMs = ds.millis() - tr
        const seq = await this.store.append(sampleRecord(this.store.nextSeq, uptime, r.tc, r.cj, r.sr, r.sflags))
        // rd = VM wall ms of the driver read, ms = of the whole cycle (read + flash append)
        // (the compiler takes at most a handful of substitutions per template: two halves)
        const timing = `rd=${readMs} ms=${ds.millis() - t0}`
        console.log(`ct:sample seq=${seq} up=${uptime} tc=${r.tc} cj=${r.cj} sr=${r.sr} fl=${r.sflags} ` + timing)
        if (!r.sr && !r.sflags) await this.checkAlarm(r.tc, uptime)
        while (this.store.overBudget()) {
            const gone = await this.store.evictOldest()
            if (!gone) break
            await this.store.append(gapRecord(this.store.nextSeq, clock.now(), gone[0], gone[1]))
            console.log(`ct:evicted first=${gone[0]} last=${gone[1]}`)
        }
    }

    private async checkAlarm(tc: number, uptime: number) {
        const c = tc / 128
        const cfg = this.prov.config
        const type = c > cfg.high ? 1 : c < cfg.low ? 2 : 3
        const inBand = type === 3
        if (inBand === this.inBand) return
        this.inBand = inBand
        await this.store.append(alarmRecord(this.store.nextSeq, uptime, type, tc))
        console.log(`ct:alarm type=${type} tc=${tc}`)
        this.uploadNow = true // an excursion is reported at once, not at the next upload slot
    }

    async uploading() {
        const clock = this.board.clock
        const period = this.prov.config.upload * 1000
        let backoff = BACKOFF_MIN
        let next = clock.now() + 10_000
        for (;;) {
            while (!this.uploadNow && clock.now() < next) await clock.sleep(1000)
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

    /** Send everything not yet acknowledged; true when the server has acknowledged all of it. */
    private async uploadPending(): Promise<boolean> {
        for (;;) {
            const st = this.store.status()
            const from = st.ackSeq === ACK_NONE ? 0 : st.ackSeq + 1
            const batch = await this.store.readFrom(from, MAX_BATCH_BYTES)
            if (!batch) return true
            const body = encodeBatch(this.prov.devid, this.prov.devkey, batch.firstSeq, batch.prevHead, batch.records)
            const last = batch.firstSeq + batch.records.length - 1
            let status = 0
            try {
                const reply = await postBatch(this.prov.endpoint, body)
                status = reply.status
                const ack = parseAck(reply.body, this.prov.devid, this.ackkey)
                if (ack && ack.ackSeq !== ACK_NONE) await this.store.acknowledge(ack.ackSeq, ack.head)
                console.log(`ct:upload first=${batch.firstSeq} last=${last} bytes=${body.length} status=${status} ack=${ack ? ack.ackSeq : "none"}`)
            } catch (e) {
                console.log(`ct:upload-error first=${batch.firstSeq} last=${last} ${e}`)
                return false
            }
            if (status !== 200 || this.store.status().ackSeq !== last) return false
        }
    }
}

// fibers: Function.start() runs a function in the background (methods lose `this`, so wrap them)
async function runSampling(lg: Logger) {
    await lg.sampling()
}
async function runUploads(lg: Logger) {
    await lg.uploading()
}
