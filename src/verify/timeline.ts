import { KIND, type LogRecord } from "../format/index.js"

/**
 * Place records in UTC (docs/timebase.md): records are ordered by seq; each boot's records carry
 * uptime (ms since that boot); time records of the same boot pin uptime to UTC. A record gets
 * UTC = anchor.utc + (uptime - anchor.uptime) from the nearest anchor of its boot, including
 * anchors recorded after it (records taken before the first fix get their time once it arrives).
 */
export interface Placed {
    seq: number
    boot: number
    utc: number | null
}

export function placeRecords(records: LogRecord[]): Placed[] {
    const out: Placed[] = []
    // split into boots: a boot record starts a new segment
    let boot = 0
    const segs: LogRecord[][] = []
    let cur: LogRecord[] = []
    const bootOf = new Map<number, number>()
    for (const r of records) {
        if (r.kind === KIND.boot && "boot" in r) {
            if (cur.length) segs.push(cur)
            cur = []
            boot = r.boot
        }
        bootOf.set(r.seq, boot)
        cur.push(r)
    }
    if (cur.length) segs.push(cur)
    for (const seg of segs) {
        const anchors = seg.filter(r => r.kind === KIND.time && "utc" in r) as { uptime: number; utc: number }[]
        for (const r of seg) {
            let best: { uptime: number; utc: number } | undefined
            for (const a of anchors) if (!best || Math.abs(a.uptime - r.uptime) < Math.abs(best.uptime - r.uptime)) best = a
            out.push({ seq: r.seq, boot: bootOf.get(r.seq) ?? 0, utc: best ? best.utc + (r.uptime - best.uptime) : null })
        }
    }
    return out
}
