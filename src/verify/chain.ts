import { genesisHead, nextHead } from "../format/index.js"

export interface ChainEntry {
    seq: number
    bytes: Buffer
    /** head as stated by whoever held the record (server DB); checked when present */
    head?: Buffer
}

export interface ChainVerdict {
    ok: boolean
    records: number
    lastSeq: number | null
    head: Buffer
    /** first sequence number where something is wrong */
    firstBad?: number
    reason?: string
}

/**
 * Recompute the chain from the device's genesis head over records in seq order: sequence numbers
 * must run 0, 1, 2, ... without holes and every stated head must match the recomputed one. A hole
 * is allowed only inside `evicted` (ranges a verifier found summarized and sealed), where the chain
 * resumes from a head `stated` for the seq before the next record (the flash's base head).
 */
export function verifyChain(
    devid: Buffer | string,
    entries: ChainEntry[],
    evicted: SeqRange[] = [],
    stated: { seq: number; head: Buffer }[] = [],
): ChainVerdict {
    let head = genesisHead(devid)
    let expect = 0
    for (const e of entries) {
        const bad = (reason: string): ChainVerdict => ({ ok: false, records: expect, lastSeq: expect - 1, head, firstBad: e.seq, reason })
        if (e.bytes.length < 6 || e.bytes.readUInt32LE(0) !== e.seq) return bad(`record bytes do not carry seq ${e.seq}`)
        const before = e.seq > expect ? stated.find(c => c.seq === e.seq - 1) : undefined
        if (before && covered(evicted, expect, e.seq - 1)) {
            // records evicted unsent, summarized and sealed (the verifier's word): the chain resumes
            // from the head the flash states before the first record after them
            head = before.head
            expect = e.seq
        }
        if (e.seq > expect) return { ...bad(`records ${expect}..${e.seq - 1} are missing`), firstBad: expect }
        if (e.seq < expect) return bad(`seq ${e.seq} repeated or out of order`)
        head = nextHead(head, e.bytes)
        if (e.head && !e.head.equals(head)) return bad(`stored head at seq ${e.seq} does not match the recomputed chain`)
        expect++
    }
    return { ok: true, records: expect, lastSeq: expect ? expect - 1 : null, head }
}

/** seqs `first`..`last`, inclusive */
export interface SeqRange {
    first: number
    last: number
}

/** every seq of `from`..`to` lies in one of `ranges` */
export function covered(ranges: SeqRange[], from: number, to: number): boolean {
    let next = from
    for (const r of [...ranges].sort((a, b) => a.first - b.first)) {
        if (r.first > next) break
        next = Math.max(next, r.last + 1)
        if (next > to) return true
    }
    return next > to
}

/**
 * Merge the server's copy and the device's remaining log (both in seq order). Where both hold a
 * record they must be byte-identical; the result is the full log as far as anyone holds it.
 */
export function mergeLogs(server: ChainEntry[], device: ChainEntry[]): { merged: ChainEntry[]; conflicts: number[] } {
    const bySeq = new Map<number, ChainEntry>()
    for (const e of server) bySeq.set(e.seq, e)
    const conflicts: number[] = []
    for (const e of device) {
        const s = bySeq.get(e.seq)
        if (s && !s.bytes.equals(e.bytes)) conflicts.push(e.seq)
        else if (!s) bySeq.set(e.seq, e)
    }
    return { merged: [...bySeq.values()].sort((a, b) => a.seq - b.seq), conflicts }
}
