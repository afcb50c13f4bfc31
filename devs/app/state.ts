import { kvGet, kvSet } from "../flash/kv"

/**
 * What the logger carries from one run to the next besides the log itself (docs/format.md 5.5): the
 * settings value `st`, written only when something in it changed.
 *   st = version u8 (3) | flags u8 | battery level u8 | reserved u8 | boot u32 | wake slots u32 x 23
 * The wake slots are what a deep sleep would otherwise lose (RAM does not survive it): the schedule,
 * the uploader's, GNSS tracker's, alarm's and battery monitor's state, written before every sleep and
 * read only by the wake that follows it (flag ST_ASLEEP). Instants are device seconds (`t`), 0: none.
 * An 8-byte value (a logger that never slept) is read with every slot 0.
 */
const KEY = "st"
const VERSION = 3
const MIN_LEN = 8

// the wake slots (u32 each, from byte 8); signed ones are read back with `| 0`
/** the instant the logger meant to wake at */
export const W_WAKE = 0
/** the next sample's instant */
export const W_SAMPLE = 1
/** uploads: the last that got through, the retry planned (0: none), the back-off ms, no radio before */
export const W_UP_SINCE = 2
export const W_UP_RETRY = 3
export const W_UP_BACKOFF = 4
export const W_UP_QUIET = 5
/** the next GNSS fix attempt */
export const W_GNSS = 6
/** the last time record (0: none this run), its UTC - t*1000 offset (ms, signed) and its first seq + 1 */
export const W_ANCHOR = 7
export const W_ANCHOR_OFF = 8
export const W_ANCHOR_FROM = 9
/** W_FLAGS bits */
export const W_FLAGS = 10
export const WF_URGENT = 0x01
export const WF_OUT_OF_BAND = 0x02
export const WF_MOVING = 0x04
export const WF_IN_STOP = 0x08
/** the last sample had no reading (the converter did not answer or lost its configuration) */
export const WF_SENSOR_DOWN = 0x10
/** the battery monitor's last 3 readings (mV) and its last battery record */
export const W_BAT = 11
export const W_BAT_AT = 14
/** GNSS: the last recorded position (instant, lat, lon 1e-7 deg) and the slow run a stop is made of */
export const W_FIX_AT = 15
export const W_FIX_LAT = 16
export const W_FIX_LON = 17
export const W_SLOW_AT = 18
export const W_SLOW_LAT = 19
export const W_SLOW_LON = 20
/**
 * The log's next seq when the logger went to sleep, plus 1 (0: not saved), and the device time it
 * went to sleep at: a wake that finds the same next seq knows the log as the sleep left it (nothing
 * appended since: no record half-written, no seal without its key step) and skips the boot's checks.
 */
export const W_SEQ = 21
export const W_SLEPT = 22
const SLOTS = 23

/** st flags */
export const ST_RTC_SET = 0x01
/** the watchdog reset the logger: the next boot record says so (reason watchdog) */
export const ST_WATCHDOG = 0x02
/** the logger is in (or came out of) a deep sleep the wake slots describe */
export const ST_ASLEEP = 0x04
/** longest an upload batch or a GNSS step may take before the watchdog resets (a cellular send: 3 min connect + 10 min ack) */
export const STEP_MAX = 20 * 60_000

export class WakeState {
    flags = 0
    /** boot counter */
    boot = 0
    /** the battery level the logger was in (devs/app/battery.ts): a boot goes on at it */
    battery = 0
    /** read from flash (load() found a state) */
    loaded = false
    /** the wake slots (W_*) */
    readonly w: number[] = []
    private saved = ""

    constructor() {
        for (let i = 0; i < SLOTS; i++) this.w.push(0)
    }

    /** The state of the last run; false when there is none (a logger that never ran). */
    async load(): Promise<boolean> {
        const b = await kvGet(KEY)
        if (!b || b[0] !== VERSION || b.length < MIN_LEN) return false
        this.flags = b[1]
        this.battery = b[2]
        this.boot = b.getAt(4, "u32")
        for (let i = 0; i < SLOTS && 12 + 4 * i <= b.length; i++) this.w[i] = b.getAt(8 + 4 * i, "u32")
        this.saved = b.toString("hex")
        this.loaded = true
        return true
    }

    /** Write the state if it changed since it was loaded (or last saved). */
    async save(): Promise<void> {
        const b = Buffer.alloc(MIN_LEN + 4 * SLOTS)
        b[0] = VERSION
        b[1] = this.flags
        b[2] = this.battery
        b.setAt(4, "u32", this.boot)
        for (let i = 0; i < SLOTS; i++) b.setAt(8 + 4 * i, "u32", this.w[i] >>> 0)
        const hex = b.toString("hex")
        if (hex === this.saved) return
        await kvSet(KEY, b)
        this.saved = hex
    }

    has(flag: number): boolean {
        return (this.flags & flag) !== 0
    }

    set(flag: number, on: boolean) {
        this.flags = on ? this.flags | flag : this.flags & ~flag
    }
}
