// The packed encoding of records (docs/format.md section 4): an adaptive binary range coder over a
// small model of what a logger records, so a stable reading costs about its noise's entropy and a
// moving one stays compact. Flash blocks and batch bodies carry packed streams; decoding reproduces
// the canonical records byte for byte. The firmware's twin is devs/record/pack.ts.
import { FormatError, KIND, MAX_SEQ, PAYLOAD_LEN, RECORD_HEADER_LEN, checkPayloadLen, decodeFields, type LogRecord } from "./record.js"

// ---- the range coder (section 4.1) ----------------------------------------------------------------

const TOP = 2 ** 24
/** the most trailing zero bytes a finish drops, so a decoder reads at most this many bytes past the end */
export const FLUSH_TRIM_MAX = 8
/**
 * A decoder refuses a stream once it has read this many bytes past its end (section 4.1). Larger
 * than FLUSH_TRIM_MAX on purpose: a stream from an encoder that dropped more zeros still decodes.
 */
export const DECODE_OVERREAD_MAX = 64
const TWO32 = 2 ** 32
const PROB_ONE = 65536
export const PROB_MIN = 32
export const PROB_MAX = 65504

/** Probability adaptation shift for a block that has coded `n` plain samples (section 4.3). */
export function adaptShift(n: number): number {
    return n < 2 ? 1 : n < 6 ? 2 : n < 14 ? 3 : n < 30 ? 4 : 5
}

function adapt(p: number, bit: number, shift: number): number {
    const q = bit ? p - (p >> shift) : p + ((PROB_ONE - p) >> shift)
    return q < PROB_MIN ? PROB_MIN : q > PROB_MAX ? PROB_MAX : q
}

/** Encoder registers (section 4.1). */
export interface CoderState {
    low: number
    range: number
    cache: number
    /** a cache byte is held (false only before the first byte is resolved) */
    hasCache: boolean
    /** 0xFF bytes held after the cache */
    ffCount: number
}

export class RangeEncoder {
    low = 0
    range = 0xffffffff
    cache = 0
    hasCache = false
    ffCount = 0
    /** the bytes emitted so far (a byte is emitted once no carry can change it) */
    readonly out: number[]

    constructor(out: number[] = [], state?: CoderState) {
        this.out = out
        if (state) {
            this.low = state.low
            this.range = state.range
            this.cache = state.cache
            this.hasCache = state.hasCache
            this.ffCount = state.ffCount
        }
    }

    state(): CoderState {
        return { low: this.low, range: this.range, cache: this.cache, hasCache: this.hasCache, ffCount: this.ffCount }
    }

    private shiftLow() {
        if (this.low < 0xff000000 || this.low >= TWO32) {
            const carry = this.low >= TWO32 ? 1 : 0
            if (this.hasCache) this.out.push((this.cache + carry) & 0xff)
            for (; this.ffCount > 0; this.ffCount--) this.out.push((0xff + carry) & 0xff)
            this.cache = Math.floor(this.low / TOP) & 0xff
            this.hasCache = true
        } else this.ffCount++
        this.low = (this.low % TOP) * 256
    }

    private normalize() {
        while (this.range < TOP) {
            this.range *= 256
            this.shiftLow()
        }
    }

    /** one bit with probability `p[i]` of a 0; adapts p[i] */
    bit(p: number[], i: number, bit: number, shift: number) {
        const bound = (this.range >>> 16) * p[i]
        if (bit) {
            this.low += bound
            this.range -= bound
        } else this.range = bound
        p[i] = adapt(p[i], bit, shift)
        this.normalize()
    }

    /** `n` bits of `v` (v < 2^53), most significant first, each with probability 1/2 */
    direct(v: number, n: number) {
        for (let k = n - 1; k >= 0; k--) {
            this.range = Math.floor(this.range / 2)
            if (Math.floor(v / 2 ** k) % 2) this.low += this.range
            this.normalize()
        }
    }

    /**
     * The bytes that make everything coded so far decodable, without changing this encoder
     * (section 4.1, "finish"): the value with the most trailing zero bytes in [low, low + range),
     * shifted out, then the trailing zero bytes of that flush dropped (a decoder reads missing bytes
     * as 0). Returns the whole stream: the bytes emitted so far and the flush.
     */
    finish(): Buffer {
        return Buffer.from([...this.out, ...this.flushBytes()])
    }

    /** only the flush (see finish) */
    flushBytes(): number[] {
        const c = new RangeEncoder([], this.state())
        for (let k = 1; k <= 4; k++) {
            const m = 2 ** (32 - 8 * k)
            const v = Math.ceil(c.low / m) * m
            if (v < c.low + c.range) {
                c.low = v
                break
            }
        }
        for (let i = 0; i < 5; i++) c.shiftLow()
        let n = c.out.length
        // drop trailing zeros (a decoder reads missing bytes as 0), but at most FLUSH_TRIM_MAX: a carry
        // can turn a long run of pending 0xFF bytes into zeros, and a decoder reads one byte past the
        // end for every byte dropped
        const keep = Math.max(0, c.out.length - FLUSH_TRIM_MAX)
        while (n > keep && c.out[n - 1] === 0) n--
        return c.out.slice(0, n)
    }
}

export class RangeDecoder {
    private code = 0
    private range = 0xffffffff
    private pos = 0

    constructor(private readonly buf: Buffer) {
        for (let i = 0; i < 4; i++) this.code = this.code * 256 + this.next()
    }

    private next(): number {
        return this.pos < this.buf.length ? this.buf[this.pos++] : (this.pos++, 0)
    }

    /** bytes consumed, padding included */
    get consumed(): number {
        return this.pos
    }

    private normalize() {
        while (this.range < TOP) {
            this.range *= 256
            this.code = (this.code % TOP) * 256 + this.next()
        }
    }

    bit(p: number[], i: number, shift: number): number {
        const bound = (this.range >>> 16) * p[i]
        let bit = 0
        if (this.code < bound) this.range = bound
        else {
            this.code -= bound
            this.range -= bound
            bit = 1
        }
        p[i] = adapt(p[i], bit, shift)
        this.normalize()
        return bit
    }

    direct(n: number): number {
        let v = 0
        for (let k = 0; k < n; k++) {
            this.range = Math.floor(this.range / 2)
            let b = 0
            if (this.code >= this.range) {
                this.code -= this.range
                b = 1
            }
            v = v * 2 + b
            this.normalize()
        }
        return v
    }
}

// ---- the model (sections 4.2 and 4.3) -------------------------------------------------------------

export const CTX = {
    /** bit 0: the record is a plain or faulted sample */
    sample: 0,
    /** bit 0: the sample is not faulted */
    fault: 1,
    /** time residual of a sample: zero, sign, L1..L4 */
    time: 2,
    /** cold-junction residual: zero, sign, L1..L4 */
    cj: 8,
    /** thermocouple residual, per activity bucket 0..2: zero, sign, L1..L4 */
    tc: 14,
    /** thermocouple residual bit lengths L5..L16, shared by the buckets */
    tcLong: 32,
    /** thermocouple residual mantissa top bit for L = 2..7 */
    tcMant: 44,
    /** bit 0: another record of a known kind below 16 with its own length (4 bits of kind, no length) */
    short: 50,
    /** bit 0: a payload byte of a short-form record coded as such (not a seal's mac) is zero */
    byte: 51,
    count: 52,
} as const

/** Initial probabilities of a 0, per context (section 4.3): typical thermocouple statistics. */
export const PRIORS: readonly number[] = [
    63488, 63488, 63488, 49152, 16384, 16384, 16384, 16384, 55808, 32768, 43008, 33024, 34560, 32768, 12288, 38144, 20224, 35584, 33280,
    27136, 17408, 32768, 19456, 23040, 28416, 27136, 14080, 33536, 15616, 18432, 23552, 23808, 22528, 35840, 35072, 36608, 34304, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 41728, 37120, 36096, 32256, 34560, 35840, 61440, 40960,
]

const SEAL_LEN = 26
const SAMPLE_LEN = 12
const T_MAX = 0xffffffff
const EMA_CLAMP = 2 ** 20
/** the mean predictor averages at most this many samples, and restarts on a jump of at least MEAN_JUMP_MIN */
export const MEAN_SPAN = 32
const MEAN_JUMP_MIN = 6
/** kinds the short form can name (4 bits) */
const SHORT_KINDS = 16
const I32_MIN = -(2 ** 31)
const I32_MAX = 2 ** 31 - 1
const U16_MAX = 0xffff

function clampI32(v: number): number {
    return v < I32_MIN ? I32_MIN : v > I32_MAX ? I32_MAX : v
}
function clampI16(v: number): number {
    return v < -32768 ? -32768 : v > 32767 ? 32767 : v
}
/** a - b of two u32 as an i32 (mod 2^32) */
function diffI32(a: number, b: number): number {
    return (a - b) | 0
}
/** b + d mod 2^32 */
function addU32(b: number, d: number): number {
    return (b + d) >>> 0
}
function bitLength(m: number): number {
    let l = 0
    while (m >= 1) {
        m = Math.floor(m / 2)
        l++
    }
    return l
}

/** Everything a packed stream's model carries from one record to the next (section 4.3). */
export interface PackModel {
    p: number[]
    /** records coded in this stream; the first one sets `prevT` */
    records: number
    /** plain samples coded (saturates at 65535): drives the adaptation shift and the predictors */
    n: number
    prevT: number
    prevSampleT: number
    prevSampleDt: number
    t1: number
    t2: number
    ema: number
    /** samples in the mean since it last restarted (1..MEAN_SPAN) */
    k: number
    scores: number[]
    cj1: number
    cj2: number
    hasSeal: boolean
    sealEpoch: number
    sealSeq: number
}

export function newModel(): PackModel {
    return {
        p: PRIORS.slice(),
        records: 0,
        n: 0,
        prevT: 0,
        prevSampleT: 0,
        prevSampleDt: 0,
        t1: 0,
        t2: 0,
        ema: 0,
        k: 0,
        scores: [0, 0, 0, 0],
        cj1: 0,
        cj2: 0,
        hasSeal: false,
        sealEpoch: 0,
        sealSeq: 0,
    }
}

/** The four thermocouple predictions: last, linear, mean, damped trend (into `out` when given: the decoder reuses one array). */
function predictions(m: PackModel, out: number[] = new Array<number>(4)): number[] {
    out[0] = m.t1
    out[1] = clampI32(2 * m.t1 - m.t2)
    out[2] = Math.floor((m.ema + 512) / 1024)
    out[3] = clampI32(m.t1 + Math.floor((m.t1 - m.t2) / 2))
    return out
}

/** index of the prediction with the lowest score (the first on a tie) */
function chosen(m: PackModel): number {
    if (m.n < 2) return 0
    let best = 0
    for (let i = 1; i < 4; i++) if (m.scores[i] < m.scores[best]) best = i
    return best
}

function bucket(score: number): number {
    return score < 768 ? 0 : score < 3072 ? 1 : 2
}

/**
 * After a plain sample: scores, mean, history. The mean averages the samples since the level last
 * jumped (at most MEAN_SPAN of them), so it settles within a few samples after a door opening; a
 * jump is a reading farther from the mean than twice the last-value predictor's typical error.
 */
function learnSample(m: PackModel, tc: number, cj: number, preds: number[]) {
    if (m.n >= 1)
        for (let i = 0; i < 4; i++) {
            const e = Math.min(Math.abs(tc - preds[i]), 255)
            m.scores[i] = m.scores[i] - Math.floor(m.scores[i] / 16) + e * 16
        }
    if (m.n === 0 || Math.abs(tc - preds[2]) > Math.max(MEAN_JUMP_MIN, Math.floor(m.scores[0] / 128))) m.k = 0
    if (m.k < MEAN_SPAN) m.k++
    const x = (tc < -EMA_CLAMP ? -EMA_CLAMP : tc > EMA_CLAMP ? EMA_CLAMP : tc) * 1024
    m.ema = m.k === 1 ? x : m.ema + Math.floor((x - m.ema) / m.k)
    m.t2 = m.n === 0 ? tc : m.t1
    m.t1 = tc
    m.cj2 = m.n === 0 ? cj : m.cj1
    m.cj1 = cj
    if (m.n < U16_MAX) m.n++
}

function zigzag(d: number): number {
    return d >= 0 ? 2 * d : -2 * d - 1
}
function unzigzag(z: number): number {
    return z % 2 ? -(z + 1) / 2 : z / 2
}

// ---- encoder ---------------------------------------------------------------------------------------

/**
 * Packs canonical records into one stream. Can stop after any record (`finish()`) and go on from a
 * saved state (`PackEncoder.resume`), so the open block of a logger grows one record per wake.
 */
export class PackEncoder {
    readonly rc: RangeEncoder
    readonly m: PackModel
    /** seq of the next record (checked: streams hold consecutive records) */
    nextSeq: number

    constructor(firstSeq: number, rc?: RangeEncoder, m?: PackModel) {
        this.nextSeq = firstSeq
        this.rc = rc ?? new RangeEncoder()
        this.m = m ?? newModel()
    }

    private bit(ctx: number, b: number) {
        this.rc.bit(this.m.p, ctx, b, adaptShift(this.m.n))
    }

    /** zero, sign, bit length (L1..L4 at ctx+2.., longer ones shared or direct), mantissa */
    private signed(ctx: number, d: number, tc: boolean) {
        this.bit(ctx, d === 0 ? 0 : 1)
        if (d === 0) return
        this.bit(ctx + 1, d < 0 ? 1 : 0)
        const mag = Math.abs(d)
        const len = bitLength(mag)
        for (let i = 1; i <= 31; i++) {
            const more = len > i ? 1 : 0
            if (i <= 4) this.bit(ctx + 1 + i, more)
            else if (tc && i <= 16) this.bit(CTX.tcLong + i - 5, more)
            else this.rc.direct(more, 1)
            if (!more) break
        }
        if (len >= 2) {
            const rest = mag - 2 ** (len - 1)
            const top = Math.floor(rest / 2 ** (len - 2)) % 2
            if (tc && len <= 7) this.bit(CTX.tcMant + len - 2, top)
            else this.rc.direct(top, 1)
            if (len >= 3) this.rc.direct(rest % 2 ** (len - 2), len - 2)
        }
    }

    /** payload bytes from `from` on: a context bit, 0 for a zero byte, else 1 and its 8 direct bits */
    private bytes(rec: Buffer, from: number) {
        for (let k = from; k < rec.length; k++) {
            this.bit(CTX.byte, rec[k] ? 1 : 0)
            if (rec[k]) this.rc.direct(rec[k], 8)
        }
    }

    /** order-0 exp-Golomb of v >= 0 in direct bits: n zeros, then v + 1 in n + 1 bits */
    private expGolomb(v: number) {
        const n = bitLength(v + 1) - 1
        this.rc.direct(0, n)
        this.rc.direct(v + 1, n + 1)
    }

    private time(t: number, sample: boolean) {
        const m = this.m
        if (m.records === 0) {
            this.rc.direct(t, 32)
            m.prevSampleT = t
            m.prevSampleDt = 0
        } else if (sample) this.signed(CTX.time, (diffI32(t, m.prevSampleT) - m.prevSampleDt) | 0, false)
        else this.expGolomb(zigzag(diffI32(t, m.prevT)))
        if (sample) {
            if (m.records > 0) m.prevSampleDt = diffI32(t, m.prevSampleT)
            m.prevSampleT = t
        }
        m.prevT = t
    }

    /** Append one canonical record (its seq must be `nextSeq`). */
    add(rec: Buffer) {
        const seq = rec.readUInt32LE(0)
        if (seq !== this.nextSeq) throw new RangeError(`record seq ${seq}, stream expects ${this.nextSeq}`)
        const kind = rec[4]
        const len = rec[5]
        if (rec.length !== RECORD_HEADER_LEN + len || len < 4) throw new RangeError("not a canonical record")
        const m = this.m
        const t = rec.readUInt32LE(6)
        if (kind === KIND.sample && len === SAMPLE_LEN) {
            const tc = rec.readInt32LE(10)
            const cj = rec.readInt16LE(14)
            const sr = rec[16]
            const sflags = rec[17]
            this.bit(CTX.sample, 0)
            const faulted = sr !== 0 || sflags !== 0
            this.bit(CTX.fault, faulted ? 1 : 0)
            this.time(t, true)
            if (faulted) {
                this.rc.direct(sr, 8)
                this.rc.direct(sflags, 8)
                this.rc.direct(tc >>> 0, 32)
                this.rc.direct(cj & 0xffff, 16)
            } else if (m.n === 0) {
                this.rc.direct(cj & 0xffff, 16)
                this.rc.direct(tc >>> 0, 32)
                learnSample(m, tc, cj, [tc, tc, tc, tc])
            } else {
                const pcj = m.n >= 2 ? clampI16(2 * m.cj1 - m.cj2) : m.cj1
                this.signed(CTX.cj, cj - pcj, false)
                const preds = predictions(m)
                const i = chosen(m)
                this.signed(CTX.tc + 6 * bucket(m.scores[i]), tc - preds[i], true)
                learnSample(m, tc, cj, preds)
            }
        } else {
            this.bit(CTX.sample, 1)
            const short = kind < SHORT_KINDS && PAYLOAD_LEN[kind] === len
            this.bit(CTX.short, short ? 0 : 1)
            if (short) this.rc.direct(kind, 4)
            else {
                this.rc.direct(kind, 8)
                this.rc.direct(len, 8)
            }
            this.time(t, false)
            if (short && kind === KIND.time) {
                // the clock's offset from UTC: small once the clock is set
                const d = rec.readUInt32LE(10) + rec.readUInt32LE(14) * 2 ** 32 - 1000 * t
                const near = d >= I32_MIN && d <= I32_MAX
                this.rc.direct(near ? 0 : 1, 1)
                if (near) this.expGolomb(zigzag(d))
                this.bytes(rec, near ? 18 : 10)
            } else if (short && kind === KIND.alarm) {
                // an alarm states the reading that raised or cleared it: the last sample's
                this.rc.direct(rec[10], 8)
                this.expGolomb(zigzag(rec.readInt32LE(11) - m.t1))
            } else if (kind === KIND.seal && len === SEAL_LEN) {
                const epoch = rec.readUInt32LE(10)
                const count = rec.readUInt16LE(14)
                const nextEpoch = m.hasSeal && epoch === m.sealEpoch + 1
                if (m.hasSeal) this.rc.direct(nextEpoch ? 0 : 1, 1)
                if (!nextEpoch) this.rc.direct(epoch, 32)
                const impliedCount = m.hasSeal && count === seq - m.sealSeq - 1
                if (m.hasSeal) this.rc.direct(impliedCount ? 0 : 1, 1)
                if (!impliedCount) this.rc.direct(count, 16)
                for (let k = 16; k < 32; k++) this.rc.direct(rec[k], 8)
                m.hasSeal = true
                m.sealEpoch = epoch
                m.sealSeq = seq
            } else if (short) this.bytes(rec, RECORD_HEADER_LEN + 4)
            else for (let k = RECORD_HEADER_LEN + 4; k < rec.length; k++) this.rc.direct(rec[k], 8)
        }
        m.records++
        this.nextSeq++
    }

    /** the stream as stored: everything added so far, decodable */
    finish(): Buffer {
        return this.rc.finish()
    }
}

// ---- decoder ---------------------------------------------------------------------------------------

export interface DecodePackOptions {
    /** where errors say the stream is, e.g. "block 3" */
    where?: string
}

// The decoder's steps, module functions rather than closures inside decodePack: the TypeScript
// loader (tsx, keepNames) names every closure it creates with Object.defineProperty, about 0.3 us
// each, on every call.

/** one bit in context `ctx` */
function bit(rc: RangeDecoder, m: PackModel, ctx: number): number {
    return rc.bit(m.p, ctx, adaptShift(m.n))
}

/** zero, sign, bit length (L1..L4 at ctx+2.., longer ones shared or direct), mantissa */
function signed(rc: RangeDecoder, m: PackModel, ctx: number, tc: boolean): number {
    if (!bit(rc, m, ctx)) return 0
    const neg = bit(rc, m, ctx + 1)
    let len = 1
    for (let i = 1; i <= 31; i++) {
        const more = i <= 4 ? bit(rc, m, ctx + 1 + i) : tc && i <= 16 ? bit(rc, m, CTX.tcLong + i - 5) : rc.direct(1)
        if (!more) break
        len++
    }
    let mag = 1
    if (len >= 2) {
        const top = tc && len <= 7 ? bit(rc, m, CTX.tcMant + len - 2) : rc.direct(1)
        const low = len >= 3 ? rc.direct(len - 2) : 0
        mag = 2 ** (len - 1) + top * 2 ** (len - 2) + low
    }
    return neg ? -mag : mag
}

/** payload bytes from `from` on */
function bytes(rc: RangeDecoder, m: PackModel, rec: Buffer, from: number): void {
    for (let b = from; b < rec.length; b++) rec[b] = bit(rc, m, CTX.byte) ? rc.direct(8) : 0
}

/** order-0 exp-Golomb in direct bits; `k`: the record's index in the stream (for the error) */
function expGolomb(rc: RangeDecoder, where: string, k: number): number {
    let n = 0
    while (!rc.direct(1)) {
        if (++n > 40) throw new FormatError(`${where}: record ${k}: exp-Golomb prefix too long`)
    }
    return 2 ** n + rc.direct(n) - 1
}

function time(rc: RangeDecoder, m: PackModel, sample: boolean, where: string, k: number): number {
    let t: number
    if (m.records === 0) {
        t = rc.direct(32)
        m.prevSampleT = t
        m.prevSampleDt = 0
    } else if (sample) t = addU32(m.prevSampleT, (m.prevSampleDt + signed(rc, m, CTX.time, false)) | 0)
    else {
        const d = unzigzag(expGolomb(rc, where, k))
        if (d < I32_MIN || d > I32_MAX) throw new FormatError(`${where}: record ${k}: time step out of range`)
        t = addU32(m.prevT, d)
    }
    if (sample) {
        if (m.records > 0) m.prevSampleDt = diffI32(t, m.prevSampleT)
        m.prevSampleT = t
    }
    m.prevT = t
    return t
}

/** built only for an error message: a string per record is a measurable part of decoding */
function at(where: string, k: number, seq: number): string {
    return `${where}: record ${k} (seq ${seq})`
}

/**
 * Decodes exactly `count` records numbered from `firstSeq` out of a packed stream. Throws a one-line
 * FormatError (400) when a record cannot be what the stream says (a known kind with another length, a
 * seq past 0xfffffffe, a time past u32, a stream read more than DECODE_OVERREAD_MAX bytes past its end).
 */
export function decodePack(buf: Buffer, firstSeq: number, count: number, opts: DecodePackOptions = {}): Buffer[] {
    const where = opts.where ?? "stream"
    const rc = new RangeDecoder(buf)
    const m = newModel()
    const out: Buffer[] = []
    // the records are views into one buffer per stream (one allocation, not one per record); a
    // sample is 18 bytes, anything longer takes a new buffer when the rest does not fit. Below
    // Buffer.poolSize / 2 (a batch part of samples) that buffer is cut from Node's pool: no
    // backing store of its own to create and later free.
    let arena = Buffer.allocUnsafe(0)
    let used = 0
    const preds: number[] = [0, 0, 0, 0]
    for (let k = 0; k < count; k++) {
        const seq = firstSeq + k
        if (seq > MAX_SEQ) throw new FormatError(`${at(where, k, seq)}: seq past 0xfffffffe`)
        let rec: Buffer
        if (!bit(rc, m, CTX.sample)) {
            const faulted = bit(rc, m, CTX.fault)
            const t = time(rc, m, true, where, k)
            let tc: number, cj: number, sr: number, sflags: number
            if (faulted) {
                sr = rc.direct(8)
                sflags = rc.direct(8)
                tc = rc.direct(32) | 0
                cj = (rc.direct(16) << 16) >> 16
                if (sr === 0 && sflags === 0) throw new FormatError(`${at(where, k, seq)}: a faulted sample without fault bits`)
            } else {
                sr = 0
                sflags = 0
                if (m.n === 0) {
                    cj = (rc.direct(16) << 16) >> 16
                    tc = rc.direct(32) | 0
                    learnSample(m, tc, cj, [tc, tc, tc, tc])
                } else {
                    const pcj = m.n >= 2 ? clampI16(2 * m.cj1 - m.cj2) : m.cj1
                    cj = pcj + signed(rc, m, CTX.cj, false)
                    if (cj < -32768 || cj > 32767) throw new FormatError(`${at(where, k, seq)}: cold junction out of range`)
                    predictions(m, preds)
                    const i = chosen(m)
                    tc = preds[i] + signed(rc, m, CTX.tc + 6 * bucket(m.scores[i]), true)
                    if (tc < I32_MIN || tc > I32_MAX) throw new FormatError(`${at(where, k, seq)}: thermocouple out of range`)
                    learnSample(m, tc, cj, preds)
                }
            }
            // every byte is written below (seq last), byte by byte: the values are in range (checked
            // above), Buffer's write methods would check them again
            if (used + RECORD_HEADER_LEN + SAMPLE_LEN > arena.length) {
                arena = Buffer.allocUnsafe((count - k) * (RECORD_HEADER_LEN + SAMPLE_LEN))
                used = 0
            }
            rec = arena.subarray(used, (used += RECORD_HEADER_LEN + SAMPLE_LEN))
            rec[4] = KIND.sample
            rec[5] = SAMPLE_LEN
            rec[6] = t
            rec[7] = t >>> 8
            rec[8] = t >>> 16
            rec[9] = t >>> 24
            rec[10] = tc
            rec[11] = tc >> 8
            rec[12] = tc >> 16
            rec[13] = tc >> 24
            rec[14] = cj
            rec[15] = cj >> 8
            rec[16] = sr
            rec[17] = sflags
        } else {
            const short = bit(rc, m, CTX.short) === 0
            const kind = short ? rc.direct(4) : rc.direct(8)
            const len = short ? (PAYLOAD_LEN[kind] ?? 0) : rc.direct(8)
            if (short && !len) throw new FormatError(`${at(where, k, seq)}: short form of unknown kind ${kind}`)
            checkPayloadLen(kind, len, at(where, k, seq))
            if (kind === KIND.sample) throw new FormatError(`${at(where, k, seq)}: a sample coded as another record`)
            const t = time(rc, m, false, where, k)
            // every byte is written below (seq last)
            if (used + RECORD_HEADER_LEN + len > arena.length) {
                arena = Buffer.allocUnsafe(Math.max(RECORD_HEADER_LEN + len, (count - k) * (RECORD_HEADER_LEN + SAMPLE_LEN)))
                used = 0
            }
            rec = arena.subarray(used, (used += RECORD_HEADER_LEN + len))
            rec[4] = kind
            rec[5] = len
            rec.writeUInt32LE(t, 6)
            if (short && kind === KIND.time) {
                if (rc.direct(1) === 0) {
                    const utc = 1000 * t + unzigzag(expGolomb(rc, where, k))
                    if (utc < 0 || utc > Number.MAX_SAFE_INTEGER) throw new FormatError(`${at(where, k, seq)}: utc out of range`)
                    rec.writeUInt32LE(utc % 2 ** 32, 10)
                    rec.writeUInt32LE(Math.floor(utc / 2 ** 32), 14)
                    bytes(rc, m, rec, 18)
                } else bytes(rc, m, rec, 10)
            } else if (short && kind === KIND.alarm) {
                rec[10] = rc.direct(8)
                const tc = m.t1 + unzigzag(expGolomb(rc, where, k))
                if (tc < I32_MIN || tc > I32_MAX) throw new FormatError(`${at(where, k, seq)}: alarm reading out of range`)
                rec.writeInt32LE(tc, 11)
            } else if (kind === KIND.seal && len === SEAL_LEN) {
                const nextEpoch = m.hasSeal && rc.direct(1) === 0
                const epoch = nextEpoch ? m.sealEpoch + 1 : rc.direct(32)
                if (epoch > T_MAX) throw new FormatError(`${at(where, k, seq)}: seal epoch past u32`)
                const impliedCount = m.hasSeal && rc.direct(1) === 0
                const count = impliedCount ? seq - m.sealSeq - 1 : rc.direct(16)
                if (count > U16_MAX) throw new FormatError(`${at(where, k, seq)}: seal count past u16`)
                rec.writeUInt32LE(epoch, 10)
                rec.writeUInt16LE(count, 14)
                for (let b = 16; b < 32; b++) rec[b] = rc.direct(8)
                m.hasSeal = true
                m.sealEpoch = epoch
                m.sealSeq = seq
            } else if (short) bytes(rc, m, rec, RECORD_HEADER_LEN + 4)
            else for (let b = RECORD_HEADER_LEN + 4; b < rec.length; b++) rec[b] = rc.direct(8)
        }
        rec[0] = seq
        rec[1] = seq >>> 8
        rec[2] = seq >>> 16
        rec[3] = seq >>> 24
        m.records++
        out.push(rec)
        if (rc.consumed > buf.length + DECODE_OVERREAD_MAX)
            throw new FormatError(`${at(where, k, seq)}: the stream ends before its records`)
    }
    return out
}

/** Typed records of a packed stream (decodePack, then the fields of each). */
export function decodePackRecords(buf: Buffer, firstSeq: number, count: number, opts: DecodePackOptions = {}): LogRecord[] {
    return decodePack(buf, firstSeq, count, opts).map(r => decodeFields(r.readUInt32LE(0), r[4], r.subarray(RECORD_HEADER_LEN)))
}

/** Packs consecutive canonical records (from their first seq) into one finished stream. */
export function encodePack(records: Buffer[]): Buffer {
    if (!records.length) return Buffer.alloc(0)
    const enc = new PackEncoder(records[0].readUInt32LE(0))
    for (const r of records) enc.add(r)
    return enc.finish()
}
