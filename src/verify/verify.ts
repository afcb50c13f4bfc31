// The independent verifier (docs/verify.md), written from docs/format.md: given a device's log as
// some holder keeps it (the ingest server's database, or the device's own flash export), its
// identity and initial key k0, it checks sequence continuity, the hash chain from genesis, every
// epoch seal under the forward-secure key of its epoch, boot records, acknowledged checkpoints,
// eviction summaries and (with the location key) every encrypted position, and returns one verdict
// with the first offending sequence number.
import {
    KIND,
    decodeRecord,
    decryptLoc,
    devidBytes,
    devidHex,
    evolveKey,
    genesisHead,
    macEquals,
    nextHead,
    sealMac,
    type BootRecord,
    type EvictedRecord,
    type FixRecord,
    type LogRecord,
    type SampleRecord,
    type SealRecord,
    type StopRecord,
} from "../format/index.js"
import { buildTimeline, type TimeFinding } from "./timeline.js"
import { checkDeviceAlarms, type DeviceAlarmCheck } from "../alarms/device.js"

/** What can be wrong with a log. */
export type ProblemKind =
    /** a record's bytes differ from what was chained, stored or acknowledged */
    | "modified"
    /** sequence numbers missing that no `evicted` record accounts for */
    | "deleted"
    /** a record found after a record with a higher seq */
    | "reordered"
    /** records found a second time, byte for byte (a replayed batch or block) */
    | "replayed"
    /** two different records for one seq in the same log */
    | "conflict"
    /** the log ends before a seq the server acknowledged */
    | "truncated"
    /** the device holds another history than the one the server acknowledged (restored or forked flash) */
    | "rollback"
    /** records of another device */
    | "foreign"
    /** a seal whose MAC, epoch number or count does not verify */
    | "bad-seal"
    /** a boot record out of place: counter, `prev` or missing seal before it */
    | "bad-boot"
    /** an encrypted position that does not authenticate under the location key */
    | "bad-loc"
    /** an `evicted` summary that contradicts records still held */
    | "bad-summary"
    /** bytes that are not a record */
    | "malformed"
    /** the server's stored epoch key is not the one the escrowed k0 evolves to */
    | "bad-key"

/** Problems that leave the log incomplete rather than altered. Every other kind means tampered. */
export const INCOMPLETE_KINDS: readonly ProblemKind[] = ["truncated"]

export interface Problem {
    /** the first sequence number that may be at fault */
    seq: number
    /** when the fault is known only to lie in a range: its last seq (inclusive) */
    last?: number
    kind: ProblemKind
    detail: string
}

/** An `evicted` record: records removed unsent from a full store, and what they held. */
export interface EvictedRange {
    /** seq of the evicted record */
    seq: number
    first: number
    last: number
    samples: number
    tFirst: number
    tLast: number
    minTc: number
    maxTc: number
    outMin: number
    srOr: number
    sflagsOr: number
    /** the evicted record is bound by a seal that verifies */
    sealed: boolean
}

export interface Verdict {
    ok: boolean
    status: "ok" | "tampered" | "incomplete"
    /** the first offending sequence number (smallest `seq` of the problems) */
    firstBad?: number
    /** one line: kind and detail of the problem at firstBad */
    reason?: string
    devid: string
    /** who held the log: the ingest server or the device's flash */
    source: "server" | "device"
    problems: Problem[]
    /** problems not listed (past maxProblems) */
    problemsOmitted: number
    /** facts worth knowing that are not problems (evictions explained, boots without records, ...) */
    notes: string[]
    /** distinct records held */
    records: number
    firstSeq: number | null
    lastSeq: number | null
    /** head after lastSeq as recomputed, hex (null when it could not be computed) */
    head: string | null
    /** how the chain starts: at genesis (seq 0), at a head the holder states, or nowhere known */
    start: "genesis" | "anchored" | "none"
    /** seq of the last seal that verifies */
    sealedThrough: number | null
    /** seals that verify */
    epochs: number
    /** epoch of the last seal that verifies */
    lastEpoch: number | null
    /** records after the last seal: authenticated only by the batch MAC the server checked */
    unsealed: number
    /** boot counters of the boot records, in order */
    boots: number[]
    /** distinct acknowledged seqs given, those whose head the log reproduces, those before the log (freed), the highest */
    checkpoints: { given: number; matched: number; before: number; latest: number | null }
    evictedRanges: EvictedRange[]
    /** encrypted positions checked with the location key (null without it) */
    positions: { decrypted: number; failed: number } | null
    /**
     * The device's clock (docs/timebase.md): runs of the real-time clock, records no time record
     * places, and findings (t going backwards within a run, a rate past the RV-3028's bound between
     * two time records). Findings are the device's own statements, chained like the rest: they do
     * not make the log tampered, they say its times are not to be trusted there.
     */
    clock: { runs: number; unplaced: number; findings: TimeFinding[] }
    /** with `deviceBand`: the logger's alarm records against the band rule; a disagreement is a finding, not a chain problem */
    alarmCheck?: DeviceAlarmCheck
}

/** One record as its holder keeps it. */
export interface LogEntry {
    /** the seq the holder files it under (the record's own seq is in its bytes) */
    seq: number
    /** canonical bytes */
    bytes: Buffer
    /** head[seq] as the holder states it (the server's `records.head`) */
    head?: Buffer
}

/** A head the holder states without the record: `head[seq]`, e.g. a flash block's prev_head. */
export interface HeadClaim {
    seq: number
    head: Buffer
    what: string
}

/** An acknowledged checkpoint (docs/format.md 3.3): the server holds every record <= seq. */
export interface Checkpoint {
    seq: number
    head: Buffer
    boot: number
    epoch?: number
}

/** Another device, to recognise records spliced from it. */
export interface OtherDevice {
    devid: Buffer | string
    k0?: Buffer
    lockey?: Buffer | null
    /** its records (with the heads its holder stored), as a list or looked up by seq */
    records?: LogEntry[] | ((seq: number) => LogEntry | undefined)
}

/** What the device's flash says about itself (lgmeta, lgack), for a log read out of a device. */
export interface DeviceImage {
    boot: number
    ack?: { seq: number; head: Buffer; boot: number } | null
}

export interface VerifyInput {
    devid: Buffer | string
    k0: Buffer
    lockey?: Buffer | null
    /** the log in the order found */
    records: LogEntry[]
    /** "server" (default): the ingest database; "device": a flash export */
    source?: "server" | "device"
    /** heads the holder states without their record (block prev_heads, the device's lgack) */
    claims?: HeadClaim[]
    /** segments started by PREV batches: head[startSeq - 1] = prevHead, as the batch stated it */
    segments?: { startSeq: number; prevHead: Buffer }[]
    /** checkpoints the server acknowledged */
    checkpoints?: Checkpoint[]
    /** heads the server stored (for a device log: pinpoints where a forked history leaves the server's) */
    serverHeads?: { seq: number; head: Buffer }[]
    /** a device export's own state */
    image?: DeviceImage
    others?: OtherDevice[]
    /** problems the caller found while reading the log (e.g. a flash block that does not decode) */
    problems?: Problem[]
    /** list at most this many problems (default 100) */
    maxProblems?: number
    /** the band the logger was configured with: its alarm records are checked against the band rule (docs/alarms.md) */
    deviceBand?: { low: number; high: number }
}

/** Epochs beyond this are refused rather than computed (2^22 one-minute epochs are 8 years). */
export const MAX_EPOCH = 1 << 22

/** k[e] from k0, evolving forward from the last key computed. */
class EpochKeys {
    private e = 0
    private k: Buffer
    constructor(private readonly k0: Buffer) {
        this.k = k0
    }
    get(e: number): Buffer | null {
        if (!Number.isInteger(e) || e < 0 || e > MAX_EPOCH) return null
        if (e < this.e) {
            this.e = 0
            this.k = this.k0
        }
        while (this.e < e) this.k = evolveKey(this.k, ++this.e)
        return this.k
    }
}

interface Item {
    seq: number
    bytes: Buffer
    rec: LogRecord | null
}

interface Hole {
    first: number
    last: number
    /** index of the record after it */
    idx: number
}

/** A problem with bookkeeping the verdict does not show. */
interface Found extends Problem {
    /** a head disagreement with the server's checkpoints in a device log, classified at the end */
    pendingFork?: boolean
    /** how many further problems of the same cause were folded into this one */
    folded?: number
    /** for a pending fork: the seq where the log agreed with the server again (a fork never does) */
    rejoined?: number
}

function lookup(r: OtherDevice["records"]): { get(seq: number): LogEntry | undefined } {
    if (typeof r === "function") return { get: r }
    return new Map((r ?? []).map(e => [e.seq, e]))
}

const hex8 = (b: Buffer) => b.subarray(0, 8).toString("hex")
const range = (a: number, b: number) => (a === b ? `seq ${a}` : `seq ${a}..${b}`)
const recs = (a: number, b: number) => (a === b ? `record ${a} was` : `records ${a}..${b} were`)

/**
 * Verify a log. Never throws for bad data: everything wrong with the log is a problem in the
 * verdict. Throws RangeError only for a malformed devid or k0 (the caller's inputs, not the log's).
 */
export function verifyLog(input: VerifyInput): Verdict {
    const devid = devidBytes(input.devid)
    if (!Buffer.isBuffer(input.k0) || input.k0.length !== 32) throw new RangeError(`k0 must be 32 bytes, got ${input.k0?.length}`)
    const devidStr = devidHex(devid)
    const source = input.source ?? "server"
    const keys = new EpochKeys(input.k0)
    const problems: Found[] = []
    const notes: string[] = []
    const add = (p: Found): Found => {
        if (p.last !== undefined && p.last === p.seq) delete p.last
        problems.push(p)
        return p
    }

    for (const p of input.problems ?? []) add({ ...p })

    // ---- 1. order as found: replays, reorders, conflicting duplicates ----
    const bySeq = new Map<number, LogEntry>()
    let maxSeen = -1
    let lastFound = -1
    let replay: { from: number; to: number; after: number } | null = null
    let reorder: { from: number; to: number; after: number } | null = null
    const flushReorder = () => {
        if (!reorder) return
        add({
            seq: reorder.from,
            last: reorder.to,
            kind: "reordered",
            detail: `${range(reorder.from, reorder.to)} found after seq ${reorder.after}: records out of order`,
        })
        reorder = null
    }
    const flushReplay = () => {
        if (!replay) return
        add({
            seq: replay.from,
            last: replay.to,
            kind: "replayed",
            detail: `${range(replay.from, replay.to)} found a second time, byte for byte, after seq ${replay.after}: a replayed batch or block`,
        })
        replay = null
    }
    for (const e of input.records) {
        const seq = e.bytes.length >= 4 ? e.bytes.readUInt32LE(0) : e.seq
        const prev = bySeq.get(seq)
        if (prev) {
            flushReorder()
            if (prev.bytes.equals(e.bytes)) {
                if (replay && seq === replay.to + 1) replay.to = seq
                else {
                    flushReplay()
                    replay = { from: seq, to: seq, after: lastFound }
                }
            } else {
                flushReplay()
                add({ seq, kind: "conflict", detail: `two different records claim seq ${seq}` })
            }
            lastFound = seq
            continue
        }
        flushReplay()
        if (seq < maxSeen) {
            if (reorder && seq === reorder.to + 1) reorder.to = seq
            else {
                flushReorder()
                reorder = { from: seq, to: seq, after: maxSeen }
            }
        } else flushReorder()
        bySeq.set(seq, e)
        maxSeen = Math.max(maxSeen, seq)
        lastFound = seq
    }
    flushReplay()
    flushReorder()

    // heads stated by the holder (filed under the holder's seq). In the server's own database its
    // checkpoints are statements of the same holder; for a device log they are the server's word.
    const claims = new Map<number, HeadClaim[]>()
    const claim = (c: HeadClaim) => {
        const had = claims.get(c.seq)
        if (!had) claims.set(c.seq, [c])
        else if (!had.some(h => h.head.equals(c.head))) had.push(c)
    }
    const cps = input.checkpoints ?? []
    for (const e of input.records) if (e.head) claim({ seq: e.seq, head: e.head, what: "stored head" })
    for (const s of input.segments ?? [])
        if (s.startSeq > 0) claim({ seq: s.startSeq - 1, head: s.prevHead, what: "PREV segment prev_head" })
    for (const c of input.claims ?? []) claim(c)
    if (source === "server") for (const c of cps) claim({ seq: c.seq, head: c.head, what: "acknowledged checkpoint" })
    const genesisClaim = claims.get(-1)?.[0]
    if (genesisClaim && !genesisClaim.head.equals(genesisHead(devid))) {
        const whose = (input.others ?? []).find(o => genesisHead(o.devid).equals(genesisClaim.head))
        add({
            seq: 0,
            kind: whose ? "foreign" : "modified",
            detail: whose
                ? `the log starts from device ${devidHex(whose.devid)}'s genesis head (${genesisClaim.what})`
                : `the ${genesisClaim.what} before seq 0 is not this device's genesis head`,
        })
    }

    const refs = new Map<number, { head: Buffer; what: string }>()
    if (source === "device") {
        for (const h of input.serverHeads ?? []) refs.set(h.seq, { head: h.head, what: "the server's stored head" })
        for (const c of cps) {
            const had = refs.get(c.seq)
            if (had && !had.head.equals(c.head)) {
                add({
                    seq: c.seq,
                    kind: "conflict",
                    detail: `the server states two heads for seq ${c.seq} (${had.what} and an acknowledged checkpoint)`,
                })
            } else if (!had) refs.set(c.seq, { head: c.head, what: "acknowledged checkpoint" })
        }
    }

    // ---- 2. the log in seq order: chain, seals, boots, positions ----
    const items: Item[] = [...bySeq.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([seq, e]) => {
            let rec: LogRecord | null = null
            try {
                rec = decodeRecord(e.bytes)
            } catch (err) {
                add({ seq, kind: "malformed", detail: `not a record: ${(err as Error).message}` })
            }
            return { seq, bytes: e.bytes, rec }
        })

    const itemBySeq = new Map(items.map(x => [x.seq, x]))
    // the clock, over the records that decode, in seq order
    const timeline = buildTimeline(items.flatMap(x => (x.rec ? [x.rec] : [])))
    const clock = {
        runs: timeline.placed.length ? timeline.placed[timeline.placed.length - 1].run + 1 : 0,
        unplaced: timeline.placed.filter(p => p.utc === null).length,
        findings: timeline.findings,
    }
    const sealedOk: boolean[] = new Array(items.length).fill(false)
    const sealedAt = new Map<number, boolean>() // seal seq -> MAC verified
    const holes: Hole[] = []
    const evicted: EvictedRange[] = []
    const evictedIdx: number[] = []
    const boots: number[] = []
    const bootOf = new Map<number, number>()
    const positions = input.lockey ? { decrypted: 0, failed: 0 } : null

    let head: Buffer | null = genesisHead(devid) // head[expect - 1]
    let expect = 0
    let start: Verdict["start"] = "genesis"
    // the chain as the holder states it, kept from the first disagreement until a seal decides
    let alt: Buffer | null = null
    let altProblems: Found[] = [] // the disagreements since the stated chain left the recomputed one
    let lastConsistent = -1 // last seq where the holder's statements agree with the recomputed chain
    let lastProven = -1 // last seq authenticated (a verified seal, genesis, or in a device log a checkpoint)
    let lastRefMatch = -1 // last seq where the server's head agrees
    let refDiverged: Found | null = null
    let unsealedFrom = 0 // first index not yet covered by a verified seal
    let prevSeal: { seq: number; epoch: number } | null = null
    let prevSealKnown = true // false after a hole: the previous seal may lie in it
    let nextEpoch: number | null = 0
    let epochFloor = 0
    let segStartSeq = 0
    let sealFail: Found | null = null
    let sealedThrough: number | null = null
    let epochs = 0
    let lastEpoch: number | null = null
    let lastSealSeq: number | null = null
    let bootNow: number | null = null
    let bootKnown = true // false after a hole: boots may lie in it
    const cpSeqs = new Set(cps.map(c => c.seq))
    const cpHeads = new Map<number, Buffer[]>()
    for (const c of cps) cpHeads.set(c.seq, [...(cpHeads.get(c.seq) ?? []), c.head])
    const matchedCps = new Set<number>()

    const refMismatch = (s: number, what: string, from?: number) => {
        if (refDiverged) {
            refDiverged.folded = (refDiverged.folded ?? 0) + 1
            return
        }
        const lo = from ?? Math.max(lastRefMatch + 1, segStartSeq)
        if (source === "server") {
            refDiverged = add({
                seq: lo,
                last: s,
                kind: "modified",
                detail: `the log's head at seq ${s} differs from ${what}: ${recs(lo, s)} changed after the server acknowledged ${lo === s ? "it" : "them"}`,
            })
        } else {
            refDiverged = add({
                seq: lo,
                last: s,
                kind: "rollback",
                detail: `the device's head at seq ${s} differs from ${what}`,
                pendingFork: true,
            })
        }
    }

    for (let i = 0; i < items.length; i++) {
        const { seq: s, bytes, rec } = items[i]
        if (s !== expect) {
            // a hole (or a log that does not start at seq 0): resume at the head the holder states
            holes.push({ first: expect, last: s - 1, idx: i })
            const c = claims.get(s - 1)?.[0]
            const r = refs.get(s - 1)
            head = c?.head ?? r?.head ?? null
            if (i === 0) start = head ? "anchored" : "none"
            alt = null
            altProblems = []
            lastConsistent = lastProven = lastRefMatch = s - 1
            segStartSeq = s
            if (c && r) {
                if (c.head.equals(r.head)) refMatched(s - 1)
                else refMismatch(s - 1, r.what, s - 1)
            }
            unsealedFrom = i
            prevSeal = null
            prevSealKnown = false
            nextEpoch = null
            epochFloor = lastEpoch === null ? 0 : lastEpoch + 1
            bootKnown = false
            sealFail = null
            expect = s
        }

        if (s === 0 && rec && rec.kind !== KIND.boot)
            add({ seq: 0, kind: "bad-boot", detail: `the log does not start with a boot record (seq 0 is kind ${rec.kind})` })
        if (rec && rec.kind === KIND.seal && "mac" in rec) checkSeal(rec as SealRecord, i)
        if (rec && rec.kind === KIND.boot && "prev" in rec) checkBoot(rec as BootRecord, i)
        if (bootNow !== null) bootOf.set(s, bootNow)
        if (rec && rec.kind === KIND.evicted && "first" in rec) {
            const v = rec as EvictedRecord
            if (!(v.first <= v.last && v.last < s))
                add({ seq: s, kind: "malformed", detail: `evicted record names seq ${v.first}..${v.last}, not a range before it` })
            else {
                const { seq: _s, kind: _k, t: _t, ...sum } = v
                evicted.push({ seq: s, ...sum, sealed: false })
                evictedIdx.push(i)
            }
        }
        if (rec && (rec.kind === KIND.fix || rec.kind === KIND.stop) && "loc" in rec) checkLoc(rec as FixRecord | StopRecord)

        head = head ? nextHead(head, bytes) : null
        alt = alt ? nextHead(alt, bytes) : null

        const cs = claims.get(s) ?? []
        const lo = lastConsistent + 1
        if (cs.length && !head) {
            head = cs[0].head
            notes.push(`record ${s} is taken as stated (${cs[0].what}): nothing before it to chain from`)
        } else if (head) {
            for (const c of cs) {
                if (c.head.equals(head)) {
                    lastConsistent = s
                    alt = null
                    altProblems = []
                } else if (alt && c.head.equals(alt)) {
                    lastConsistent = s
                } else {
                    const p = add({
                        seq: Math.min(lo, s),
                        last: s,
                        kind: "modified",
                        detail:
                            lo >= s
                                ? `record ${s} does not hash to its ${c.what}`
                                : `the ${c.what} of seq ${s} disagrees with the chain: a record in ${range(lo, s)} was changed`,
                    })
                    alt = c.head
                    altProblems.push(p)
                    lastConsistent = s
                }
            }
        }

        if (source === "server" && head && cpHeads.get(s)?.every(h => h.equals(head!) || (alt !== null && h.equals(alt)))) matchedCps.add(s)
        const r = refs.get(s)
        if (r && head) {
            if (r.head.equals(head)) {
                refMatched(s)
                alt = null
                altProblems = []
            } else if (alt && r.head.equals(alt)) {
                refMatched(s)
                for (const q of altProblems) q.detail += `; ${r.what} at seq ${s} agrees with the stated heads, so the bytes were changed`
                head = alt
                alt = null
                altProblems = []
            } else refMismatch(s, r.what)
        }
        expect = s + 1
    }

    function refMatched(s: number) {
        if (cpSeqs.has(s)) matchedCps.add(s)
        lastRefMatch = s
        lastConsistent = s
        if (refDiverged) refDiverged.rejoined = s
        refDiverged = null
        if (source === "device") lastProven = Math.max(lastProven, s)
    }

    function checkSeal(seal: SealRecord, i: number) {
        const s = seal.seq
        const e = seal.epoch
        // numbering and count first: a seal that verifies but claims the wrong epoch or count does
        // not seal the epoch that is due (a captured later key can MAC any epoch number >= its own)
        const issues: string[] = []
        if (nextEpoch !== null && e !== nextEpoch)
            issues.push(`it claims epoch ${e} where epoch ${nextEpoch} is due (epochs are sealed 0, 1, 2, ... without gaps)`)
        else if (nextEpoch === null && e < epochFloor)
            issues.push(`it claims epoch ${e} after a seal of epoch ${epochFloor - 1}: epochs went back`)
        if (prevSealKnown) {
            const want = prevSeal ? s - prevSeal.seq - 1 : s
            if (seal.count !== want)
                issues.push(
                    `its count is ${seal.count}, but ${want} records follow ${prevSeal ? `the seal at seq ${prevSeal.seq}` : "seq 0"}`,
                )
        } else if (seal.count > s || s - seal.count - 1 >= segStartSeq) {
            issues.push(
                `its count ${seal.count} puts the previous seal at seq ${s - seal.count - 1}, which is ${s - seal.count - 1 < -1 ? "before seq 0" : "held and not a seal"}`,
            )
        }
        prevSeal = { seq: s, epoch: e }
        prevSealKnown = true
        nextEpoch = e + 1
        lastSealSeq = s
        let via: "chain" | "stated" | null = null
        const k = head && e <= s ? keys.get(e) : null
        if (head && !k) issues.push(`epoch ${e} is impossible at seq ${s} (each earlier epoch needs a seal record)`)
        if (head && k) {
            if (macEquals(sealMac(k, devid, e, s, head, seal.count), seal.mac)) via = "chain"
            else if (alt && macEquals(sealMac(k, devid, e, s, alt, seal.count), seal.mac)) via = "stated"
        }
        sealedAt.set(s, via !== null && !issues.length)
        if (!head) return // nothing to check the MAC over (after a hole with no stated head)
        if (via && !issues.length) {
            if (via === "stated") {
                head = alt
                for (const q of altProblems)
                    q.detail += `; the seal at seq ${s} verifies over the stated heads, so the bytes changed after the device sealed them`
            } else {
                for (const q of altProblems)
                    q.detail += `; the seal at seq ${s} verifies over the recomputed chain, so the stated head is what was changed`
            }
            alt = null
            altProblems = []
            for (let j = unsealedFrom; j <= i; j++) sealedOk[j] = true
            unsealedFrom = i + 1
            lastProven = s
            lastConsistent = s
            sealedThrough = s
            epochs++
            lastEpoch = e
            sealFail = null
            return
        }
        if (sealFail && !issues.length) {
            // every later seal binds the same altered history: one problem, counted
            sealFail.folded = (sealFail.folded ?? 0) + 1
            return
        }
        const lo = lastProven + 1
        const what = lo < s ? `records ${range(lo, s - 1)} are not authenticated` : "it authenticates nothing"
        const mac = via ? `its MAC verifies under k[${e}]` : `its MAC does not verify under k[${e}]`
        const p = add({
            seq: lo,
            last: s,
            kind: "bad-seal",
            detail: issues.length
                ? `the seal at seq ${s} is not the seal that is due: ${issues.join("; ")} (${mac}); ${what}`
                : `the seal of epoch ${e} at seq ${s} does not verify under k[${e}]: ${lo < s ? `a record in ${range(lo, s - 1)} or the seal itself` : "the seal"} is not what the device sealed`,
        })
        sealFail ??= p
    }

    function checkBoot(b: BootRecord, i: number) {
        const s = b.seq
        const bad = (detail: string) => add({ seq: s, kind: "bad-boot", detail })
        boots.push(b.boot)
        if (s === 0) {
            if (b.boot !== 1) bad(`the first boot record counts boot ${b.boot}, not 1`)
            if (!b.prev.equals(Buffer.alloc(8))) bad("the boot record at seq 0 has a non-zero prev")
        } else {
            if (head && !b.prev.equals(head.subarray(0, 8)) && !(alt && b.prev.equals(alt.subarray(0, 8)))) {
                if (sealFail)
                    sealFail.folded = (sealFail.folded ?? 0) + 1 // the chain before it is already known altered
                else
                    bad(
                        `boot record ${s} states prev ${b.prev.toString("hex")}, but the chain before it hashes to ${hex8(head)}...: a record before it (or the boot record) was changed`,
                    )
            }
            const before = i > 0 && items[i - 1].seq === s - 1 ? items[i - 1].rec : undefined
            if (before !== undefined && before?.kind !== KIND.seal) {
                bad(`boot record at seq ${s} not preceded by the seal of the epoch left open (seq ${s - 1} is kind ${before?.kind ?? "?"})`)
            }
            if (bootNow !== null) {
                if (b.boot <= bootNow) bad(`boot counter ${b.boot} after boot ${bootNow}: it went back or repeated`)
                else if (b.boot !== bootNow + 1 && bootKnown) {
                    notes.push(
                        `boot counter jumps from ${bootNow} to ${b.boot} at seq ${s}: ${b.boot - bootNow - 1} start-up(s) ended before their boot record`,
                    )
                }
            }
        }
        bootNow = b.boot
        bootKnown = true
    }

    function checkLoc(r: FixRecord | StopRecord) {
        if (!input.lockey || !positions) return
        try {
            decryptLoc(input.lockey, r.seq, r.loc)
            positions.decrypted++
        } catch {
            positions.failed++
            let whose: string | null = null
            for (const o of input.others ?? []) {
                if (!o.lockey) continue
                try {
                    decryptLoc(o.lockey, r.seq, r.loc)
                    whose = devidHex(o.devid)
                    break
                } catch {
                    /* not this one */
                }
            }
            if (whose) add({ seq: r.seq, kind: "foreign", detail: `the position of record ${r.seq} is device ${whose}'s` })
            else
                add({ seq: r.seq, kind: "bad-loc", detail: `the position of record ${r.seq} does not authenticate under the location key` })
        }
    }

    // ---- 3. holes: explained by evictions (or, in a device log, by acknowledgement) or deleted ----
    evicted.forEach((v, n) => (v.sealed = sealedOk[evictedIdx[n]]))
    const cpMax = cps.reduce<Checkpoint | null>((m, c) => (!m || c.seq > m.seq ? c : m), null)
    for (const h of holes) {
        // which missing seqs sealed evicted records (appended after the hole) account for
        const cover = evicted
            .filter(v => v.sealed && v.seq > h.last && v.last >= h.first && v.first <= h.last)
            .sort((x, y) => x.first - y.first)
        const gaps: [number, number][] = []
        let next = h.first
        for (const v of cover) {
            if (v.first > next) gaps.push([next, Math.min(v.first - 1, h.last)])
            next = Math.max(next, v.last + 1)
            if (next > h.last) break
        }
        if (next <= h.last) gaps.push([next, h.last])
        const used = cover.map(v => v.seq)
        const resumed = sealedOk[h.idx]
        const at = items[h.idx].seq
        if (!gaps.length) {
            notes.push(
                `${range(h.first, h.last)} evicted unsent, summarised by the evicted record${used.length > 1 ? "s" : ""} at seq ${used.join(", ")}${resumed ? `; the chain resumes at seq ${at} under a seal that verifies` : ""}`,
            )
            continue
        }
        if (h.first === 0 && source === "device") {
            const acked = Math.max(input.image?.ack?.seq ?? -1, cpMax?.seq ?? -1)
            if (acked >= h.last) {
                notes.push(`seq 0..${h.last} are no longer on the device: acknowledged by the server (up to seq ${acked}) and freed`)
                continue
            }
        }
        if (used.length)
            notes.push(
                `of ${range(h.first, h.last)}, the evicted record${used.length > 1 ? "s" : ""} at seq ${used.join(", ")} account for the rest`,
            )
        for (const [a, b] of gaps) {
            const unsealed = evicted.find(v => !v.sealed && v.seq > h.last && v.first <= a && v.last >= b)
            add({
                seq: a,
                last: b,
                kind: "deleted",
                detail: unsealed
                    ? `${range(a, b)} missing; the evicted record at seq ${unsealed.seq} that names ${a === b ? "it" : "them"} is not sealed`
                    : `${range(a, b)} missing, and no evicted record accounts for ${a === b ? "it" : "them"}`,
            })
        }
    }

    // eviction summaries against records still held
    for (const v of evicted) {
        const held: SampleRecord[] = []
        let all = true
        for (let q = v.first; q <= v.last; q++) {
            const it = itemBySeq.get(q)
            if (!it) {
                all = false
                break
            }
            if (it?.rec && it.rec.kind === KIND.sample && "tc" in it.rec) held.push(it.rec as SampleRecord)
        }
        if (!all) continue
        const ok = held.filter(x => x.sr === 0 && x.sflags === 0)
        const want = {
            samples: held.length,
            minTc: ok.length ? Math.min(...ok.map(x => x.tc)) : 0,
            maxTc: ok.length ? Math.max(...ok.map(x => x.tc)) : 0,
            srOr: held.reduce((a, x) => a | x.sr, 0),
            sflagsOr: held.reduce((a, x) => a | x.sflags, 0),
        }
        const wrong = (Object.keys(want) as (keyof typeof want)[]).filter(k => want[k] !== v[k])
        if (wrong.length)
            add({
                seq: v.seq,
                kind: "bad-summary",
                detail: `the evicted summary at seq ${v.seq} disagrees with the records ${v.first}..${v.last} still held (${wrong.map(k => `${k} ${v[k]} vs ${want[k]}`).join(", ")})`,
            })
    }

    // ---- 4. checkpoints: the log must reach every acknowledged seq; a device must not go back ----
    const lastSeq = items.length ? items[items.length - 1].seq : null
    const firstSeq = items.length ? items[0].seq : null
    const imageBoot = input.image?.boot
    for (const c of cps) {
        const b = bootOf.get(c.seq)
        if (b !== undefined && b > c.boot && matchedCps.has(c.seq))
            add({
                seq: c.seq,
                kind: "bad-boot",
                detail: `record ${c.seq} is in boot ${b}, but the server acknowledged it in a batch of boot ${c.boot}`,
            })
    }
    const forked = problems.some(p => p.pendingFork)
    if (cpMax && (lastSeq === null || cpMax.seq > lastSeq) && forked) {
        notes.push(`the log ends at seq ${lastSeq} before the acknowledged seq ${cpMax.seq}: part of the other history`)
    } else if (cpMax && (lastSeq === null || cpMax.seq > lastSeq)) {
        const from = lastSeq === null ? 0 : lastSeq + 1
        const older = source === "device" && imageBoot !== undefined && imageBoot < cpMax.boot
        add({
            seq: from,
            last: cpMax.seq,
            kind: older ? "rollback" : "truncated",
            detail: older
                ? `the flash image ends at seq ${lastSeq} with boot counter ${imageBoot}, but the server acknowledged seq ${cpMax.seq} from boot ${cpMax.boot}: an older flash image`
                : `the log ends at seq ${lastSeq ?? "(none)"}, but the server acknowledged records up to seq ${cpMax.seq}`,
        })
    } else if (source === "device" && imageBoot !== undefined) {
        const maxCpBoot = cps.reduce((m, c) => Math.max(m, c.boot), 0)
        if (imageBoot < maxCpBoot) {
            add({
                seq: (lastSeq ?? -1) + 1,
                kind: "rollback",
                detail: `the device's boot counter ${imageBoot} is below boot ${maxCpBoot} that the server already acknowledged`,
            })
        }
    }
    if (source === "device" && imageBoot !== undefined && boots.length && imageBoot < boots[boots.length - 1]) {
        add({
            seq: (lastSeq ?? -1) + 1,
            kind: "bad-boot",
            detail: `lgmeta counts boot ${imageBoot}, below the last boot record (boot ${boots[boots.length - 1]})`,
        })
    }
    // ---- 5. classify: forks of a device log, records of other devices ----
    for (const p of problems) {
        if (!p.pendingFork) continue
        const s = p.last ?? p.seq
        const nextSeal = [...sealedAt.entries()].filter(([q]) => q >= p.seq).sort((a, b) => a[0] - b[0])[0]
        const later = problems.some(q => q !== p && q.kind === "modified" && q.seq > p.seq)
        if (p.rejoined !== undefined) {
            p.kind = "modified"
            p.detail += `, but agrees with it again at seq ${p.rejoined} (a forked history never does): ${recs(p.seq, s)} changed`
        } else if (nextSeal && !nextSeal[1]) {
            p.kind = "modified"
            p.detail += ` and the device's own seal at seq ${nextSeal[0]} does not verify: ${recs(p.seq, s)} changed`
        } else if (!nextSeal && later) {
            p.kind = "modified"
            p.detail += ": the device's stated heads disagree too, so records were changed"
        } else {
            p.detail += nextSeal
                ? `, while the device's own seal at seq ${nextSeal[0]} verifies: it holds another history from ${range(p.seq, s)} on (a restored older flash image, or a captured key)`
                : `: it holds another history from ${range(p.seq, s)} on (a restored older flash image)`
        }
    }
    classifyForeign()

    function classifyForeign() {
        const others = (input.others ?? []).map(o => ({
            o,
            id: devidHex(o.devid),
            bytes: lookup(o.records),
            keys: o.k0 ? new EpochKeys(o.k0) : null,
        }))
        if (!others.length) return
        for (const p of problems) {
            if (!(p.kind === "modified" || p.kind === "bad-seal" || p.kind === "conflict")) continue
            const lo = p.seq
            const hi = Math.min(p.last ?? p.seq, lo + 2_000)
            for (const x of others) {
                let why: string | null = null
                let from = lo
                let to = hi
                // a head stated for a record in the range is the other device's head there
                for (let q = lo; q <= hi && !why; q++) {
                    const oh = x.bytes.get(q)?.head
                    if (oh && claims.get(q)?.some(c => c.head.equals(oh))) {
                        why = `the stored head of seq ${q} is device ${x.id}'s`
                        from = q
                        to = q
                        for (;;) {
                            const nh = x.bytes.get(to + 1)?.head
                            if (!nh || !claims.get(to + 1)?.some(c => c.head.equals(nh))) break
                            to++
                        }
                    }
                }
                // the one record pinpointed is byte for byte the other device's record at that seq
                if (!why && p.last === undefined) {
                    const ours = bySeq.get(lo)
                    const theirs = x.bytes.get(lo)
                    if (ours && theirs && ours.bytes.equals(theirs.bytes))
                        why = `record ${lo} is byte for byte device ${x.id}'s record ${lo}`
                }
                // a failing seal that is the other device's seal
                if (!why && p.kind === "bad-seal") {
                    const it = itemBySeq.get(hi)
                    const theirs = x.bytes.get(hi)
                    if (it && theirs && it.bytes.equals(theirs.bytes)) why = `the seal at seq ${hi} is device ${x.id}'s`
                    else if (it?.rec && it.rec.kind === KIND.seal && "mac" in it.rec && x.keys) {
                        const seal = it.rec as SealRecord
                        const k = seal.epoch <= seal.seq ? x.keys.get(seal.epoch) : null
                        const cands = [...(claims.get(hi - 1) ?? []).map(c => c.head), x.bytes.get(hi - 1)?.head].filter(
                            (h): h is Buffer => !!h,
                        )
                        if (k && cands.some(h => macEquals(sealMac(k, x.o.devid, seal.epoch, seal.seq, h, seal.count), seal.mac))) {
                            why = `the seal at seq ${hi} verifies under device ${x.id}'s key`
                        }
                    }
                }
                if (why) {
                    p.kind = "foreign"
                    p.seq = from
                    if (to > from) p.last = to
                    else delete p.last
                    p.detail = `${range(from, to)} spliced from another device: ${why}`
                    break
                }
            }
        }
        // disagreements inside a splice, and the stated chain resuming right after it, are not
        // further problems
        for (const f of problems.filter(p => p.kind === "foreign")) {
            if (!problems.includes(f)) continue
            const end = (f.last ?? f.seq) + 1
            for (let k = problems.length - 1; k >= 0; k--) {
                const q = problems[k]
                if (q !== f && (q.kind === "modified" || q.kind === "foreign") && q.seq >= f.seq && (q.last ?? q.seq) <= end)
                    problems.splice(k, 1)
            }
        }
    }

    // ---- verdict ----
    let unsealed = 0
    if (items.length) {
        const tailFrom = lastSealSeq === null ? items[0].seq : lastSealSeq + 1
        unsealed = items.filter(x => x.seq >= tailFrom).length
    }
    problems.sort((a, b) => a.seq - b.seq)
    const max = input.maxProblems ?? 100
    const listed: Problem[] = problems
        .slice(0, max)
        .map(({ pendingFork: _p, rejoined: _r, folded, ...p }) =>
            folded
                ? { ...p, detail: `${p.detail} (and ${folded} later ${folded === 1 ? "check" : "checks"} failing for the same reason)` }
                : p,
        )
    const first = listed[0]
    const tampered = problems.some(p => !INCOMPLETE_KINDS.includes(p.kind))
    const status: Verdict["status"] = !problems.length ? "ok" : tampered ? "tampered" : "incomplete"
    return {
        ok: status === "ok",
        status,
        ...(first ? { firstBad: first.seq, reason: `${first.kind}: ${first.detail}` } : {}),
        devid: devidStr,
        source,
        problems: listed,
        problemsOmitted: Math.max(0, problems.length - max),
        notes,
        records: items.length,
        firstSeq,
        lastSeq,
        head: head ? head.toString("hex") : null,
        start: items.length ? start : "none",
        sealedThrough,
        epochs,
        lastEpoch,
        unsealed,
        boots,
        checkpoints: {
            given: cpSeqs.size,
            matched: matchedCps.size,
            before: [...cpSeqs].filter(q => firstSeq !== null && q < firstSeq - 1).length,
            latest: cpMax ? cpMax.seq : null,
        },
        evictedRanges: evicted,
        positions,
        clock,
        ...(input.deviceBand
            ? {
                  alarmCheck: checkDeviceAlarms(
                      items.flatMap(x => (x.rec ? [x.rec] : [])),
                      input.deviceBand,
                  ),
              }
            : {}),
    }
}
