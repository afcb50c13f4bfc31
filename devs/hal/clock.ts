import * as ds from "@devicescript/core"

/**
 * The device clock: milliseconds since this boot. On the board it is `ds.millis()`; in the simulator
 * it runs `scale` times faster so a 5-minute interval passes in a fraction of a second of wall time.
 * All firmware timing (sampling schedule, conversion waits, back-off) goes through it.
 */
export class Clock {
    constructor(readonly scale: number = 1) {}
    /** device milliseconds since boot */
    now(): number {
        return Math.floor(ds.millis() * this.scale)
    }
    /** wait `ms` device milliseconds */
    async sleep(ms: number): Promise<void> {
        const wall = ms / this.scale
        await ds.sleep(wall < 1 ? 1 : wall)
    }
    /** wait about `ms`: for polling loops whose exact wake-up time does not matter */
    async nap(ms: number): Promise<void> {
        await this.sleep(ms)
    }
}
