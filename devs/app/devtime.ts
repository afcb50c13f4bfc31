import { Clock, NO_TIME } from "../hal/clock"
import { Rv3028 } from "../sensor/rv3028"
import { BOOT_RTC_LOST, BOOT_RTC_BACKUP, BOOT_RTC_UNSET } from "../record/record"
import { STATUS_BSF } from "../sensor/rv3028"

/**
 * Device time `t` (docs/timebase.md, v3): whole seconds of the RV-3028's UNIX counter, which keeps
 * running through sleeps and power cuts on its backup supply. Read at boot and at every sample;
 * between reads it is extrapolated with the CPU clock. Without a working clock chip `t` is seconds
 * since boot and the boot record says so (UNSET): records are then placed as in v2, by this boot's
 * time records.
 */
export class DeviceTime {
    /** BOOT_RTC_* flags as found at boot */
    bootFlags = BOOT_RTC_UNSET
    /** the counter holds UTC (set by this logger since the last loss) */
    trusted = false
    private base = 0
    private at = 0
    /** the run's own reading (its start, or the last set): kept instants convert with it both ways */
    private runBase = 0
    private runAt = 0

    constructor(
        readonly clock: Clock,
        readonly rtc: Rv3028,
    ) {}

    /** CPU ms of this run's first reading of the counter */
    firstReadAt = 0

    /** Configure the chip and take the boot reading; never throws. */
    async start(trustedBefore: boolean): Promise<void> {
        await this.firstRead(trustedBefore)
        this.runBase = this.base
        this.runAt = this.at
        this.firstReadAt = this.at
    }

    private async firstRead(trustedBefore: boolean): Promise<void> {
        this.base = 0
        this.at = this.clock.now()
        if (!this.rtc) return
        try {
            await this.rtc.configure()
            const r = await this.rtc.read()
            this.base = r.t
            this.at = this.clock.now()
            this.bootFlags = (r.lost() ? BOOT_RTC_LOST : 0) | (r.onBackup() ? BOOT_RTC_BACKUP : 0)
            // a counter this logger set earlier, not lost since, still holds UTC
            this.trusted = trustedBefore && !r.lost()
            if (!this.trusted) this.bootFlags |= BOOT_RTC_UNSET
            // the boot record states the flags: clear BSF so the next boot sees only new events
            // (PORF is cleared when the time is set)
            if (r.onBackup()) await this.rtc.clear(STATUS_BSF)
        } catch (e: any) {
            console.log("ct:rtc-fault " + e.message)
            this.bootFlags = BOOT_RTC_UNSET
            this.trusted = false
        }
    }

    /** `t` now, seconds */
    now(): number {
        return (this.base + Math.floor((this.clock.now() - this.at) / 1000)) >>> 0
    }

    /** device time `ms` of the CPU clock ago (a GNSS solution's instant) */
    atCpu(cpuMs: number): number {
        return (this.base + Math.floor((cpuMs - this.at) / 1000)) >>> 0
    }

    /**
     * A CPU instant as device seconds, to keep across a sleep. By the run's own reading, not the
     * latest: `unkeep(keep(x))` then gives back the same second however often it goes round (the
     * latest reading's phase differs from read to read, which would lose a second now and then).
     */
    keep(cpuMs: number): number {
        return this.runBase + Math.floor((cpuMs - this.runAt) / 1000)
    }

    /** `keep`, with NO_TIME kept as 0 (a wake slot's "none") */
    keepOrNone(cpuMs: number): number {
        return cpuMs === NO_TIME ? 0 : this.keep(cpuMs)
    }

    /** `unkeep`, with a slot's 0 read as NO_TIME */
    unkeepOrNone(t: number): number {
        return t ? this.unkeep(t) : NO_TIME
    }

    /** a kept instant back on this run's CPU clock */
    unkeep(t: number): number {
        return this.runAt + (t - this.runBase) * 1000
    }

    /** Re-read the counter (keeps extrapolation short); keeps the old reading on a bus error. */
    async sync(): Promise<void> {
        if (!this.rtc || !this.rtc.ok) return
        try {
            const r = await this.rtc.read()
            this.base = r.t
            this.at = this.clock.now()
            if (r.lost()) this.trusted = false
        } catch (e: any) {
            console.log("ct:rtc-fault " + e.message)
        }
    }

    /** a clock chip that answers: the time can be set */
    canSet(): boolean {
        return this.rtc !== undefined && this.rtc.ok
    }

    /** Set the counter to `utcMs` (rounded down to the second); false without a clock chip. */
    async set(utcMs: number): Promise<boolean> {
        if (!this.rtc || !this.rtc.ok) return false
        try {
            const s = Math.floor(utcMs / 1000)
            await this.rtc.setTime(s)
            this.base = s
            // the counter's next second starts a second from now (the model; on the chip within 1 s)
            this.at = this.clock.now()
            this.runBase = s
            this.runAt = this.at
            this.trusted = true
            return true
        } catch (e: any) {
            console.log("ct:rtc-fault " + e.message)
            return false
        }
    }
}
