import { kvGet, kvSet } from "../flash/kv"

/**
 * What the logger carries from one run to the next besides the log itself (docs/format.md 5.6): the
 * settings value `st`, written only when something in it changed.
 *   st = version u8 (3) | flags u8 | battery level u8 | reserved u8 | boot u32
 * The duty-cycled firmware (issue 10) extends it with its schedule, upload, GNSS and alarm state; a
 * longer value with the same version keeps these fields where they are.
 */
const KEY = "st"
const VERSION = 3
const MIN_LEN = 8

/** st flags */
export const ST_RTC_SET = 0x01
/** the watchdog reset the logger: the next boot record says so (reason watchdog) */
export const ST_WATCHDOG = 0x02
/** longest an upload batch or a GNSS step may take before the watchdog resets (a cellular send: 3 min connect + 10 min ack) */
export const STEP_MAX = 20 * 60_000

export class WakeState {
    flags = 0
    /** boot counter */
    boot = 0
    /** the battery level the logger was in (devs/app/battery.ts): a boot goes on at it */
    battery = 0
    private saved = ""

    /** The state of the last run; false when there is none (a logger that never ran). */
    async load(): Promise<boolean> {
        const b = await kvGet(KEY)
        if (!b || b[0] !== VERSION || b.length < MIN_LEN) return false
        this.flags = b[1]
        this.battery = b[2]
        this.boot = b.getAt(4, "u32")
        this.saved = b.toString("hex")
        return true
    }

    /** Write the state if it changed since it was loaded (or last saved). */
    async save(): Promise<void> {
        const b = Buffer.alloc(MIN_LEN)
        b[0] = VERSION
        b[1] = this.flags
        b[2] = this.battery
        b.setAt(4, "u32", this.boot)
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
