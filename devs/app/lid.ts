import { Rv3028, EVENT_EHL, EVENT_TSR } from "../sensor/rv3028"
import { lidRecord, LID_UNWATCHED } from "../record/record"

/** What the lid needs of the logger (devs/app/logger.ts). */
export interface LidLog {
    add(make: (seq: number) => Buffer): Promise<number>
    readonly rules?: { lid(t: number, first: number, openEdge: boolean, count: number, open: boolean): Promise<void> }
}

/**
 * The shipper's lid (docs/format.md 2.5; hardware/README.md, v2): the Hall switch drives the clock's
 * event input, which counts and time-stamps the edges of one kind, and the clock's INT resets the
 * ESP32 through EN at such an edge while it sleeps (DeviceScript's standby wakes on its timer only):
 * an opening or a closing wakes the logger. At every start, sample and sleep the logger reads what
 * the clock saw and the lid's level; anything new is a lid record, then the clock watches for the
 * opposite of what the lid is now (a closed lid for its opening, an open one for its closing).
 */
export class LidWatch {
    /** device second of the last look (a sample right after a wake's start does not look again) */
    private lookedAt = -1

    constructor(
        readonly rtc: Rv3028,
        readonly isOpen: () => Promise<boolean>,
    ) {}

    /** Never throws: a clock that does not answer leaves the lid for the next look (said on the console). */
    async check(lg: LidLog, t: number) {
        if (this.lookedAt >= 0 && t - this.lookedAt < 5) return
        this.lookedAt = t
        try {
            const e = await this.rtc.lidEvents()
            const open = await this.isOpen()
            // an unwatched clock (first start, or it lost all power): as if the logger believed the lid closed
            const openEdge = e.armed ? e.openEdge : true
            // nothing new: watched, no edge, the lid as the last record left it (the interrupt is for sleeps only)
            if (e.armed && !e.count && open !== openEdge) {
                if (e.irq) await this.rtc.lidSet(-1, false)
                return
            }
            const first = e.count ? t - e.agoS : 0
            // recorded before the clock is re-armed: a power cut between them repeats the edges, never loses them
            await lg.add(seq => lidRecord(seq, t, first, openEdge, e.count, open, e.armed ? 0 : LID_UNWATCHED))
            await this.rtc.lidSet((open ? 0 : EVENT_EHL) | EVENT_TSR, false)
            console.log(`ct:lid t=${t} open=${open ? 1 : 0} edge=${openEdge ? 1 : 0} count=${e.count} first=${first}`)
            if (lg.rules) await lg.rules.lid(t, first, openEdge, e.count, open)
        } catch (err) {
            console.log("ct:lid-error " + err)
        }
    }

    /** Right before a deep sleep (its state saved): the next edge wakes the logger. */
    async sleep() {
        try {
            await this.rtc.lidSet(-1, true)
        } catch (err) {
            console.log("ct:lid-error " + err)
        }
    }
}
