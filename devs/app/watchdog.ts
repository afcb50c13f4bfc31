import * as ds from "@devicescript/core"
import { Clock } from "../hal/clock"
import { WakeState, ST_WATCHDOG, ST_ASLEEP } from "./state"

/** the `due` slots: the logger's three fibers, and the start of a run before they run */
export const DUE_SAMPLING = 0
export const DUE_UPLOADS = 1
export const DUE_GNSS = 2
export const DUE_START = 3
/** longest the start of a run may take (a boot's or a wake's restore, the drivers' configuration) */
export const START_MAX = 2 * 60_000
const DAY = 24 * 3_600_000
/** the reason's save may itself wait on the hang (a settings request that never ends holds kv.ts's lock): reboot regardless after this */
const SAVE_MAX = 10_000

/**
 * The logger's watchdog (docs/platform.md): any await that never returns (a bus that never answers,
 * a socket that never completes, a timer that never fires) leaves its fiber past its `due`; then the
 * reason goes to `st` and the logger reboots, so the next boot record says watchdog. Armed as soon as
 * a provisioned logger starts, so a hang while a wake restores its state is caught too. It wakes at
 * the sampling schedule's own instants (and the start's deadline), not on a period of its own: a hung
 * sample is caught within two sample intervals, a hung upload or GNSS step after STEP_MAX.
 */
export class Watchdog {
    /** device ms by which each must be back from what it is doing, sleeping included (0: not watched) */
    readonly due = [0, 0, 0, 0]

    constructor(
        readonly clock: Clock,
        readonly st: WakeState,
    ) {}

    start() {
        this.clock.spawn(runWatchdog, this)
    }

    async watching() {
        const clock = this.clock
        const due = this.due
        for (;;) {
            const s = due[DUE_SAMPLING]
            const b = due[DUE_START]
            const next = s && b ? Math.min(s, b) : s || b
            // nothing scheduled (cut off): look again in a day, not every second
            await clock.sleep(next ? Math.max(next - clock.now(), 1000) : DAY)
            for (let i = 0; i < due.length; i++) {
                const late = clock.now() - due[i]
                if (due[i] && late >= 0) await this.fire(i, late)
            }
        }
    }

    private async fire(slot: number, late: number) {
        console.log(`ct:watchdog fiber=${slot} late=${late}`)
        // (then the next boot says interrupted, not watchdog: the reason could not be written)
        this.clock.spawn(rebootAfterSave, this.clock)
        const st = this.st
        // a hang before the run read its state: read it now, so the boot counter and flags go on
        if (!st.loaded) await st.load()
        st.set(ST_WATCHDOG, true)
        // (a wake that hangs is a boot after the reset, not another wake)
        st.set(ST_ASLEEP, false)
        await st.save()
        ds.reboot()
    }
}

// (Function.start() loses `this` of a method: wrap it)
async function runWatchdog(w: Watchdog) {
    await w.watching()
}

async function rebootAfterSave(clock: Clock) {
    await clock.sleep(SAVE_MAX)
    console.log("ct:watchdog-save-hung")
    ds.reboot()
}
