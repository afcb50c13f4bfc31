import { Clock } from "../hal/clock"
import { Ublox } from "../sensor/ublox"
import { NavPvt, positionValid, timeValid } from "../sensor/ubx"

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
    stopStart = -1
    stopLat = 0
    stopLon = 0
}

const RECORD_AFTER_MS = 6 * 3_600_000
const RECORD_MOVE_E7 = 18000 // ~200 m in 1e-7 degrees of latitude

/** The tracker for a configured receiver (the entry points' `gnss` factory): never throws. */
export async function startGnss(gps: Ublox, clock: Clock, cfg: GnssConfig): Promise<GnssTracker> {
    await gps.retryConfigure()
    if (!gps.ok) console.log("ct:gnss-fault " + gps.lastError)
    return new GnssTracker(gps, clock, cfg)
}

export class GnssTracker {
    /** last fix with valid UTC: UTC now = utc + (clock.now() - at) */
    utc = 0
    utcAt = -1
    moving = false
    private lastRecLat = 0
    private lastRecLon = 0
    private lastRecAt = -1
    private slowSince = -1
    private slowLat = 0
    private slowLon = 0
    private inStop = false

    constructor(
        readonly gps: Ublox,
        readonly clock: Clock,
        readonly cfg: GnssConfig,
    ) {}

    utcNow(): number {
        return this.utcAt < 0 ? 0 : this.utc + (this.clock.now() - this.utcAt)
    }

    /** One fix attempt; returns what to record. Never throws. */
    async step(): Promise<GnssEvents> {
        const ev = new GnssEvents()
        if (!this.gps.ok && !(await this.gps.retryConfigure())) return ev
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
        if (this.lastRecAt < 0 || at - this.lastRecAt >= RECORD_AFTER_MS || dLat > RECORD_MOVE_E7 || dLon > RECORD_MOVE_E7 * 2) {
            ev.fix = pvt
            this.lastRecLat = pvt.lat
            this.lastRecLon = pvt.lon
            this.lastRecAt = at
        }
        // stops: speed below the threshold for at least stopt; recorded when the vehicle moves again
        const slow = pvt.gSpeedMmS < this.cfg.stopv * 1000
        this.moving = !slow
        if (slow) {
            if (this.slowSince < 0) {
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
            this.slowSince = -1
        }
        return ev
    }

    /** device ms until the next fix attempt: the fast rate while moving or while a stop is young */
    nextIn(): number {
        const young = this.slowSince >= 0 && this.clock.now() - this.slowSince < 2 * this.cfg.stopt * 1000
        return (this.moving || young ? this.cfg.fixmv : this.cfg.fix) * 1000
    }
}
