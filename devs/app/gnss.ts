import { Clock, NO_TIME } from "../hal/clock"
import { Ublox } from "../sensor/ublox"
import { NavPvt, positionValid, timeValid } from "../sensor/ubx"
import { fixRecord, stopRecord, BATTERY_LOW, BATTERY_CRITICAL } from "../record/record"
import { encryptLoc } from "../record/loc"
import { DeviceTime } from "./devtime"
import { BatteryMonitor } from "./battery"
import { DUE_GNSS } from "./watchdog"
import {
    STEP_MAX,
    W_GNSS,
    W_FLAGS,
    WF_MOVING,
    WF_IN_STOP,
    W_FIX_AT,
    W_FIX_LAT,
    W_FIX_LON,
    W_SLOW_AT,
    W_SLOW_LAT,
    W_SLOW_LON,
} from "./state"

/**
 * Position and time from the GNSS receiver (issue: GPS position and UTC time over I2C): the fix
 * schedule, the UTC the logger's time records come from, and stop detection.
 */
export interface GnssConfig {
    /** seconds between fixes while stationary / while moving */
    fix: number
    fixmv: number
    /** a stop: ground speed below `stopv` m/s for at least `stopt` seconds */
    stopv: number
    stopt: number
}

/** What the GNSS step decided the logger should record. */
export class GnssEvents {
    /** device time the solution refers to */
    at = -1
    /** a position worth recording (first of a boot, moved > 200 m, or 6 h since the last one) */
    fix: NavPvt = undefined
    /** a stop that just ended: [startUptime, lat, lon] */
    stopStart = NO_TIME
    stopLat = 0
    stopLon = 0
}

/** What the GNSS fiber needs of the logger (devs/app/logger.ts): its chain, its clock, its schedule. */
export interface PositionLog {
    readonly time: DeviceTime
    readonly battery: BatteryMonitor
    readonly prov: { lockey: Buffer }
    /** the watchdog's view of the fibers: [DUE_GNSS] is this one's */
    due: number[]
    /** the fibers' schedule (indexed as the watchdog's slots): the logger may sleep while this one waits */
    readonly scheduler: { waitUntil(fiber: number, at: number): Promise<boolean> }
    /** device time no record may be stamped before (the last boot or clock set) */
    minT: number
    /** `t` of the last record appended */
    readonly lastT: number
    add(make: (seq: number) => Buffer): Promise<number>
    /** time records (devs/app/anchors.ts): one at a fix when due */
    readonly anchors: { append(): Promise<void> }
}

const HOUR = 3_600_000
const RECORD_AFTER_MS = 6 * 3_600_000
const RECORD_MOVE_E7 = 18000 // ~200 m in 1e-7 degrees of latitude

/** the receiver wakes from its standby this long before the next fix attempt (hot start: ~1 s) */
const STANDBY_LEAD_MS = 5000
/** a receiver idle for less than this keeps tracking (a standby and a hot start cost more) */
const STANDBY_MIN_MS = 30000

/**
 * The tracker for a receiver (the entry points' `gnss` factory): never throws. The receiver is
 * configured at the first fix attempt, not here: at a wake it is in standby until just before it.
 */
export async function startGnss(gps: Ublox, clock: Clock, cfg: GnssConfig): Promise<GnssTracker> {
    return new GnssTracker(gps, clock, cfg)
}

export class GnssTracker {
    /** last fix with valid UTC: UTC now = utc + (clock.now() - at) */
    utc = 0
    utcAt = NO_TIME
    moving = false
    private lastRecLat = 0
    private lastRecLon = 0
    private lastRecAt = NO_TIME
    private slowSince = NO_TIME
    private slowLat = 0
    private slowLon = 0
    private inStop = false
    /** clock ms of the next fix attempt (NO_TIME: at once) */
    nextAt = NO_TIME

    constructor(
        readonly gps: Ublox,
        readonly clock: Clock,
        readonly cfg: GnssConfig,
    ) {}

    utcNow(): number {
        return this.utcAt === NO_TIME ? 0 : this.utc + (this.clock.now() - this.utcAt)
    }

    /** One fix attempt; returns what to record. Never throws. */
    async step(): Promise<GnssEvents> {
        const ev = new GnssEvents()
        const gps = this.gps
        if (!gps.ok && !(await gps.retryConfigure())) {
            console.log("ct:gnss-fault " + gps.lastError)
            return ev
        }
        const pvt = await this.gps.poll()
        if (!pvt) return ev
        // the solution is of the poll request's instant (docs/timebase.md)
        const at = this.gps.requestAt
        ev.at = at
        if (timeValid(pvt)) {
            this.utc = pvt.utcMs
            this.utcAt = at
        }
        if (!positionValid(pvt)) return ev
        const dLat = Math.abs(pvt.lat - this.lastRecLat)
        const dLon = Math.abs(pvt.lon - this.lastRecLon)
        if (this.lastRecAt === NO_TIME || at - this.lastRecAt >= RECORD_AFTER_MS || dLat > RECORD_MOVE_E7 || dLon > RECORD_MOVE_E7 * 2) {
            ev.fix = pvt
            this.lastRecLat = pvt.lat
            this.lastRecLon = pvt.lon
            this.lastRecAt = at
        }
        // stops: speed below the threshold for at least stopt; recorded when the vehicle moves again
        const slow = pvt.gSpeedMmS < this.cfg.stopv * 1000
        this.moving = !slow
        if (slow) {
            if (this.slowSince === NO_TIME) {
                this.slowSince = at
                this.slowLat = pvt.lat
                this.slowLon = pvt.lon
            }
            if (!this.inStop && at - this.slowSince >= this.cfg.stopt * 1000) this.inStop = true
        } else {
            if (this.inStop) {
                ev.stopStart = this.slowSince
                ev.stopLat = this.slowLat
                ev.stopLon = this.slowLon
            }
            this.inStop = false
            this.slowSince = NO_TIME
        }
        return ev
    }

    /** Start the fiber that records this receiver's positions and stops into `log`'s chain. */
    record(log: PositionLog) {
        this.clock.spawn(runRecorder, new GnssRecorder(this, log))
    }

    /** The tracker's state into the wake slots `w`, instants as device seconds (before a sleep). */
    save(w: number[], tm: DeviceTime) {
        w[W_GNSS] = tm.keep(this.nextAt)
        w[W_FLAGS] = (w[W_FLAGS] & ~(WF_MOVING | WF_IN_STOP)) | (this.moving ? WF_MOVING : 0) | (this.inStop ? WF_IN_STOP : 0)
        w[W_FIX_AT] = tm.keepOrNone(this.lastRecAt)
        w[W_FIX_LAT] = this.lastRecLat
        w[W_FIX_LON] = this.lastRecLon
        w[W_SLOW_AT] = tm.keepOrNone(this.slowSince)
        w[W_SLOW_LAT] = this.slowLat
        w[W_SLOW_LON] = this.slowLon
    }

    /** The state `save` left, after a sleep (the UTC of the last fix is not kept: the clock chip has the time). */
    resume(w: number[], tm: DeviceTime) {
        this.nextAt = tm.unkeep(w[W_GNSS])
        this.moving = (w[W_FLAGS] & WF_MOVING) !== 0
        this.inStop = (w[W_FLAGS] & WF_IN_STOP) !== 0
        this.lastRecAt = tm.unkeepOrNone(w[W_FIX_AT])
        this.lastRecLat = w[W_FIX_LAT] | 0
        this.lastRecLon = w[W_FIX_LON] | 0
        this.slowSince = tm.unkeepOrNone(w[W_SLOW_AT])
        this.slowLat = w[W_SLOW_LAT] | 0
        this.slowLon = w[W_SLOW_LON] | 0
    }

    /** device ms until the next fix attempt: the fast rate while moving or while a stop is young */
    nextIn(): number {
        const young = this.slowSince !== NO_TIME && this.clock.now() - this.slowSince < 2 * this.cfg.stopt * 1000
        return (this.moving || young ? this.cfg.fixmv : this.cfg.fix) * 1000
    }
}

/** The GNSS fiber: fixes on their schedule, time anchors, encrypted positions, stops. */
class GnssRecorder {
    constructor(
        readonly g: GnssTracker,
        readonly log: PositionLog,
    ) {}

    async run() {
        const g = this.g
        const log = this.log
        for (;;) {
            if (g.nextAt !== NO_TIME) {
                log.due[DUE_GNSS] = g.nextAt + STEP_MAX
                await log.scheduler.waitUntil(DUE_GNSS, g.nextAt)
            }
            try {
                if (log.battery.level < BATTERY_CRITICAL) await this.record(await g.step())
            } catch (e) {
                console.log("ct:gnss-error " + e)
            }
            // the next step too must be over STEP_MAX after its wake; a low cell: a fix every 3 h at
            // most, a critical one: none (hardware/power.md)
            const level = log.battery.level
            const wait = level >= BATTERY_CRITICAL ? HOUR : level === BATTERY_LOW ? Math.max(g.nextIn(), 3 * HOUR) : g.nextIn()
            g.nextAt = g.clock.now() + wait
            // between fixes the receiver sleeps (software standby, hardware/power.md) and wakes by
            // itself just before the next one: tracking all the time was the largest drain of all
            if (wait - STANDBY_LEAD_MS >= STANDBY_MIN_MS && (await g.gps.standby(wait - STANDBY_LEAD_MS)))
                console.log(`ct:gnss-standby ms=${wait - STANDBY_LEAD_MS}`)
        }
    }

    // (a method of its own: DeviceScript closures cannot capture variables of a loop body)
    private async record(ev: GnssEvents) {
        const log = this.log
        await log.anchors.append()
        const now = log.time.now()
        const lockey = log.prov.lockey
        const fix = ev.fix
        if (fix) {
            const at = Math.max(log.time.atCpu(ev.at), log.minT)
            // stamped under the append lock, no earlier than the record before it (a time record the
            // sampling fiber or this step appended after the solution was requested): `t` never steps back
            let t = at
            await log.add(seq => {
                t = Math.max(at, log.lastT)
                return fixRecord(seq, t, encryptLoc(lockey, seq, fix.lat, fix.lon), fix.fixType, fix.numSV)
            })
            // never the position itself: the console is readable over USB (docs/security.md)
            console.log(`ct:fix t=${t} sv=${fix.numSV}`)
        }
        if (ev.stopStart !== NO_TIME) {
            const start = Math.max(log.time.atCpu(ev.stopStart), log.minT)
            const lat = ev.stopLat
            const lon = ev.stopLon
            await log.add(seq => stopRecord(seq, now, start, encryptLoc(lockey, seq, lat, lon)))
            console.log(`ct:stop start=${start} end=${now}`)
        }
    }
}

// (Function.start() loses `this` of a method: wrap it)
async function runRecorder(r: GnssRecorder) {
    await r.run()
}
