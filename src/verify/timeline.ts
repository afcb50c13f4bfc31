import { BOOT_RTC, KIND, TIME_FLAG, type BootRecord, type LogRecord, type TimeRecord } from "../format/index.js"

/**
 * Place records in UTC (docs/timebase.md, section "v3"). Every record carries `t`, seconds on the
 * logger's real-time clock (RV-3028), which keeps counting through standby and, on its backup
 * supply, through power cuts and boots. Time records pin `t` to UTC: offset = utc - t * 1000.
 *
 * - A clock run is a stretch of records that read one uninterrupted counter. A new run starts at a
 *   boot record whose `rtc` flags say `lost` or `unset` (the counter restarted, or nobody knows what
 *   it counts), and right after a time record with the SET flag (the counter was set to its utc:
 *   the SET record itself still read the old counter).
 * - A record takes the offset of the nearest time record at or before it in its run, else of the
 *   first one after it in the run. After a SET record the new run starts with the set value as its
 *   anchor (t = floor(utc / 1000) at that utc).
 * - A boot without `lost`/`unset` does not start a run: the mapping continues across it, so the
 *   records of a boot before its first time fix are placed (v2 could not).
 * - A run without any anchor is unplaced (utc null).
 *
 * Within a run `t` never goes backwards (steps are signed mod 2^32); a backwards step is a finding.
 * Between two time records of one run the clock's rate is checked against MAX_DRIFT_PPM.
 */
export interface Placed {
    seq: number
    boot: number
    /** index of the clock run (0, 1, ...) */
    run: number
    utc: number | null
}

/** Something about the device's time the verifier should report. */
export interface TimeFinding {
    seq: number
    kind: "time-backwards" | "time-drift"
    detail: string
}

/**
 * What the verifier accepts as the clock's rate error between two time records of one run. The
 * RV-3028-C7 is calibrated to +-1 ppm at 25 C but not temperature compensated (a tuning-fork
 * crystal typically loses about 0.035 ppm/C^2 away from 25 C: about -14 ppm at 5 C, -70 ppm at
 * -20 C, -250 ppm at -60 C; docs/timebase.md), so the bound is generous; the anchors' own error is
 * allowed on top (ANCHOR_SLACK_MS).
 */
export const MAX_DRIFT_PPM = 500
/** seconds resolution of `t` plus a GNSS or network time's own error */
export const ANCHOR_SLACK_MS = 2000

/** signed difference a - b of two u32 device times */
export function tDiff(a: number, b: number): number {
    return (a - b) | 0
}

interface Anchor {
    idx: number
    t: number
    utc: number
}

export interface Timeline {
    placed: Placed[]
    findings: TimeFinding[]
    /**
     * UTC of device time `t` as read in the run of record `seq` (e.g. an evicted summary's tFirst),
     * with that record's anchor; null when the run has none.
     */
    utcAt(seq: number, t: number): number | null
}

export function buildTimeline(records: LogRecord[]): Timeline {
    const placed: Placed[] = []
    const findings: TimeFinding[] = []
    // 1. runs, and each record's run and boot
    const runOf: number[] = []
    const runAnchors: Anchor[][] = [[]]
    let run = 0
    let boot = 0
    let startNext = false
    let prevT: number | null = null
    let prevSeq = -1
    records.forEach((r, i) => {
        const isBoot = r.kind === KIND.boot && "rtc" in r
        const isTime = r.kind === KIND.time && "utc" in r
        if (isBoot) {
            const b = r as BootRecord
            boot = b.boot
            if (b.rtc & (BOOT_RTC.lost | BOOT_RTC.unset) && i > 0) startNext = true
        }
        if (startNext) {
            run++
            runAnchors.push([])
            prevT = null
            startNext = false
        }
        // a rule alarm's `t` is the rule's instant, which may precede what noticed it (docs/format.md 2)
        const ruleInstant = r.kind === KIND.ruleAlarm
        if (prevT !== null && !ruleInstant && tDiff(r.t, prevT) < 0) {
            findings.push({
                seq: r.seq,
                kind: "time-backwards",
                detail: `device time goes back ${-tDiff(r.t, prevT)} s from record ${prevSeq} to record ${r.seq} without a clock reset or a SET time record`,
            })
        }
        runOf.push(run)
        placed.push({ seq: r.seq, boot, run, utc: null })
        if (!ruleInstant) {
            prevT = r.t
            prevSeq = r.seq
        }
        if (isTime) {
            const tr = r as TimeRecord
            runAnchors[run].push({ idx: i, t: tr.t, utc: tr.utc })
            if (tr.flags & TIME_FLAG.set) {
                // the counter now reads floor(utc / 1000): a new run anchored at the set value
                run++
                runAnchors.push([{ idx: i, t: Math.floor(tr.utc / 1000) % 2 ** 32, utc: tr.utc }])
                prevT = Math.floor(tr.utc / 1000) % 2 ** 32
            }
        }
    })
    // 2. the anchor of each record: nearest at or before it in its run, else the first after it
    const anchorOf: (Anchor | null)[] = []
    let lastRun = -1
    let k = 0 // index into the run's anchors of the next anchor not yet passed
    let cur: Anchor | null = null
    records.forEach((_r, i) => {
        const ru = runOf[i]
        const as = runAnchors[ru]
        if (ru !== lastRun) {
            lastRun = ru
            k = 0
            cur = null
        }
        while (k < as.length && as[k].idx <= i) cur = as[k++]
        // a SET run's own anchor has the SET record's idx: it precedes every record of the run
        anchorOf.push(cur ?? as[0] ?? null)
    })
    placed.forEach((p, i) => {
        const a = anchorOf[i]
        if (a) p.utc = a.utc + tDiff(records[i].t, a.t) * 1000
    })
    // 3. the rate between consecutive anchors of a run
    for (const as of runAnchors) {
        for (let j = 1; j < as.length; j++) {
            const a = as[j - 1]
            const b = as[j]
            const dtMs = tDiff(b.t, a.t) * 1000
            const err = b.utc - a.utc - dtMs
            if (Math.abs(err) > ANCHOR_SLACK_MS + (Math.abs(dtMs) * MAX_DRIFT_PPM) / 1e6) {
                findings.push({
                    seq: records[b.idx].seq,
                    kind: "time-drift",
                    detail: `the clock ran ${err > 0 ? "slow" : "fast"} by ${Math.abs(err) / 1000} s over ${Math.round(dtMs / 1000)} s between time records ${records[a.idx].seq} and ${records[b.idx].seq}: more than ${MAX_DRIFT_PPM} ppm`,
                })
            }
        }
    }
    // built on the first utcAt only (the verifier's clock phase never asks)
    let idxOf: Map<number, number> | null = null
    return {
        placed,
        findings,
        utcAt(seq, t) {
            idxOf ??= new Map(records.map((r, i) => [r.seq, i]))
            const i = idxOf.get(seq)
            const a = i === undefined ? null : anchorOf[i]
            return a ? a.utc + tDiff(t, a.t) * 1000 : null
        },
    }
}

export function placeRecords(records: LogRecord[]): Placed[] {
    return buildTimeline(records).placed
}
