import { Clock, Signal, NO_TIME } from "../hal/clock"
import { LogStore, NONE } from "../flash/logstore"
import { EpochKeys } from "../chain/keys"
import { encodeBatch, parseAck } from "../batch/batch"
import { Uplink } from "../uplink/uplink"
import { randomBuffer } from "@devicescript/crypto"
import { BATTERY_LOW, BATTERY_CRITICAL, BATTERY_FINAL } from "../record/record"
import { Provisioning } from "./config"
import { BatteryMonitor } from "./battery"
import { WakeState, STEP_MAX, W_UP_SINCE, W_UP_RETRY, W_UP_BACKOFF, W_UP_QUIET } from "./state"
import { DeviceTime } from "./devtime"
import { WakeScheduler, RUNNING } from "./scheduler"
import { DUE_UPLOADS } from "./watchdog"

// a batch carries whole blocks' packed streams (~220 B each, hundreds of samples): 4 blocks keep it
// within one Notecard note and a few KB of the VM heap (~58 KB for firmware and chip models)
const MAX_BATCH_BYTES = 900
const BACKOFF_MIN = 30_000
const BACKOFF_MAX = 3_600_000
const HOUR = 3_600_000
const DAY = 24 * HOUR

/** What the uploader needs of the logger (devs/app/logger.ts). */
export interface UploadLog {
    /** the board's clock, and whether the radio may transmit now (false in a flight) */
    readonly board: { clock: Clock; radioAllowed?: () => boolean }
    readonly prov: Provisioning
    readonly store: LogStore
    readonly keys: EpochKeys
    readonly st: WakeState
    readonly battery: BatteryMonitor
    /** the watchdog's view of the fibers: [DUE_UPLOADS] is this one's */
    due: number[]
    /** the fibers' schedule (devs/app/scheduler.ts, indexed as the watchdog's slots): the logger may sleep while this one waits */
    readonly scheduler: WakeScheduler
}

/**
 * Batches to the server (docs/uplink.md): on the provisioned period, stretched by a low battery; at
 * once for an alarm; each uplink in turn (Wi-Fi, then cellular); exponential back-off with jitter
 * when none gets through; flash freed only on an authenticated acknowledgement.
 */
export class Uploader {
    /** something must go out at once (an alarm, the final-level upload) */
    urgent = false
    /** wakes the uploader early: an alarm, a new battery level */
    private signal = new Signal()
    /** the schedule (clock ms), kept across sleeps (`st`): the last upload that got through, the retry
     * planned (NO_TIME: none), no radio before `quietUntil` (a radio-off window) */
    since = 0
    retryAt = NO_TIME
    backoff = BACKOFF_MIN
    quietUntil = NO_TIME

    constructor(
        readonly lg: UploadLog,
        readonly uplinks: Uplink[],
    ) {}

    /** Start the upload fiber: the first upload 10 s after a boot, a period after the last one that got through. */
    start() {
        this.since = this.lg.board.clock.now() + 10_000 - this.lg.prov.config.upload * 1000
        this.lg.scheduler.runAt[DUE_UPLOADS] = RUNNING
        this.lg.board.clock.spawn(runUploads, this)
    }

    /** Start the fiber after a sleep: the schedule as `save` left it in the wake slots `w`. */
    resume(w: number[], tm: DeviceTime) {
        this.since = tm.unkeep(w[W_UP_SINCE])
        this.retryAt = tm.unkeepOrNone(w[W_UP_RETRY])
        this.backoff = w[W_UP_BACKOFF] || BACKOFF_MIN
        this.quietUntil = tm.unkeepOrNone(w[W_UP_QUIET])
        this.lg.scheduler.runAt[DUE_UPLOADS] = RUNNING
        this.lg.board.clock.spawn(runUploads, this)
    }

    /** The schedule into the wake slots, as device seconds (before a sleep). */
    save(w: number[], tm: DeviceTime) {
        w[W_UP_SINCE] = tm.keep(this.since)
        w[W_UP_RETRY] = tm.keepOrNone(this.retryAt)
        w[W_UP_BACKOFF] = this.backoff
        w[W_UP_QUIET] = tm.keepOrNone(this.quietUntil)
    }

    /** Re-plan now (a new battery level); `atOnce`: send at once (an alarm, the final upload). */
    wake(atOnce: boolean) {
        if (atOnce) this.urgent = true
        // running from now on: the logger must not sleep before this fiber has looked
        this.lg.scheduler.runAt[DUE_UPLOADS] = RUNNING
        this.lg.board.clock.raise(this.signal)
    }

    /** ms between uploads at the battery's level: as provisioned, then 12 h, a day; 0: none planned */
    private period(): number {
        const base = this.lg.prov.config.upload * 1000
        const level = this.lg.battery.level
        if (level >= BATTERY_FINAL) return 0
        if (level === BATTERY_CRITICAL) return Math.max(base, DAY)
        return level === BATTERY_LOW ? Math.max(base, 12 * HOUR) : base
    }

    async run() {
        const clock = this.lg.board.clock
        for (;;) {
            const now = clock.now()
            const period = this.period()
            let next = this.retryAt !== NO_TIME ? this.retryAt : period ? this.since + period : now + DAY
            // an alarm uploads at once; from a low cell at most hourly
            if (this.urgent) next = this.lg.battery.level === BATTERY_LOW ? Math.min(next, this.since + HOUR) : now
            // inside a radio-off window nothing is sent before its end, an alarm's upload included
            next = Math.max(next, this.quietUntil)
            this.lg.due[DUE_UPLOADS] = Math.max(next, now) + STEP_MAX
            if (now < next) {
                // one wait until the next upload is due, cut short by an alarm or a new battery level
                // (not a poll: every wake-up costs energy on the board and a world jump in the simulator)
                await this.lg.scheduler.waitUntil(DUE_UPLOADS, next, this.signal)
                continue
            }
            if (this.lg.board.radioAllowed && !this.lg.board.radioAllowed()) {
                // radio-off window: keep the upload (and any alarm) pending, look again in a minute
                this.quietUntil = now + 60_000
                continue
            }
            this.urgent = false
            const ok = await this.sendPending()
            if (ok || !period) {
                // (from a final-level cell one attempt only: the radio costs what is left)
                this.backoff = BACKOFF_MIN
                this.retryAt = NO_TIME
                this.since = clock.now()
            } else {
                // exponential back-off with jitter, so a fleet does not hammer a recovering server
                this.retryAt = clock.now() + this.backoff / 2 + Math.random() * (this.backoff / 2)
                this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX)
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
    async sendPending(): Promise<boolean> {
        const store = this.lg.store
        const upTo = store.nextSeq - 1
        for (;;) {
            const expected = store.ackSeq === NONE ? 0 : store.ackSeq + 1
            if (expected > upTo) return true
            this.lg.due[DUE_UPLOADS] = this.lg.board.clock.now() + STEP_MAX
            const p = await store.pending(expected, MAX_BATCH_BYTES)
            if (!p.count) return true
            // a fresh nonce per request: the ack must echo it, so an old ack replayed proves nothing
            const nonce = randomBuffer(4).getAt(0, "u32")
            const body = encodeBatch(this.lg.prov.devid, this.lg.keys.current(), this.lg.st.boot, this.lg.keys.epoch, nonce, p)
            const last = p.firstSeq + p.count - 1
            const reply = await this.sendVia(body, p.firstSeq, last)
            if (!reply) return false
            let ack = parseAck(reply.body, this.lg.prov.devid, this.lg.prov.ackkey)
            if (ack && ack.nonce !== nonce) {
                console.log(`ct:ack-stale nonce=${ack.nonce}`)
                ack = undefined
            }
            if (ack && ack.seq !== NONE) await store.acknowledge(ack.seq, ack.head, ack.boot)
            const what = `n=${p.count} bytes=${body.length} status=${reply.status} via=${reply.via}`
            console.log(`ct:upload first=${p.firstSeq} last=${last} ` + what + ` ack=${ack ? ack.seq : "none"}`)
            // the server went back (a restored database): send again from what it holds, at once
            if (reply.status === 409 && ack && (await store.rewindAck(ack.seq, ack.head, ack.boot))) {
                console.log(`ct:resync ack=${store.ackSeq === NONE ? -1 : store.ackSeq}`)
                continue
            }
            if (reply.status !== 200 || store.ackSeq < last || store.ackSeq === NONE) return false
        }
    }
}

// (Function.start() loses `this` of a method: wrap it)
async function runUploads(u: Uploader) {
    await u.run()
}
