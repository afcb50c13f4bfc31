// The independent verifier (docs/verify.md), written from docs/format.md: given a device's log as
// some holder keeps it (the ingest server's database, or the device's own flash export), its
// identity and initial key k0, it checks sequence continuity, the hash chain from genesis, every
// epoch seal under the forward-secure key of its epoch, boot records, acknowledged checkpoints,
// eviction summaries and (with the location key) every encrypted position, and returns one verdict
// with the first offending sequence number.
import {
    KIND,
    MAX_SEQ,
    PAYLOAD_LEN,
    RECORD_HEADER_LEN,
    decodeFields,
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
    type ConfigRecord,
    type EvictedRecord,
    type FixRecord,
    type LogRecord,
    type SampleRecord,
    type SealRecord,
    type StopRecord,
} from "../format/index.js"
import { buildTimeline, type TimeFinding } from "./timeline.js"
import { checkDeviceAlarms, checkRuleAlarms, type DeviceAlarmCheck, type RuleAlarmCheck } from "../alarms/device.js"
import type { AlarmRule } from "../alarms/types.js"

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
    /** a configuration in force that is not the provisioned one (a config rewritten over USB) */
    | "bad-config"

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
    /**
     * every configuration the log states, in order: the first config record and each one whose
     * hash differs from the one before; `provisioned` says whether it is the provisioned
     * configuration (null when the verifier was not given it)
     */
    configs: { seq: number; hash: string; provisioned: boolean | null }[]
    /**
     * the program each boot said it runs (the boot record's `fw`, a build id compiled into the
     * firmware), one entry per change: a program deployed over USB shows here (docs/security.md)
     */
    programs: { seq: number; boot: number; fw: string }[]
    /** key derivations (one HMAC each) this verification spent on seals: bounded by MAX_KEY_DERIVATIONS */
    keyDerivations: number
    /** with `deviceBand`: the logger's alarm records against the band rule; a disagreement is a finding, not a chain problem */
    alarmCheck?: DeviceAlarmCheck
    /** with `deviceRules`: the logger's rule alarm records against those rules fed what it fed them; a finding, likewise */
    ruleCheck?: RuleAlarmCheck
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
    /**
     * the configuration hashes provisioned for the device (the config record's 16 bytes), with who
     * states them: the escrow keys file, the server's registration
     */
    provisioned?: { hash: Buffer; what: string }[]
    /**
     * the checkpoints an independent witness cosigned (docs/witness.md), signatures already
     * checked: the server's word, kept apart from the server. Against the server's database they
     * catch a truncated or rolled-back database; against a device log they count as checkpoints
     */
    witness?: { id: string; checkpoints: Checkpoint[] }
    /** problems the caller found while reading the log (e.g. a flash block that does not decode) */
    problems?: Problem[]
    /** list at most this many problems (default 100) */
    maxProblems?: number
    /** the band the logger was configured with: its alarm records are checked against the band rule (docs/alarms.md) */
    deviceBand?: { low: number; high: number }
    /**
     * the alarm rules the logger was configured with: its rule alarm records are checked against them
     * (docs/alarms.md 6); the interval, when not given, is the one the log shows
     */
    deviceRules?: { rules: AlarmRule[]; intervalS?: number }
}

/** Epochs beyond this are refused rather than computed (2^22 one-minute epochs are 8 years). */
export const MAX_EPOCH = 1 << 22

/**
 * Key derivations (one HMAC each) one verification may spend on a log's seals, all devices
 * together. Epochs only go up and derived keys are kept every KEY_RUNG epochs, so an honest log
 * needs at most its last epoch (MAX_EPOCH) plus a few; a hostile one cannot make the verifier
 * re-derive from k0 at every seal.
 */
export const MAX_KEY_DERIVATIONS = MAX_EPOCH + 4096

/** Every KEY_RUNG-th derived key is kept: going back costs at most KEY_RUNG - 1 derivations. */
const KEY_RUNG = 256

/** Derivations left for this verification, shared by every EpochKeys it makes. */
interface KeyBudget {
    left: number
}

/** k[e] from k0: evolved forward, every KEY_RUNG-th key and the newest kept, within a budget. */
class EpochKeys {
    private rungs: Buffer[]
    private e = 0
    private k: Buffer
    constructor(
        k0: Buffer,
        private readonly budget: KeyBudget,
    ) {
        this.rungs = [k0]
        this.k = k0
    }
    /** null for an impossible epoch, or when the budget is spent (`exhausted` then says so) */
    get(e: number): Buffer | null {
        if (!Number.isInteger(e) || e < 0 || e > MAX_EPOCH) return null
        if (e === this.e) return this.k
        let at = this.e
        let k = this.k
        if (e < at) {
            const r = Math.floor(e / KEY_RUNG)
            at = r * KEY_RUNG
            k = this.rungs[r]
        }
        if (e - at > this.budget.left) {
            this.budget.left = -1
            return null
        }
        this.budget.left -= e - at
        while (at < e) {
            k = evolveKey(k, ++at)
            if (at % KEY_RUNG === 0 && at / KEY_RUNG === this.rungs.length) this.rungs.push(k)
        }
        if (e > this.e) {
            this.e = e
            this.k = k
        }
        return k
    }
    get exhausted(): boolean {
        return this.budget.left < 0
    }
}

interface Item {
    seq: number
    bytes: Buffer
    /** the record's kind, -1 when its bytes are not a record */
    kind: number
    /** the decoded record; samples (most of a log) are decoded only when looked at (recOf) */
    rec: LogRecord | null
}

/** A well-formed sample record: its fields are read only when needed. */
function isSampleBytes(b: Buffer): boolean {
    return b.length === RECORD_HEADER_LEN + 12 && b[4] === KIND.sample && b[5] === 12 && b.readUInt32LE(0) <= MAX_SEQ
}

function recOf(it: Item): LogRecord | null {
    if (it.rec === null && it.kind === KIND.sample) it.rec = decodeOne(it.bytes)
    return it.rec
}

/**
 * One canonical record's fields: decodeRecord's result, without its per-record copies and texts
 * for a well-formed record (decodeRecord itself says what is wrong with any other).
 */
function decodeOne(b: Buffer): LogRecord {
    if (b.length > RECORD_HEADER_LEN) {
        const kind = b[4]
        const len = b[5]
        const want = PAYLOAD_LEN[kind]
        const seq = b.readUInt32LE(0)
        if (b.length === RECORD_HEADER_LEN + len && len >= 4 && (want === undefined || want === len) && seq <= MAX_SEQ)
            return decodeFields(seq, kind, b.subarray(RECORD_HEADER_LEN))
    }
    return decodeRecord(b)
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

/** A run of records found out of place or again, reported once it ends. */
interface Run {
    from: number
    to: number
    after: number
}

/**
 * The walk along the log in seq order: the recomputed chain, the chain as the holder states it,
 * where the last seal, agreement and checkpoint were. Only walkChain and the checks it calls
 * change it.
 */
interface ChainState {
    /** head[expect - 1], or null when nothing is known to chain from */
    head: Buffer | null
    expect: number
    start: Verdict["start"]
    /** the chain as the holder states it, kept from the first disagreement until a seal decides */
    alt: Buffer | null
    /** the disagreements since the stated chain left the recomputed one */
    altProblems: Found[]
    /** last seq where the holder's statements agree with the recomputed chain */
    lastConsistent: number
    /** last seq authenticated (a verified seal, genesis, or in a device log a checkpoint) */
    lastProven: number
    /** last seq where the server's head agrees */
    lastRefMatch: number
    refDiverged: Found | null
    /** first index not yet covered by a verified seal */
    unsealedFrom: number
    prevSeal: { seq: number; epoch: number } | null
    /** false after a hole: the previous seal may lie in it */
    prevSealKnown: boolean
    nextEpoch: number | null
    epochFloor: number
    /** the highest epoch any seal claimed so far, and where (epochs only go up) */
    topEpoch: { epoch: number; seq: number } | null
    segStartSeq: number
    sealFail: Found | null
    sealedThrough: number | null
    epochs: number
    lastEpoch: number | null
    lastSealSeq: number | null
    bootNow: number | null
    /** false after a hole: boots may lie in it */
    bootKnown: boolean
}

/** Everything one verification knows and finds, passed to every phase. */
interface Ctx {
    readonly input: VerifyInput
    readonly devid: Buffer
    readonly source: "server" | "device"
    readonly budget: KeyBudget
    readonly keys: EpochKeys
    readonly problems: Found[]
    readonly notes: string[]
    readonly cps: Checkpoint[]
    /** distinct records by their own seq, as first found */
    readonly bySeq: Map<number, LogEntry>
    /** the first head the holder stores with a record, by the holder's seq (the common claim, kept apart for speed) */
    readonly stored: SeqMap<Buffer>
    /** every other head the holder states (filed under the holder's seq), distinct from the stored one */
    readonly claims: Map<number, HeadClaim[]>
    /** for a device log: the server's word (stored heads, checkpoints) */
    readonly refs: Map<number, { head: Buffer; what: string }>
    items: Item[]
    /** the distinct records were found in increasing seq order (no sort needed) */
    inOrder: boolean
    sealedOk: boolean[]
    /** seal seq -> MAC verified */
    readonly sealedAt: Map<number, boolean>
    readonly holes: Hole[]
    readonly evicted: EvictedRange[]
    readonly evictedIdx: number[]
    readonly boots: number[]
    readonly configs: Verdict["configs"]
    readonly programs: Verdict["programs"]
    readonly bootOf: Map<number, number>
    readonly positions: { decrypted: number; failed: number } | null
    readonly cpSeqs: Set<number>
    readonly cpHeads: Map<number, Buffer[]>
    readonly matchedCps: Set<number>
    readonly cpMax: Checkpoint | null
    readonly chain: ChainState
}

/**
 * A Map by seq that keeps the dense run from seq 0 in an array (a log's seqs mostly are): no
 * hashing and no entry objects for the common case.
 */
class SeqMap<T> {
    private dense: T[] = []
    private rest = new Map<number, T>()
    get(seq: number): T | undefined {
        return seq >= 0 && seq < this.dense.length ? this.dense[seq] : this.rest.get(seq)
    }
    has(seq: number): boolean {
        return this.get(seq) !== undefined
    }
    set(seq: number, v: T): void {
        if (seq >= 0 && seq < this.dense.length) this.dense[seq] = v
        else if (seq === this.dense.length && Number.isInteger(seq)) {
            this.dense.push(v)
            for (let q = seq + 1; this.rest.has(q); q++) {
                this.dense.push(this.rest.get(q)!)
                this.rest.delete(q)
            }
        } else this.rest.set(seq, v)
    }
}

function lookup(r: OtherDevice["records"]): { get(seq: number): LogEntry | undefined } {
    if (typeof r === "function") return { get: r }
    return new Map((r ?? []).map(e => [e.seq, e]))
}

const hex8 = (b: Buffer) => b.subarray(0, 8).toString("hex")
const range = (a: number, b: number) => (a === b ? `seq ${a}` : `seq ${a}..${b}`)
const recs = (a: number, b: number) => (a === b ? `record ${a} was` : `records ${a}..${b} were`)

function add(c: Ctx, p: Found): Found {
    if (p.last !== undefined && p.last === p.seq) delete p.last
    c.problems.push(p)
    return p
}

/**
 * Verify a log. Never throws for bad data: everything wrong with the log is a problem in the
 * verdict. Throws RangeError only for a malformed devid or k0 (the caller's inputs, not the log's).
 */
export function verifyLog(input: VerifyInput): Verdict {
    const c = newContext(input)
    for (const p of input.problems ?? []) add(c, { ...p })
    checkProvisioned(c)
    readOrder(c)
    collectClaims(c)
    decodeItems(c)
    walkChain(c)
    explainHoles(c)
    checkSummaries(c)
    checkCheckpoints(c)
    classifyForks(c)
    classifyForeign(c)
    return verdictOf(c)
}

function newContext(input: VerifyInput): Ctx {
    const devid = devidBytes(input.devid)
    if (!Buffer.isBuffer(input.k0) || input.k0.length !== 32) throw new RangeError(`k0 must be 32 bytes, got ${input.k0?.length}`)
    const budget = { left: MAX_KEY_DERIVATIONS }
    const source = input.source ?? "server"
    // for a device log the witness's checkpoints are the server's word like the server's own
    const cps = [...(input.checkpoints ?? []), ...(source === "device" ? (input.witness?.checkpoints ?? []) : [])]
    const cpHeads = new Map<number, Buffer[]>()
    for (const cp of cps) cpHeads.set(cp.seq, [...(cpHeads.get(cp.seq) ?? []), cp.head])
    return {
        input,
        devid,
        source,
        budget,
        keys: new EpochKeys(input.k0, budget),
        problems: [],
        notes: [],
        cps,
        bySeq: new Map(),
        stored: new SeqMap(),
        claims: new Map(),
        refs: new Map(),
        items: [],
        inOrder: true,
        sealedOk: [],
        sealedAt: new Map(),
        holes: [],
        evicted: [],
        evictedIdx: [],
        boots: [],
        configs: [],
        programs: [],
        bootOf: new Map(),
        positions: input.lockey ? { decrypted: 0, failed: 0 } : null,
        cpSeqs: new Set(cps.map(cp => cp.seq)),
        cpHeads,
        matchedCps: new Set(),
        cpMax: cps.reduce<Checkpoint | null>((m, cp) => (!m || cp.seq > m.seq ? cp : m), null),
        chain: {
            head: genesisHead(devid),
            expect: 0,
            start: "genesis",
            alt: null,
            altProblems: [],
            lastConsistent: -1,
            lastProven: -1,
            lastRefMatch: -1,
            refDiverged: null,
            unsealedFrom: 0,
            prevSeal: null,
            prevSealKnown: true,
            nextEpoch: 0,
            epochFloor: 0,
            topEpoch: null,
            segStartSeq: 0,
            sealFail: null,
            sealedThrough: null,
            epochs: 0,
            lastEpoch: null,
            lastSealSeq: null,
            bootNow: null,
            bootKnown: true,
        },
    }
}

// ---- 1. order as found: replays, reorders, conflicting duplicates ----

function flushRun(c: Ctx, kind: "reordered" | "replayed", run: Run | null): null {
    if (!run) return null
    add(c, {
        seq: run.from,
        last: run.to,
        kind,
        detail:
            kind === "reordered"
                ? `${range(run.from, run.to)} found after seq ${run.after}: records out of order`
                : `${range(run.from, run.to)} found a second time, byte for byte, after seq ${run.after}: a replayed batch or block`,
    })
    return null
}

function readOrder(c: Ctx): void {
    let maxSeen = -1
    let lastFound = -1
    let replay: Run | null = null
    let reorder: Run | null = null
    for (const e of c.input.records) {
        const seq = e.bytes.length >= 4 ? e.bytes.readUInt32LE(0) : e.seq
        const prev = seq <= maxSeen ? c.bySeq.get(seq) : undefined
        if (prev) {
            reorder = flushRun(c, "reordered", reorder)
            if (prev.bytes.equals(e.bytes)) {
                if (replay && seq === replay.to + 1) replay.to = seq
                else {
                    flushRun(c, "replayed", replay)
                    replay = { from: seq, to: seq, after: lastFound }
                }
            } else {
                replay = flushRun(c, "replayed", replay)
                add(c, { seq, kind: "conflict", detail: `two different records claim seq ${seq}` })
            }
            lastFound = seq
            continue
        }
        replay = flushRun(c, "replayed", replay)
        if (seq < maxSeen) {
            c.inOrder = false
            if (reorder && seq === reorder.to + 1) reorder.to = seq
            else {
                flushRun(c, "reordered", reorder)
                reorder = { from: seq, to: seq, after: maxSeen }
            }
        } else reorder = flushRun(c, "reordered", reorder)
        c.bySeq.set(seq, e)
        if (seq > maxSeen) maxSeen = seq
        lastFound = seq
    }
    flushRun(c, "replayed", replay)
    flushRun(c, "reordered", reorder)
}

// ---- heads stated by the holder. In the server's own database its checkpoints are statements of
// the same holder; for a device log they are the server's word ----

const STORED = "stored head"

function claim(c: Ctx, h: HeadClaim): void {
    const st = c.stored.get(h.seq)
    const had = c.claims.get(h.seq)
    if (!st && !had && h.what === STORED) c.stored.set(h.seq, h.head)
    else if (st?.equals(h.head)) return
    else if (!had) c.claims.set(h.seq, [h])
    else if (!had.some(x => x.head.equals(h.head))) had.push(h)
}

/** The first head the holder states for seq s. */
function firstClaim(c: Ctx, s: number): { head: Buffer; what: string } | undefined {
    const st = c.stored.get(s)
    return st ? { head: st, what: STORED } : c.claims.get(s)?.[0]
}

/** Every head the holder states for seq s. */
function claimedHeads(c: Ctx, s: number): Buffer[] {
    const st = c.stored.get(s)
    const more = (c.claims.get(s) ?? []).map(h => h.head)
    return st ? [st, ...more] : more
}

function claimHas(c: Ctx, s: number, head: Buffer): boolean {
    return c.stored.get(s)?.equals(head) || c.claims.get(s)?.some(h => h.head.equals(head)) || false
}

function collectClaims(c: Ctx): void {
    const { input } = c
    for (const e of input.records) {
        if (!e.head) continue
        if (!c.stored.has(e.seq) && !c.claims.has(e.seq)) c.stored.set(e.seq, e.head)
        else claim(c, { seq: e.seq, head: e.head, what: STORED })
    }
    for (const s of input.segments ?? [])
        if (s.startSeq > 0) claim(c, { seq: s.startSeq - 1, head: s.prevHead, what: "PREV segment prev_head" })
    for (const h of input.claims ?? []) claim(c, h)
    if (c.source === "server") for (const cp of c.cps) claim(c, { seq: cp.seq, head: cp.head, what: "acknowledged checkpoint" })
    const genesisClaim = firstClaim(c, -1)
    if (genesisClaim && !genesisClaim.head.equals(genesisHead(c.devid))) {
        const whose = (input.others ?? []).find(o => genesisHead(o.devid).equals(genesisClaim.head))
        add(c, {
            seq: 0,
            kind: whose ? "foreign" : "modified",
            detail: whose
                ? `the log starts from device ${devidHex(whose.devid)}'s genesis head (${genesisClaim.what})`
                : `the ${genesisClaim.what} before seq 0 is not this device's genesis head`,
        })
    }
    const wit = input.witness
    if (wit) {
        const top = wit.checkpoints.reduce((m, w) => Math.max(m, w.seq), -1)
        c.notes.push(`witness ${wit.id}: ${wit.checkpoints.length} cosigned checkpoints${top >= 0 ? `, the latest at seq ${top}` : ""}`)
    }
    if (c.source !== "device") {
        // the witness's cosigned heads are not the database holder's statements: the log must reproduce them
        for (const w of input.witness?.checkpoints ?? [])
            if (!c.refs.has(w.seq)) c.refs.set(w.seq, { head: w.head, what: `the head witness ${input.witness!.id} cosigned` })
        return
    }
    for (const h of input.serverHeads ?? []) c.refs.set(h.seq, { head: h.head, what: "the server's stored head" })
    for (const cp of c.cps) {
        const had = c.refs.get(cp.seq)
        if (had && !had.head.equals(cp.head)) {
            add(c, {
                seq: cp.seq,
                kind: "conflict",
                detail: `the server states two heads for seq ${cp.seq} (${had.what} and an acknowledged checkpoint)`,
            })
        } else if (!had) c.refs.set(cp.seq, { head: cp.head, what: "acknowledged checkpoint" })
    }
}

function decodeItems(c: Ctx): void {
    const entries = c.inOrder ? c.bySeq.entries() : [...c.bySeq.entries()].sort((a, b) => a[0] - b[0])
    for (const [seq, e] of entries) {
        if (isSampleBytes(e.bytes)) {
            c.items.push({ seq, bytes: e.bytes, kind: KIND.sample, rec: null })
            continue
        }
        let rec: LogRecord | null = null
        try {
            rec = decodeOne(e.bytes)
        } catch (err) {
            add(c, { seq, kind: "malformed", detail: `not a record: ${(err as Error).message}` })
        }
        c.items.push({ seq, bytes: e.bytes, kind: rec ? rec.kind : -1, rec })
    }
    c.sealedOk = new Array(c.items.length).fill(false)
}

/** The distinct record with this seq (binary search: items are in seq order). */
function itemAt(c: Ctx, seq: number): Item | undefined {
    const { items } = c
    let lo = 0
    let hi = items.length - 1
    while (lo <= hi) {
        const mid = (lo + hi) >> 1
        const q = items[mid].seq
        if (q === seq) return items[mid]
        if (q < seq) lo = mid + 1
        else hi = mid - 1
    }
    return undefined
}

// ---- 2. the log in seq order: chain, seals, boots, positions ----

function walkChain(c: Ctx): void {
    const ch = c.chain
    const { items } = c
    for (let i = 0; i < items.length; i++) {
        const { seq: s, bytes, kind, rec } = items[i]
        if (s !== ch.expect) resumeAfterHole(c, i, s)

        if (s === 0 && kind >= 0 && kind !== KIND.boot)
            add(c, { seq: 0, kind: "bad-boot", detail: `the log does not start with a boot record (seq 0 is kind ${kind})` })
        if (rec && rec.kind === KIND.seal && "mac" in rec) checkSeal(c, rec as SealRecord, i)
        if (rec && rec.kind === KIND.boot && "prev" in rec) checkBoot(c, rec as BootRecord, i)
        if (ch.bootNow !== null && c.cpSeqs.has(s)) c.bootOf.set(s, ch.bootNow) // looked up at checkpoints only
        if (rec && rec.kind === KIND.evicted && "first" in rec) noteEvicted(c, rec as EvictedRecord, i)
        if (rec && rec.kind === KIND.config && "hash" in rec) noteConfig(c, rec as ConfigRecord)
        if (rec && (rec.kind === KIND.fix || rec.kind === KIND.stop) && "loc" in rec) checkLoc(c, rec as FixRecord | StopRecord)

        ch.head = ch.head ? nextHead(ch.head, bytes) : null
        ch.alt = ch.alt ? nextHead(ch.alt, bytes) : null
        compareClaims(c, s)
        if (c.source === "server" && ch.head && c.cpHeads.get(s)?.every(h => h.equals(ch.head!) || (ch.alt !== null && h.equals(ch.alt))))
            c.matchedCps.add(s)
        compareRef(c, s)
        ch.expect = s + 1
    }
}

/** A hole (or a log that does not start at seq 0): resume at the head the holder states. */
function resumeAfterHole(c: Ctx, i: number, s: number): void {
    const ch = c.chain
    c.holes.push({ first: ch.expect, last: s - 1, idx: i })
    const cl = firstClaim(c, s - 1)
    const r = c.refs.get(s - 1)
    ch.head = cl?.head ?? r?.head ?? null
    if (i === 0) ch.start = ch.head ? "anchored" : "none"
    ch.alt = null
    ch.altProblems = []
    ch.lastConsistent = ch.lastProven = ch.lastRefMatch = s - 1
    ch.segStartSeq = s
    if (cl && r) {
        if (cl.head.equals(r.head)) refMatched(c, s - 1)
        else refMismatch(c, s - 1, r.what, s - 1)
    }
    ch.unsealedFrom = i
    ch.prevSeal = null
    ch.prevSealKnown = false
    ch.nextEpoch = null
    ch.epochFloor = ch.lastEpoch === null ? 0 : ch.lastEpoch + 1
    ch.bootKnown = false
    ch.sealFail = null
    ch.expect = s
}

/** The heads the holder states for seq s against the recomputed chain (and the stated one). */
function compareClaims(c: Ctx, s: number): void {
    const ch = c.chain
    const st = c.stored.get(s)
    const cs = c.claims.get(s)
    if (!st && !cs) return
    const lo = ch.lastConsistent + 1
    if (!ch.head) {
        const first = firstClaim(c, s)!
        ch.head = first.head
        c.notes.push(`record ${s} is taken as stated (${first.what}): nothing before it to chain from`)
        return
    }
    if (st) compareClaim(c, s, lo, st, STORED)
    if (cs) for (const h of cs) compareClaim(c, s, lo, h.head, h.what)
}

function compareClaim(c: Ctx, s: number, lo: number, head: Buffer, what: string): void {
    const ch = c.chain
    if (head.equals(ch.head!)) {
        ch.lastConsistent = s
        ch.alt = null
        if (ch.altProblems.length) ch.altProblems = []
    } else if (ch.alt && head.equals(ch.alt)) {
        ch.lastConsistent = s
    } else {
        const p = add(c, {
            seq: Math.min(lo, s),
            last: s,
            kind: "modified",
            detail:
                lo >= s
                    ? `record ${s} does not hash to its ${what}`
                    : `the ${what} of seq ${s} disagrees with the chain: a record in ${range(lo, s)} was changed`,
        })
        ch.alt = head
        ch.altProblems.push(p)
        ch.lastConsistent = s
    }
}

/** In a device log: the server's head for seq s. */
function compareRef(c: Ctx, s: number): void {
    const ch = c.chain
    const r = c.refs.get(s)
    if (!r || !ch.head) return
    if (r.head.equals(ch.head)) {
        refMatched(c, s)
        ch.alt = null
        ch.altProblems = []
    } else if (ch.alt && r.head.equals(ch.alt)) {
        refMatched(c, s)
        for (const q of ch.altProblems) q.detail += `; ${r.what} at seq ${s} agrees with the stated heads, so the bytes were changed`
        ch.head = ch.alt
        ch.alt = null
        ch.altProblems = []
    } else refMismatch(c, s, r.what)
}

function refMatched(c: Ctx, s: number): void {
    const ch = c.chain
    if (c.cpSeqs.has(s)) c.matchedCps.add(s)
    ch.lastRefMatch = s
    ch.lastConsistent = s
    if (ch.refDiverged) ch.refDiverged.rejoined = s
    ch.refDiverged = null
    if (c.source === "device") ch.lastProven = Math.max(ch.lastProven, s)
}

function refMismatch(c: Ctx, s: number, what: string, from?: number): void {
    const ch = c.chain
    if (ch.refDiverged) {
        ch.refDiverged.folded = (ch.refDiverged.folded ?? 0) + 1
        return
    }
    const lo = from ?? Math.max(ch.lastRefMatch + 1, ch.segStartSeq)
    if (c.source === "server") {
        ch.refDiverged = add(c, {
            seq: lo,
            last: s,
            kind: "modified",
            detail: `the log's head at seq ${s} differs from ${what}: ${recs(lo, s)} changed after the server acknowledged ${lo === s ? "it" : "them"}`,
        })
    } else {
        ch.refDiverged = add(c, {
            seq: lo,
            last: s,
            kind: "rollback",
            detail: `the device's head at seq ${s} differs from ${what}`,
            pendingFork: true,
        })
    }
}

function checkSeal(c: Ctx, seal: SealRecord, i: number): void {
    const ch = c.chain
    const s = seal.seq
    const e = seal.epoch
    // numbering and count first: a seal that verifies but claims the wrong epoch or count does
    // not seal the epoch that is due (a captured later key can MAC any epoch number >= its own)
    const issues: string[] = []
    // epochs only go up: a seal that claims an epoch at or below an earlier seal's is refused
    // without deriving its key (a hostile log must not make the verifier re-derive from k0)
    const wentBack = ch.topEpoch !== null && e <= ch.topEpoch.epoch
    if (wentBack)
        issues.push(
            `it claims epoch ${e} after the seal of epoch ${ch.topEpoch!.epoch} at seq ${ch.topEpoch!.seq}: epochs went back${ch.nextEpoch !== null ? ` (epoch ${ch.nextEpoch} is due)` : ""}`,
        )
    else if (ch.nextEpoch !== null && e !== ch.nextEpoch)
        issues.push(`it claims epoch ${e} where epoch ${ch.nextEpoch} is due (epochs are sealed 0, 1, 2, ... without gaps)`)
    else if (ch.nextEpoch === null && e < ch.epochFloor)
        issues.push(`it claims epoch ${e} after a seal of epoch ${ch.epochFloor - 1}: epochs went back`)
    if (ch.prevSealKnown) {
        const want = ch.prevSeal ? s - ch.prevSeal.seq - 1 : s
        if (seal.count !== want)
            issues.push(
                `its count is ${seal.count}, but ${want} records follow ${ch.prevSeal ? `the seal at seq ${ch.prevSeal.seq}` : "seq 0"}`,
            )
    } else if (seal.count > s || s - seal.count - 1 >= ch.segStartSeq) {
        issues.push(
            `its count ${seal.count} puts the previous seal at seq ${s - seal.count - 1}, which is ${s - seal.count - 1 < -1 ? "before seq 0" : "held and not a seal"}`,
        )
    }
    ch.prevSeal = { seq: s, epoch: e }
    ch.prevSealKnown = true
    ch.nextEpoch = e + 1
    ch.lastSealSeq = s
    if (!wentBack && (ch.topEpoch === null || e > ch.topEpoch.epoch)) ch.topEpoch = { epoch: e, seq: s }
    let via: "chain" | "stated" | null = null
    const k = ch.head && e <= s && !wentBack ? c.keys.get(e) : null
    if (ch.head && !k && !wentBack)
        issues.push(
            c.keys.exhausted
                ? `its key k[${e}] is past the ${MAX_KEY_DERIVATIONS} key derivations one verification may spend`
                : `epoch ${e} is impossible at seq ${s} (each earlier epoch needs a seal record)`,
        )
    if (ch.head && k) {
        if (macEquals(sealMac(k, c.devid, e, s, ch.head, seal.count), seal.mac)) via = "chain"
        else if (ch.alt && macEquals(sealMac(k, c.devid, e, s, ch.alt, seal.count), seal.mac)) via = "stated"
    }
    c.sealedAt.set(s, via !== null && !issues.length)
    if (!ch.head) return // nothing to check the MAC over (after a hole with no stated head)
    if (via && !issues.length) {
        if (via === "stated") {
            ch.head = ch.alt
            for (const q of ch.altProblems)
                q.detail += `; the seal at seq ${s} verifies over the stated heads, so the bytes changed after the device sealed them`
        } else {
            for (const q of ch.altProblems)
                q.detail += `; the seal at seq ${s} verifies over the recomputed chain, so the stated head is what was changed`
        }
        ch.alt = null
        ch.altProblems = []
        for (let j = ch.unsealedFrom; j <= i; j++) c.sealedOk[j] = true
        ch.unsealedFrom = i + 1
        ch.lastProven = s
        ch.lastConsistent = s
        ch.sealedThrough = s
        ch.epochs++
        ch.lastEpoch = e
        ch.sealFail = null
        return
    }
    if (ch.sealFail && !issues.length) {
        // every later seal binds the same altered history: one problem, counted
        ch.sealFail.folded = (ch.sealFail.folded ?? 0) + 1
        return
    }
    const lo = ch.lastProven + 1
    const what = lo < s ? `records ${range(lo, s - 1)} are not authenticated` : "it authenticates nothing"
    const mac = wentBack ? "its MAC is not checked" : via ? `its MAC verifies under k[${e}]` : `its MAC does not verify under k[${e}]`
    const p = add(c, {
        seq: lo,
        last: s,
        kind: "bad-seal",
        detail: issues.length
            ? `the seal at seq ${s} is not the seal that is due: ${issues.join("; ")} (${mac}); ${what}`
            : `the seal of epoch ${e} at seq ${s} does not verify under k[${e}]: ${lo < s ? `a record in ${range(lo, s - 1)} or the seal itself` : "the seal"} is not what the device sealed`,
    })
    ch.sealFail ??= p
}

/** The program identity of each boot; a change is a fact worth a note (not a problem: updates happen). */
function notePrograms(c: Ctx, b: BootRecord): void {
    const fw = programName(b.fw)
    const last = c.programs[c.programs.length - 1]
    if (last && last.fw === fw) return
    if (last) c.notes.push(`the program changed at boot ${b.boot} (seq ${b.seq}): ${last.fw} before, ${fw} from there on`)
    c.programs.push({ seq: b.seq, boot: b.boot, fw })
}

/** printable ASCII as it is, anything else as hex */
function programName(fw: Buffer): string {
    return [...fw].every(x => x >= 0x20 && x < 0x7f) ? fw.toString("latin1") : `0x${fw.toString("hex")}`
}

function checkBoot(c: Ctx, b: BootRecord, i: number): void {
    const ch = c.chain
    const s = b.seq
    const bad = (detail: string) => add(c, { seq: s, kind: "bad-boot", detail })
    c.boots.push(b.boot)
    notePrograms(c, b)
    if (s === 0) {
        if (b.boot !== 1) bad(`the first boot record counts boot ${b.boot}, not 1`)
        if (!b.prev.equals(Buffer.alloc(8))) bad("the boot record at seq 0 has a non-zero prev")
    } else {
        const head = ch.head
        if (head && !b.prev.equals(head.subarray(0, 8)) && !(ch.alt && b.prev.equals(ch.alt.subarray(0, 8)))) {
            if (ch.sealFail)
                ch.sealFail.folded = (ch.sealFail.folded ?? 0) + 1 // the chain before it is already known altered
            else
                bad(
                    `boot record ${s} states prev ${b.prev.toString("hex")}, but the chain before it hashes to ${hex8(head)}...: a record before it (or the boot record) was changed`,
                )
        }
        const before = i > 0 && c.items[i - 1].seq === s - 1 ? c.items[i - 1] : undefined
        if (before !== undefined && before.kind !== KIND.seal) {
            bad(
                `boot record at seq ${s} not preceded by the seal of the epoch left open (seq ${s - 1} is kind ${before.kind < 0 ? "?" : before.kind})`,
            )
        }
        if (ch.bootNow !== null) {
            if (b.boot <= ch.bootNow) bad(`boot counter ${b.boot} after boot ${ch.bootNow}: it went back or repeated`)
            else if (b.boot !== ch.bootNow + 1 && ch.bootKnown) {
                c.notes.push(
                    `boot counter jumps from ${ch.bootNow} to ${b.boot} at seq ${s}: ${b.boot - ch.bootNow - 1} start-up(s) ended before their boot record`,
                )
            }
        }
    }
    ch.bootNow = b.boot
    ch.bootKnown = true
}

function noteEvicted(c: Ctx, v: EvictedRecord, i: number): void {
    const s = v.seq
    if (!(v.first <= v.last && v.last < s)) {
        add(c, { seq: s, kind: "malformed", detail: `evicted record names seq ${v.first}..${v.last}, not a range before it` })
        return
    }
    const { seq: _s, kind: _k, t: _t, ...sum } = v
    c.evicted.push({ seq: s, ...sum, sealed: false })
    c.evictedIdx.push(i)
}

/** Every configuration change is listed; one that is not the provisioned configuration is a finding. */
function noteConfig(c: Ctx, r: ConfigRecord): void {
    const hash = r.hash.toString("hex")
    if (c.configs.length && c.configs[c.configs.length - 1].hash === hash) return
    const prov = c.input.provisioned ?? []
    const provisioned = prov.length ? prov.some(p => p.hash.equals(r.hash)) : null
    c.configs.push({ seq: r.seq, hash, provisioned })
    if (provisioned === false)
        add(c, {
            seq: r.seq,
            kind: "bad-config",
            detail: `the configuration in force from seq ${r.seq} (hash ${hash}) is not the one provisioned (${prov.map(p => `${p.what} ${p.hash.toString("hex")}`).join(", ")}): it was changed after provisioning`,
        })
}

/** The provisioned configuration as the escrow and the server state it must be one. */
function checkProvisioned(c: Ctx): void {
    const prov = c.input.provisioned ?? []
    const distinct = prov.filter((p, i) => prov.findIndex(q => q.hash.equals(p.hash)) === i)
    if (distinct.length > 1)
        add(c, {
            seq: 0,
            kind: "bad-config",
            detail: `the provisioned configuration differs between ${distinct.map(p => `${p.what} (${p.hash.toString("hex")})`).join(" and ")}`,
        })
}

function checkLoc(c: Ctx, r: FixRecord | StopRecord): void {
    const { lockey, others } = c.input
    if (!lockey || !c.positions) return
    try {
        decryptLoc(lockey, r.seq, r.loc)
        c.positions.decrypted++
    } catch {
        c.positions.failed++
        let whose: string | null = null
        for (const o of others ?? []) {
            if (!o.lockey) continue
            try {
                decryptLoc(o.lockey, r.seq, r.loc)
                whose = devidHex(o.devid)
                break
            } catch {
                /* not this one */
            }
        }
        if (whose) add(c, { seq: r.seq, kind: "foreign", detail: `the position of record ${r.seq} is device ${whose}'s` })
        else add(c, { seq: r.seq, kind: "bad-loc", detail: `the position of record ${r.seq} does not authenticate under the location key` })
    }
}

// ---- 3. holes: explained by evictions (or, in a device log, by acknowledgement) or deleted ----

function explainHoles(c: Ctx): void {
    const { evicted, items } = c
    evicted.forEach((v, n) => (v.sealed = c.sealedOk[c.evictedIdx[n]]))
    for (const h of c.holes) {
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
        const resumed = c.sealedOk[h.idx]
        const at = items[h.idx].seq
        if (!gaps.length) {
            c.notes.push(
                `${range(h.first, h.last)} evicted unsent, summarised by the evicted record${used.length > 1 ? "s" : ""} at seq ${used.join(", ")}${resumed ? `; the chain resumes at seq ${at} under a seal that verifies` : ""}`,
            )
            continue
        }
        let missing = gaps
        if (h.first === 0 && c.source === "device") {
            // the server's checkpoints (or the witness's) beat the device's own lgack: lgack is
            // flash the holder of the device can rewrite, so it explains the missing start only
            // when the server's word is not given at all
            const lgack = c.input.image?.ack?.seq ?? -1
            const serverWord = c.cpMax !== null
            const acked = serverWord ? c.cpMax!.seq : lgack
            if (serverWord && lgack > acked)
                c.notes.push(
                    `the device's lgack claims seq ${lgack} acknowledged, but the server's checkpoints reach only seq ${acked}: the missing start is judged by the server's`,
                )
            if (acked >= h.last) {
                c.notes.push(
                    serverWord
                        ? `seq 0..${h.last} are no longer on the device: acknowledged by the server (up to seq ${acked}) and freed`
                        : `seq 0..${h.last} are no longer on the device: its lgack (its own statement, no server checkpoints given) says the server acknowledged up to seq ${acked}`,
                )
                continue
            }
            if (acked >= 0) {
                c.notes.push(`seq 0..${acked} are no longer on the device: acknowledged (up to seq ${acked}) and freed`)
                missing = gaps.flatMap(([a, b]): [number, number][] => (b <= acked ? [] : [[Math.max(a, acked + 1), b]]))
            }
        }
        if (used.length)
            c.notes.push(
                `of ${range(h.first, h.last)}, the evicted record${used.length > 1 ? "s" : ""} at seq ${used.join(", ")} account for the rest`,
            )
        for (const [a, b] of missing) {
            const unsealed = evicted.find(v => !v.sealed && v.seq > h.last && v.first <= a && v.last >= b)
            add(c, {
                seq: a,
                last: b,
                kind: "deleted",
                detail:
                    (unsealed
                        ? `${range(a, b)} missing; the evicted record at seq ${unsealed.seq} that names ${a === b ? "it" : "them"} is not sealed`
                        : `${range(a, b)} missing, and no evicted record accounts for ${a === b ? "it" : "them"}`) +
                    witnessedInGap(c, a, b),
            })
        }
    }
}

/**
 * Why a gap in the server's log may be there: the witness cosigned a checkpoint inside it, so the
 * server had acknowledged those records (the device then freed them) and its database lost them later.
 */
function witnessedInGap(c: Ctx, a: number, b: number): string {
    if (c.source !== "server" || !c.input.witness) return ""
    const inside = c.input.witness.checkpoints.filter(w => w.seq >= a && w.seq <= b).map(w => w.seq)
    if (!inside.length) return ""
    const at = inside.length > 1 ? `seqs ${Math.min(...inside)}..${Math.max(...inside)}` : `seq ${inside[0]}`
    return `; witness ${c.input.witness.id} cosigned the server's checkpoint at ${at}: the server had acknowledged these records (a logger frees what is acknowledged) and its database lost them (restored from an older copy, or deleted)`
}

/** Eviction summaries against records still held. */
function checkSummaries(c: Ctx): void {
    for (const v of c.evicted) {
        const held: SampleRecord[] = []
        let all = true
        for (let q = v.first; q <= v.last; q++) {
            const it = itemAt(c, q)
            if (!it) {
                all = false
                break
            }
            if (it.kind === KIND.sample) held.push(recOf(it) as SampleRecord)
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
            add(c, {
                seq: v.seq,
                kind: "bad-summary",
                detail: `the evicted summary at seq ${v.seq} disagrees with the records ${v.first}..${v.last} still held (${wrong.map(k => `${k} ${v[k]} vs ${want[k]}`).join(", ")})`,
            })
    }
}

// ---- 4. checkpoints: the log must reach every acknowledged seq; a device must not go back ----

function checkCheckpoints(c: Ctx): void {
    const { items, cps, cpMax, source, boots } = c
    const lastSeq = items.length ? items[items.length - 1].seq : null
    const imageBoot = c.input.image?.boot
    for (const cp of cps) {
        const b = c.bootOf.get(cp.seq)
        if (b !== undefined && b > cp.boot && c.matchedCps.has(cp.seq))
            add(c, {
                seq: cp.seq,
                kind: "bad-boot",
                detail: `record ${cp.seq} is in boot ${b}, but the server acknowledged it in a batch of boot ${cp.boot}`,
            })
    }
    const wMax =
        source === "server"
            ? (c.input.witness?.checkpoints ?? []).reduce<Checkpoint | null>((m, w) => (!m || w.seq > m.seq ? w : m), null)
            : null
    if (wMax && (lastSeq === null || wMax.seq > lastSeq) && !(cpMax && cpMax.seq >= wMax.seq))
        add(c, {
            seq: lastSeq === null ? 0 : lastSeq + 1,
            last: wMax.seq,
            kind: "rollback",
            detail: `the database ends at seq ${lastSeq ?? "(none)"} and its own checkpoints at seq ${cpMax?.seq ?? "(none)"}, but witness ${c.input.witness!.id} cosigned seq ${wMax.seq}: the server's database was restored from an older copy, or truncated together with its checkpoints`,
        })
    const forked = c.problems.some(p => p.pendingFork)
    if (cpMax && (lastSeq === null || cpMax.seq > lastSeq) && forked) {
        c.notes.push(`the log ends at seq ${lastSeq} before the acknowledged seq ${cpMax.seq}: part of the other history`)
    } else if (cpMax && (lastSeq === null || cpMax.seq > lastSeq)) {
        const from = lastSeq === null ? 0 : lastSeq + 1
        const older = source === "device" && imageBoot !== undefined && imageBoot < cpMax.boot
        add(c, {
            seq: from,
            last: cpMax.seq,
            kind: older ? "rollback" : "truncated",
            detail: older
                ? `the flash image ends at seq ${lastSeq} with boot counter ${imageBoot}, but the server acknowledged seq ${cpMax.seq} from boot ${cpMax.boot}: an older flash image`
                : `the log ends at seq ${lastSeq ?? "(none)"}, but the server acknowledged records up to seq ${cpMax.seq}`,
        })
    } else if (source === "device" && imageBoot !== undefined) {
        const maxCpBoot = cps.reduce((m, cp) => Math.max(m, cp.boot), 0)
        if (imageBoot < maxCpBoot) {
            add(c, {
                seq: (lastSeq ?? -1) + 1,
                kind: "rollback",
                detail: `the device's boot counter ${imageBoot} is below boot ${maxCpBoot} that the server already acknowledged`,
            })
        }
    }
    if (source === "device" && imageBoot !== undefined && boots.length && imageBoot < boots[boots.length - 1]) {
        add(c, {
            seq: (lastSeq ?? -1) + 1,
            kind: "bad-boot",
            detail: `lgmeta counts boot ${imageBoot}, below the last boot record (boot ${boots[boots.length - 1]})`,
        })
    }
}

// ---- 5. classify: forks of a device log, records of other devices ----

function classifyForks(c: Ctx): void {
    const { problems } = c
    for (const p of problems) {
        if (!p.pendingFork) continue
        const s = p.last ?? p.seq
        const nextSeal = [...c.sealedAt.entries()].filter(([q]) => q >= p.seq).sort((a, b) => a[0] - b[0])[0]
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
}

function classifyForeign(c: Ctx): void {
    const { problems } = c
    const others = (c.input.others ?? []).map(o => ({
        o,
        id: devidHex(o.devid),
        bytes: lookup(o.records),
        keys: o.k0 ? new EpochKeys(o.k0, c.budget) : null,
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
                if (oh && claimHas(c, q, oh)) {
                    why = `the stored head of seq ${q} is device ${x.id}'s`
                    from = q
                    to = q
                    for (;;) {
                        const nh = x.bytes.get(to + 1)?.head
                        if (!nh || !claimHas(c, to + 1, nh)) break
                        to++
                    }
                }
            }
            // the one record pinpointed is byte for byte the other device's record at that seq
            if (!why && p.last === undefined) {
                const ours = c.bySeq.get(lo)
                const theirs = x.bytes.get(lo)
                if (ours && theirs && ours.bytes.equals(theirs.bytes)) why = `record ${lo} is byte for byte device ${x.id}'s record ${lo}`
            }
            // a failing seal that is the other device's seal
            if (!why && p.kind === "bad-seal") {
                const it = itemAt(c, hi)
                const theirs = x.bytes.get(hi)
                if (it && theirs && it.bytes.equals(theirs.bytes)) why = `the seal at seq ${hi} is device ${x.id}'s`
                else if (it?.rec && it.rec.kind === KIND.seal && "mac" in it.rec && x.keys) {
                    const seal = it.rec as SealRecord
                    const k = seal.epoch <= seal.seq ? x.keys.get(seal.epoch) : null
                    const cands = [...claimedHeads(c, hi - 1), x.bytes.get(hi - 1)?.head].filter((h): h is Buffer => !!h)
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

// ---- the verdict ----

/** The device's clock over the records that decode, in seq order (samples read for their t alone). */
function clockOf(c: Ctx): Verdict["clock"] {
    const timeline = buildTimeline(
        c.items.flatMap((x): LogRecord[] => {
            if (x.rec) return [x.rec]
            // a well-formed sample not yet decoded: the timeline reads only its seq, kind and t
            if (x.kind === KIND.sample) return [{ seq: x.seq, kind: KIND.sample, t: x.bytes.readUInt32LE(RECORD_HEADER_LEN) } as LogRecord]
            return []
        }),
    )
    return {
        runs: timeline.placed.length ? timeline.placed[timeline.placed.length - 1].run + 1 : 0,
        unplaced: timeline.placed.filter(p => p.utc === null).length,
        findings: timeline.findings,
    }
}

function verdictOf(c: Ctx): Verdict {
    const { items, problems, chain: ch, cpMax } = c
    const lastSeq = items.length ? items[items.length - 1].seq : null
    const firstSeq = items.length ? items[0].seq : null
    let unsealed = 0
    if (items.length) {
        const tailFrom = ch.lastSealSeq === null ? items[0].seq : ch.lastSealSeq + 1
        unsealed = items.filter(x => x.seq >= tailFrom).length
    }
    problems.sort((a, b) => a.seq - b.seq)
    const max = c.input.maxProblems ?? 100
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
        devid: devidHex(c.devid),
        source: c.source,
        problems: listed,
        problemsOmitted: Math.max(0, problems.length - max),
        notes: c.notes,
        records: items.length,
        firstSeq,
        lastSeq,
        head: ch.head ? ch.head.toString("hex") : null,
        start: items.length ? ch.start : "none",
        sealedThrough: ch.sealedThrough,
        epochs: ch.epochs,
        lastEpoch: ch.lastEpoch,
        unsealed,
        boots: c.boots,
        checkpoints: {
            given: c.cpSeqs.size,
            matched: c.matchedCps.size,
            before: [...c.cpSeqs].filter(q => firstSeq !== null && q < firstSeq - 1).length,
            latest: cpMax ? cpMax.seq : null,
        },
        evictedRanges: c.evicted,
        positions: c.positions,
        configs: c.configs,
        programs: c.programs,
        keyDerivations: c.budget.left < 0 ? MAX_KEY_DERIVATIONS : MAX_KEY_DERIVATIONS - c.budget.left,
        clock: clockOf(c),
        ...(c.input.deviceBand ? { alarmCheck: checkDeviceAlarms(heldRecords(c), c.input.deviceBand) } : {}),
        ...(c.input.deviceRules ? { ruleCheck: checkRuleAlarms(heldRecords(c), c.input.deviceRules) } : {}),
    }
}

/** the records the verification holds, in seq order */
function heldRecords(c: Ctx): LogRecord[] {
    return c.items.flatMap(x => {
        const r = recOf(x)
        return r ? [r] : []
    })
}
