import { Clock, NO_TIME } from "../hal/clock"
import { Mutex } from "../hal/mutex"
import { LogStore } from "../flash/logstore"
import { timeRecord, recordSeq, recordTime, TIME_SOURCE_GPS, TIME_FLAG_SET } from "../record/record"
import { DeviceTime } from "./devtime"
import { GnssTracker } from "./gnss"
import { WakeState, ST_RTC_SET, W_ANCHOR, W_ANCHOR_OFF, W_ANCHOR_FROM } from "./state"

// 12 h: the RV-3028 drifts < 1 s in that time, and every anchor costs flash (docs/timebase.md)
const TIME_ANCHOR_EVERY = 12 * 3_600_000
// the clock is set again when it is this far from the time source
const RTC_SET_ERROR_MS = 2000

/** What the time anchors need of the logger (devs/app/logger.ts). */
export interface AnchorLog {
    /** UTC from the GNSS receiver when fitted, else the board's source (network, simulator world) */
    readonly board: { clock: Clock; gnss?: GnssTracker; utcNow?: () => number; utcSource?: number }
    readonly time: DeviceTime
    readonly store: LogStore
    readonly st: WakeState
    /** held while a record is built and appended (its seq and head are the ones it gets) */
    readonly appending: Mutex
    add(make: (seq: number) => Buffer): Promise<number>
    /** the clock was set: device time went from `was` to `now` (the schedule moves with it) */
    clockSet(was: number, now: number): void
}

/**
 * Time records (docs/timebase.md): at the first valid UTC of a boot and every 12 hours after. When
 * the clock does not hold UTC (lost, never set) or is off by more than 2 s, the time record says SET
 * and the clock is set to floor(utc / 1000) right after it: the record's `t` is the old count, the
 * records after it count from the new one. Also what the logger itself can place in UTC (evictions'
 * summaries): the records of the current clock run, by its last time record.
 */
export class TimeAnchors {
    /** CPU ms of the last time record */
    private last = NO_TIME
    /** UTC ms minus t*1000 at the last time record, and the first seq it applies to */
    private offset = 0
    private from = -1

    constructor(readonly lg: AnchorLog) {}

    private utcNow(): number {
        const b = this.lg.board
        if (b.gnss) return b.gnss.utcNow()
        return b.utcNow ? b.utcNow() : 0
    }

    /** A time record if one is due (or the clock is wrong: then it is set). */
    async append() {
        const lg = this.lg
        if (!(this.utcNow() > 0)) return
        // the counter read now, next to the UTC it is paired with (extrapolated from an older read
        // it would lag by that read's phase within its second)
        await lg.time.sync()
        const utc = this.utcNow()
        const now = lg.board.clock.now()
        const tm = lg.time
        const t = tm.now()
        const off = utc - t * 1000
        const wrong = !tm.trusted || off > RTC_SET_ERROR_MS + 1000 || off < -RTC_SET_ERROR_MS
        if (!wrong && this.last !== NO_TIME && now - this.last < TIME_ANCHOR_EVERY) return
        this.last = now
        const source = lg.board.gnss ? TIME_SOURCE_GPS : lg.board.utcSource
        if (wrong && tm.canSet()) {
            await this.setClock(source)
            return
        }
        const seq = await lg.add(s => timeRecord(s, t, utc, source, 0))
        if (this.from < 0 || !wrong) {
            this.offset = off
            if (this.from < 0) this.from = seq
        }
    }

    /**
     * Set the clock at a UTC second boundary, so its count is whole UTC seconds (a record is then
     * placed at most 1 s early, never late): a SET time record with the old count and that UTC, then
     * the clock set to utc / 1000 (docs/timebase.md).
     */
    private async setClock(source: number) {
        const lg = this.lg
        const clock = lg.board.clock
        const tm = lg.time
        const early = this.utcNow()
        await clock.sleep(1000 - (early - Math.floor(early / 1000) * 1000))
        const utc = this.utcNow()
        const t = tm.now()
        // no other record between this one and the set: it would read the old count in the new run
        await lg.appending.acquire()
        let seq = 0
        let at = 0
        try {
            seq = await lg.store.append(timeRecord(lg.store.nextSeq, t, utc, source, TIME_FLAG_SET))
            // the counter's seconds start when it is written: write it at the next UTC second
            // boundary (the append took a few ms), so it ticks with UTC
            const late = this.utcNow()
            await clock.sleep(1000 - (late - Math.floor(late / 1000) * 1000))
            at = this.utcNow()
            // a failed set leaves the old count, which the SET record then misplaces by the step
            if (!(await tm.set(at))) console.log(`ct:rtc-set-failed seq=${seq}`)
        } finally {
            lg.appending.release()
        }
        lg.st.set(ST_RTC_SET, tm.trusted)
        await lg.st.save()
        this.offset = at - Math.floor(at / 1000) * 1000
        this.from = seq + 1
        const now = tm.now()
        lg.clockSet(t, now)
        console.log(`ct:rtc-set t=${now} was=${t} seq=${seq}`)
    }

    /** UTC seconds of a record the current clock run places (since its time record's run began); 0: not placed */
    placedUtc(r: Buffer): number {
        if (this.from < 0 || recordSeq(r) < this.from) return 0
        return Math.floor((recordTime(r) * 1000 + this.offset) / 1000)
    }

    /** into the wake slots before a sleep (the last record's instant as device seconds) */
    save(w: number[], tm: DeviceTime) {
        w[W_ANCHOR] = tm.keepOrNone(this.last)
        w[W_ANCHOR_OFF] = this.offset
        w[W_ANCHOR_FROM] = this.from + 1
    }

    /** what `save` left, at the wake */
    resume(w: number[], tm: DeviceTime) {
        this.last = tm.unkeepOrNone(w[W_ANCHOR])
        this.offset = w[W_ANCHOR_OFF] | 0
        this.from = w[W_ANCHOR_FROM] - 1
    }
}
