// Segments: where a PREV batch started a device's chain again after a gap (docs/format.md 6), and
// whether the device's own `evicted` records explain that gap. Rules over the store's primitives,
// the same for every store.
import { FormatError, KIND, decodeRecord, type EvictedRecord } from "../format/index.js"
import type { DeviceTx, SegmentRow } from "./store/store.js"

interface Range {
    seq: number
    first: number
    last: number
}

/** The ranges the stored evicted records name (only ranges before their own seq count). */
async function evictedRanges(tx: DeviceTx): Promise<Range[]> {
    const ranges: Range[] = []
    for (const row of await tx.evictedRecords()) {
        let r: EvictedRecord
        try {
            r = decodeRecord(row.bytes) as EvictedRecord
        } catch (e) {
            if (e instanceof FormatError) continue // stored records were decoded on arrival; a damaged one explains nothing
            throw e
        }
        if (r.kind === KIND.evicted && r.first <= r.last && r.last < r.seq) ranges.push({ seq: r.seq, first: r.first, last: r.last })
    }
    return ranges
}

/**
 * Re-evaluates every segment of a device that is not joined yet: its gap is the seqs between the
 * highest stored record below it and its start. A gap that records have filled is `joined`; one
 * that stored evicted records cover seq for seq (together, one per evicted block) is `explained`;
 * anything else stays `unexplained`. Runs inside the transaction that stored the records.
 */
export async function refreshSegments(tx: DeviceTx): Promise<SegmentRow[]> {
    const all = await tx.segments()
    // loops, not filter/find with an arrow: these run for every batch, and the TypeScript loader
    // (tsx, keepNames) names each closure it creates with Object.defineProperty (about 0.3 us)
    const open: SegmentRow[] = []
    for (const s of all) if (s.status !== "joined") open.push(s)
    if (open.length === 0) return all
    const ranges = await evictedRanges(tx)
    for (const s of open) {
        s.gapFirst = (await tx.maxStoredBelow(s.startSeq)) + 1
        s.gapLast = s.startSeq - 1
        if (s.gapFirst > s.gapLast) {
            Object.assign(s, { status: "joined", explainedBy: [] })
        } else {
            // walk the gap: each step takes the evicted range that reaches furthest from the next missing seq
            let next = s.gapFirst
            const used: number[] = []
            while (next <= s.gapLast) {
                let best: Range | null = null
                for (const r of ranges) if (r.first <= next && r.last >= next && (!best || r.last > best.last)) best = r
                if (!best) break
                used.push(best.seq)
                next = best.last + 1
            }
            const explained = next > s.gapLast
            Object.assign(s, { status: explained ? "explained" : "unexplained", explainedBy: explained ? used : [] })
        }
        await tx.updateSegment(s)
    }
    return all
}

/** Segments whose gap no evicted record explains yet: what a verifier must report. */
export function unexplained(segments: SegmentRow[]): SegmentRow[] {
    const out: SegmentRow[] = []
    for (const s of segments) if (s.status === "unexplained") out.push(s)
    return out
}

/**
 * The end of the contiguous stored run that holds `seq` (a stored seq): the record before the
 * next gap, or the last stored record.
 */
export function runEnd(segments: SegmentRow[], lastStoredSeq: number, seq: number): number {
    for (const s of segments) if (s.status !== "joined" && s.startSeq > seq) return s.gapFirst - 1
    return lastStoredSeq
}
