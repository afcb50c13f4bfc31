import * as ds from "@devicescript/core"

/**
 * The device clock: milliseconds since this boot. On the board it is `ds.millis()`; tests may run it
 * `scale` times faster. All firmware timing (sampling schedule, conversion waits, back-off) goes
 * through it, and so do the firmware's fibers: the simulator's clock (devs/sim/world.ts) counts
 * them, so the simulated world knows when every fiber is waiting and can jump straight to the
 * earliest wake-up (docs/simulator.md).
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
    /** wait `ms` device milliseconds or until `signal` is raised, whichever comes first; true if raised */
    async sleepOr(ms: number, signal: Signal): Promise<boolean> {
        const wall = ms / this.scale
        signal.waiting++
        try {
            return (await ds.wait(signal.emitter, wall < 1 ? 1 : wall)) !== undefined
        } finally {
            signal.waiting--
        }
    }
    /** wake the fibers waiting on `signal` (sleepOr) */
    raise(signal: Signal): void {
        signal.emitter.emit(true)
    }
    /** run `fn(arg)` in a fiber of its own */
    spawn(fn: (arg: any) => Promise<void>, arg: any): void {
        this.fiberStarted()
        fiberMain.start(this, fn, arg)
    }
    /** a fiber began to run on this clock (counted by the simulator's clock) */
    fiberStarted(): void {}
    /** a fiber of this clock has ended */
    fiberEnded(): void {}
}

/**
 * An instant that is not set. Not -1: a CPU instant kept across a sleep comes back negative when it
 * was before this run's start (the board's clock restarts at every wake).
 */
export const NO_TIME = -1e15

/** Something a fiber can wait for besides time (an alarm that must be uploaded at once). */
export class Signal {
    readonly emitter = ds.emitter<boolean>()
    /** fibers waiting on it, not yet woken */
    waiting = 0
    /** fibers woken by raise() that have not run yet (the simulator's clock counts them as busy) */
    counted = 0
}

// (a plain function: Function.start() loses `this` of a method)
async function fiberMain(clock: Clock, fn: (arg: any) => Promise<void>, arg: any) {
    try {
        await fn(arg)
    } catch (e) {
        console.log("ct:fiber-died " + e)
    } finally {
        clock.fiberEnded()
    }
}
