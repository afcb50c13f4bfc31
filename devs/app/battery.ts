import { NO_TIME } from "../hal/clock"
import { BATTERY_CUTOFF } from "../record/record"

/**
 * The cell as the firmware sees it (issue 10 item 4, hardware/power.md "Battery model and low-battery
 * thresholds"): its rest voltage, read at a sample wake, averaged over the last 3 wakes, and the
 * level it puts the logger in. The levels only trade service for time: samples are never given up
 * before the cut-off.
 */
export interface BatterySense {
    /** the cell's voltage in mV now; 0 when nothing measures it (no divider fitted, USB power) */
    readMv(): Promise<number>
}

/** cell voltage / ADC pin voltage: the 100 kOhm / 100 kOhm divider on GPIO35 (v1 and v2, hardware/README.md) */
export const DIVIDER_RATIO = 2

/** rest voltage (mV) below which each level starts: low, critical, final, cut-off (power.json thresholds) */
export const LEVEL_BELOW_MV = [0, 3700, 3620, 3520, 3400]
/** a level is left (a warmer or charged cell) only this far above its bound */
export const HYSTERESIS_MV = 50
/** a battery record at most this often while the level stays (a level change is recorded at once) */
export const BATTERY_RECORD_EVERY = 6 * 3_600_000
const AVERAGE_OF = 3

/** The level for an averaged rest voltage, given the level the logger is in (hysteresis on the way up). */
export function batteryLevel(mv: number, current: number): number {
    let level = 0
    for (let l = 1; l <= BATTERY_CUTOFF; l++) if (mv < LEVEL_BELOW_MV[l]) level = l
    if (level < current && mv < LEVEL_BELOW_MV[current] + HYSTERESIS_MV) return current
    return level
}

/** Readings in, the averaged voltage and level out, and whether this reading belongs in the chain. */
export class BatteryMonitor {
    /** the level acted on: the last boot's (kept in `st`) until this boot's first reading */
    level = 0
    /** averaged rest voltage, mV (0 before the first reading) */
    mv = 0
    readings: number[] = []
    /** device ms of the last battery record (NO_TIME: none) */
    recordedAt = NO_TIME

    /**
     * One wake's reading at device ms `now`. True when it is to be recorded: the first of a boot, a
     * change of level, or BATTERY_RECORD_EVERY since the last record.
     */
    take(mv: number, now: number): boolean {
        const r = this.readings
        r.push(mv)
        if (r.length > AVERAGE_OF) r.shift()
        let sum = 0
        for (const v of r) sum += v
        this.mv = Math.round(sum / r.length)
        const level = batteryLevel(this.mv, this.level)
        const changed = level !== this.level
        this.level = level
        if (!changed && this.recordedAt !== NO_TIME && now - this.recordedAt < BATTERY_RECORD_EVERY) return false
        this.recordedAt = now
        return true
    }
}
