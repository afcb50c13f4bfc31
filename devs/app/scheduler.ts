import { Clock, Signal } from "../hal/clock"
import { DeviceTime } from "./devtime"
import { WakeState, ST_ASLEEP } from "./state"
import { LidWatch, LidLog } from "./lid"

/** a fiber's `runAt` while it runs (the logger does not sleep then) */
export const RUNNING = -2e15
/** a fiber that is not running and has nothing planned */
const NEVER = 1e15
/** nothing to do for at least this long: sleep (a wake costs ~0.35 s of boot before the program runs) */
const MIN_SLEEP_MS = 3000
/** an instant kept across the sleep that is due within this of the wake is due at once (ms) */
const WAKE_DUE_MS = 1500

/** What the scheduler needs of the logger (devs/app/logger.ts). */
export interface SleepingLog extends LidLog {
    readonly board: {
        clock: Clock
        /** a deep sleep of `ms`: does not return, the program starts again at the wake */
        sleep?: (ms: number) => Promise<void>
        /** USB (or a charger) powers the board: stay awake */
        externalPower?: () => boolean
        /** CPU ms at which this run's program started */
        startedAt?: number
    }
    readonly time: DeviceTime
    readonly st: WakeState
    /** something must go out before the logger may sleep (an alarm's upload) */
    mustStayAwake(): boolean
    /** what RAM holds, into `st` with ST_ASLEEP, before a sleep until clock ms `wake` */
    saveWake(wake: number): Promise<void>
    /** the shipper's lid, when fitted: looked at before a sleep, and its edges end it */
    readonly lid?: LidWatch
}

/**
 * When each of the logger's fibers (sampling, uploads, GNSS) runs next, and the deep sleep when all of
 * them wait (docs/platform.md, "The duty cycle"): the last fiber to wait, when the earliest instant is
 * at least MIN_SLEEP_MS away, has the logger save what RAM holds and sleep until then.
 */
export class WakeScheduler {
    /** when each fiber runs next, clock ms; RUNNING while it runs */
    readonly runAt = [RUNNING, NEVER, NEVER]

    constructor(readonly lg: SleepingLog) {}

    /**
     * A device second on this run's clock, by the run's own reading (so every sample of a run is taken
     * at the same phase of its second, and stamped alike); one due within WAKE_DUE_MS is due now.
     */
    dueAt(t: number): number {
        const at = this.lg.time.unkeep(t)
        const now = this.lg.board.clock.now()
        return at > now && at - now < WAKE_DUE_MS ? now : at
    }

    /**
     * Fiber `fiber` waits until clock ms `at` (or `signal`). When every fiber waits and the earliest
     * is at least MIN_SLEEP_MS away, the logger saves what RAM holds and sleeps until it instead (the
     * board's sleep does not return: the wake starts the program again). True when `signal` ended it.
     */
    async waitUntil(fiber: number, at: number, signal?: Signal): Promise<boolean> {
        const clock = this.lg.board.clock
        this.runAt[fiber] = at
        await this.sleepIfIdle()
        const left = at - clock.now()
        let raised = false
        if (left > 0) {
            if (signal) raised = await clock.sleepOr(left, signal)
            else await clock.sleep(left)
        }
        this.runAt[fiber] = RUNNING
        return raised
    }

    /** the earliest instant a fiber runs at; RUNNING when one runs now */
    private nextRun(): number {
        let wake = NEVER
        for (const a of this.runAt) {
            if (a === RUNNING) return RUNNING
            if (a < wake) wake = a
        }
        return wake
    }

    private async sleepIfIdle() {
        const lg = this.lg
        const board = lg.board
        // without a working clock chip a wake would not know the time: stay awake
        if (!board.sleep || !lg.time.canSet() || lg.mustStayAwake()) return
        if (board.externalPower && board.externalPower()) return
        const wake = this.nextRun()
        if (wake === RUNNING || wake === NEVER || wake - board.clock.now() < MIN_SLEEP_MS) return
        // the lid's news before the state is saved (a lid record is an append)
        if (lg.lid) await lg.lid.check(lg, lg.time.now())
        await lg.saveWake(wake)
        // (the write took a few ms: nothing may have woken meanwhile)
        const now = board.clock.now()
        if (this.nextRun() !== wake || wake - now < MIN_SLEEP_MS) {
            lg.st.set(ST_ASLEEP, false)
            return
        }
        // wake so early that the next run reads the counter at the same phase of its second as this
        // one did: a wake that starts on time then always reads and stamps the same second (a phase
        // creeping through the second would stamp one sample in a few a second late)
        // (whole seconds after this run's first reading, by that reading: the latest may be at another phase)
        const tm = lg.time
        const lag = tm.firstReadAt - (board.startedAt || 0)
        const at = lag > 0 && lag < 1000 ? tm.unkeep(tm.keep(wake)) - lag : wake
        if (lg.lid) await lg.lid.sleep()
        await board.sleep(at - now)
    }
}
