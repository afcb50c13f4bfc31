import { kvGet, kvSet } from "../flash/kv"
import { bufEq } from "../chain/chain"

/**
 * What the logger carries from one wake to the next besides the log itself (docs/format.md 5.6): the
 * settings value `st`, read at every wake and written only when something in it changed. Every
 * field has one owner (the part of the firmware that writes it).
 */
const KEY = "st"
const VERSION = 3
export const STATE_LEN = 128
const NONE = 0xffffffff

/** st flags */
export const ST_RTC_SET = 0x01
export const ST_IN_BAND = 0x02
export const ST_IN_FLIGHT = 0x04
export const ST_FINAL_DONE = 0x08
export const ST_MOVING = 0x10
export const ST_IN_STOP = 0x20

export class WakeState {
    flags = ST_IN_BAND
    /** boot counter */
    boot = 0
    /** first 8 bytes of the configuration hash in force */
    cfgHash: Buffer = Buffer.alloc(8)
    /** device time the logger went to standby until (its next wake) */
    sleepUntil = 0
    /** watchdog resets seen (the `wd` counter when it was last recorded) */
    wdSeen = 0
    // uploads
    nextUpload = 0
    /** back-off exponent after failed uploads (0: none) */
    backoff = 0
    /** the server's last acknowledged seq (NONE: nothing yet), from any authenticated ack */
    serverSeq = NONE
    /** nonce of the last batch sent, and of the one before (a late cellular ack may answer it) */
    nonce = 0
    prevNonce = 0
    /** a batch queued on the modem: last seq, device time it was queued */
    flightLast = 0
    flightAt = 0
    // time
    /** device time of the last time record */
    anchorAt = 0
    // battery
    battMv = 0
    battLevel = 0
    battAt = 0
    // GNSS
    nextFix = 0
    slowSince = NONE
    slowLat = 0
    slowLon = 0
    recLat = 0
    recLon = 0
    recAt = NONE
    // alarms (kept by the alarm engine)
    alarm: Buffer = Buffer.alloc(16)

    private loaded: Buffer = undefined

    /** The state at this wake; false when there is none (a logger that never ran). */
    async load(): Promise<boolean> {
        const b = await kvGet(KEY)
        if (!b || b[0] !== VERSION || b.length !== STATE_LEN) return false
        this.loaded = b
        this.flags = b[1]
        this.boot = b.getAt(4, "u32")
        this.cfgHash = b.slice(8, 16)
        this.sleepUntil = b.getAt(16, "u32")
        this.wdSeen = b.getAt(20, "u32")
        this.nextUpload = b.getAt(24, "u32")
        this.backoff = b[28]
        this.battLevel = b[29]
        this.battMv = b.getAt(30, "u16")
        this.serverSeq = b.getAt(32, "u32")
        this.nonce = b.getAt(36, "u32")
        this.prevNonce = b.getAt(40, "u32")
        this.flightLast = b.getAt(44, "u32")
        this.flightAt = b.getAt(48, "u32")
        this.anchorAt = b.getAt(52, "u32")
        this.battAt = b.getAt(56, "u32")
        this.nextFix = b.getAt(60, "u32")
        this.slowSince = b.getAt(64, "u32")
        this.slowLat = b.getAt(68, "i32")
        this.slowLon = b.getAt(72, "i32")
        this.recLat = b.getAt(76, "i32")
        this.recLon = b.getAt(80, "i32")
        this.recAt = b.getAt(84, "u32")
        this.alarm = b.slice(88, 104)
        return true
    }

    encode(): Buffer {
        const b = Buffer.alloc(STATE_LEN)
        b[0] = VERSION
        b[1] = this.flags
        b.setAt(4, "u32", this.boot)
        b.blitAt(8, this.cfgHash, 0, 8)
        b.setAt(16, "u32", this.sleepUntil >>> 0)
        b.setAt(20, "u32", this.wdSeen)
        b.setAt(24, "u32", this.nextUpload >>> 0)
        b[28] = this.backoff
        b[29] = this.battLevel
        b.setAt(30, "u16", this.battMv)
        b.setAt(32, "u32", this.serverSeq)
        b.setAt(36, "u32", this.nonce >>> 0)
        b.setAt(40, "u32", this.prevNonce >>> 0)
        b.setAt(44, "u32", this.flightLast >>> 0)
        b.setAt(48, "u32", this.flightAt >>> 0)
        b.setAt(52, "u32", this.anchorAt >>> 0)
        b.setAt(56, "u32", this.battAt >>> 0)
        b.setAt(60, "u32", this.nextFix >>> 0)
        b.setAt(64, "u32", this.slowSince >>> 0)
        b.setAt(68, "i32", this.slowLat)
        b.setAt(72, "i32", this.slowLon)
        b.setAt(76, "i32", this.recLat)
        b.setAt(80, "i32", this.recLon)
        b.setAt(84, "u32", this.recAt >>> 0)
        b.blitAt(88, this.alarm, 0, 16)
        return b
    }

    /** Write the state if it changed since it was loaded (or last saved). */
    async save(): Promise<void> {
        const b = this.encode()
        if (this.loaded && bufEq(b, this.loaded)) return
        await kvSet(KEY, b)
        this.loaded = b
    }

    has(flag: number): boolean {
        return (this.flags & flag) !== 0
    }

    set(flag: number, on: boolean) {
        this.flags = on ? this.flags | flag : this.flags & ~flag
    }
}
