import { KIND_SAMPLE, KIND_SEAL, KIND_TIME, KIND_ALARM, HEADER_LEN } from "./record"

/**
 * The packed encoding of records (docs/format.md section 4): an adaptive binary range coder over a
 * small model of what the logger records. Flash blocks and batch bodies carry packed streams;
 * decoding gives back the canonical records byte for byte. The host's twin is src/format/pack.ts;
 * both are checked against docs/vectors.
 *
 * Everything is exact integer arithmetic on doubles (no `>>` on values that may pass 2^31), so the
 * VM and the host agree bit for bit.
 */
const TOP = 16777216 // 2^24
const TWO32 = 4294967296
const PROB_ONE = 65536
const PROB_MIN = 32
const PROB_MAX = 65504
const SAMPLE_LEN = 12
const SEAL_LEN = 26
const EMA_CLAMP = 1048576 // 2^20
const I32_MIN = -2147483648
const I32_MAX = 2147483647
/** the most trailing zero bytes a finish drops (docs/format.md 4.1) */
const FLUSH_TRIM_MAX = 8

/** contexts (section 4.3) */
export const CTX_SAMPLE = 0
export const CTX_FAULT = 1
export const CTX_TIME = 2
export const CTX_CJ = 8
export const CTX_TC = 14
export const CTX_TC_LONG = 32
export const CTX_TC_MANT = 44
export const CTX_SHORT = 50
export const CTX_BYTE = 51
export const CTX_COUNT = 52
/** payload length of each kind below 16 the short form names (0: none), docs/format.md section 2 */
const SHORT_LEN = hex`000c1a140e2009221a1e080c0c`
/** the mean predictor: at most this many samples, restarted by a jump of at least MEAN_JUMP_MIN */
const MEAN_SPAN = 32
const MEAN_JUMP_MIN = 6

const PRIORS = [
    63488, 63488, 63488, 49152, 16384, 16384, 16384, 16384, 55808, 32768, 43008, 33024, 34560, 32768, 12288, 38144, 20224, 35584, 33280,
    27136, 17408, 32768, 19456, 23040, 28416, 27136, 14080, 33536, 15616, 18432, 23552, 23808, 22528, 35840, 35072, 36608, 34304, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 41728, 37120, 36096, 32256, 34560, 35840, 61440, 40960,
]

/**
 * x mod m for x >= 0. DeviceScript's `%` works on int32 and is wrong from 2^31 on (measured:
 * 3409444864 % 16777216 gives -13107200), and coder registers go up to 2^33.
 */
function mod(x: number, m: number): number {
    return x - Math.floor(x / m) * m
}

/** 2^k for k = 0..53, built by doubling (exact) */
const POW2: number[] = [1]
for (let k = 1; k <= 53; k++) POW2.push(POW2[k - 1] * 2)

/** Probability adaptation shift after `n` plain samples in the stream. */
export function adaptShift(n: number): number {
    return n < 2 ? 1 : n < 6 ? 2 : n < 14 ? 3 : n < 30 ? 4 : 5
}

function adapt(p: number, bit: number, shift: number): number {
    const q = bit ? p - (p >> shift) : p + ((PROB_ONE - p) >> shift)
    return q < PROB_MIN ? PROB_MIN : q > PROB_MAX ? PROB_MAX : q
}

function clampI32(v: number): number {
    return v < I32_MIN ? I32_MIN : v > I32_MAX ? I32_MAX : v
}

function clampI16(v: number): number {
    return v < -32768 ? -32768 : v > 32767 ? 32767 : v
}

function bitLength(m: number): number {
    let l = 0
    while (m >= 1) {
        m = Math.floor(m / 2)
        l++
    }
    return l
}

/** Everything a stream's model carries from one record to the next (section 4.3). */
export class PackModel {
    p: number[] = PRIORS.slice(0)
    records = 0
    n = 0
    prevT = 0
    prevSampleT = 0
    prevSampleDt = 0
    t1 = 0
    t2 = 0
    ema = 0
    /** samples in the mean since it last restarted */
    k = 0
    scores: number[] = [0, 0, 0, 0]
    cj1 = 0
    cj2 = 0
    hasSeal = false
    sealEpoch = 0
    sealSeq = 0

    /** the four thermocouple predictions: last, linear, mean (EMA), damped trend */
    predictions(): number[] {
        return [
            this.t1,
            clampI32(2 * this.t1 - this.t2),
            Math.floor((this.ema + 512) / 1024),
            clampI32(this.t1 + Math.floor((this.t1 - this.t2) / 2)),
        ]
    }

    chosen(): number {
        if (this.n < 2) return 0
        let best = 0
        for (let i = 1; i < 4; i++) if (this.scores[i] < this.scores[best]) best = i
        return best
    }

    predictCj(): number {
        return this.n >= 2 ? clampI16(2 * this.cj1 - this.cj2) : this.cj1
    }

    learn(tc: number, cj: number, preds: number[]) {
        if (this.n >= 1)
            for (let i = 0; i < 4; i++) {
                const e = Math.min(Math.abs(tc - preds[i]), 255)
                this.scores[i] = this.scores[i] - Math.floor(this.scores[i] / 16) + e * 16
            }
        // the mean restarts when the level jumps (a door opened): farther than twice the last-value error
        if (this.n === 0 || Math.abs(tc - preds[2]) > Math.max(MEAN_JUMP_MIN, Math.floor(this.scores[0] / 128))) this.k = 0
        if (this.k < MEAN_SPAN) this.k++
        const x = (tc < -EMA_CLAMP ? -EMA_CLAMP : tc > EMA_CLAMP ? EMA_CLAMP : tc) * 1024
        this.ema = this.k === 1 ? x : this.ema + Math.floor((x - this.ema) / this.k)
        this.t2 = this.n === 0 ? tc : this.t1
        this.t1 = tc
        this.cj2 = this.n === 0 ? cj : this.cj1
        this.cj1 = cj
        if (this.n < 65535) this.n++
    }
}

function bucketOf(score: number): number {
    return score < 768 ? 0 : score < 3072 ? 1 : 2
}

/** Binary range encoder (section 4.1); `out` holds the bytes no carry can change any more. */
export class RangeEncoder {
    low = 0
    range = 0xffffffff
    cache = 0
    hasCache = false
    ffCount = 0
    out: number[] = []

    private shiftLow() {
        if (this.low < 0xff000000 || this.low >= TWO32) {
            const carry = this.low >= TWO32 ? 1 : 0
            if (this.hasCache) this.out.push((this.cache + carry) & 0xff)
            for (; this.ffCount > 0; this.ffCount--) this.out.push((0xff + carry) & 0xff)
            this.cache = Math.floor(this.low / TOP) & 0xff
            this.hasCache = true
        } else this.ffCount++
        this.low = mod(this.low, TOP) * 256
    }

    private normalize() {
        while (this.range < TOP) {
            this.range *= 256
            this.shiftLow()
        }
    }

    bit(p: number[], i: number, bit: number, shift: number) {
        const bound = (this.range >>> 16) * p[i]
        if (bit) {
            this.low += bound
            this.range -= bound
        } else this.range = bound
        p[i] = adapt(p[i], bit, shift)
        this.normalize()
    }

    direct(v: number, n: number) {
        for (let k = n - 1; k >= 0; k--) {
            this.range = Math.floor(this.range / 2)
            if (mod(Math.floor(v / POW2[k]), 2)) this.low += this.range
            this.normalize()
        }
    }

    copy(): RangeEncoder {
        const c = new RangeEncoder()
        c.low = this.low
        c.range = this.range
        c.cache = this.cache
        c.hasCache = this.hasCache
        c.ffCount = this.ffCount
        c.out = this.out.slice(0)
        return c
    }

    /**
     * The bytes that finish the stream (section 4.1, "finish"), without changing this encoder: the
     * value with the most trailing zero bytes in [low, low + range) shifted out, its trailing zero
     * bytes dropped. The whole stream is every byte emitted so far followed by these.
     */
    flushBytes(): number[] {
        const c = this.copy()
        c.out = []
        for (let k = 1; k <= 4; k++) {
            const m = POW2[32 - 8 * k]
            const v = Math.ceil(c.low / m) * m
            if (v < c.low + c.range) {
                c.low = v
                break
            }
        }
        for (let i = 0; i < 5; i++) c.shiftLow()
        // drop trailing zeros (missing bytes decode as 0), at most FLUSH_TRIM_MAX: a carry can turn a
        // long run of pending 0xFF bytes into zeros, and a decoder reads a byte past the end for each
        let n = c.out.length
        const keep = c.out.length > FLUSH_TRIM_MAX ? c.out.length - FLUSH_TRIM_MAX : 0
        while (n > keep && c.out[n - 1] === 0) n--
        return c.out.slice(0, n)
    }

    /** the bytes emitted since the last call (the caller stores them) */
    takeOut(): Buffer {
        const b = Buffer.alloc(this.out.length)
        for (let i = 0; i < this.out.length; ++i) b[i] = this.out[i]
        this.out = []
        return b
    }
}

/** Packs consecutive canonical records into one stream (docs/format.md 4.2). */
export class PackEncoder {
    rc = new RangeEncoder()
    m = new PackModel()

    constructor(public nextSeq: number) {}

    private bit(ctx: number, b: number) {
        this.rc.bit(this.m.p, ctx, b, adaptShift(this.m.n))
    }

    private signed(ctx: number, d: number, tc: boolean) {
        this.bit(ctx, d === 0 ? 0 : 1)
        if (d === 0) return
        this.bit(ctx + 1, d < 0 ? 1 : 0)
        const mag = Math.abs(d)
        const len = bitLength(mag)
        for (let i = 1; i <= 31; i++) {
            const more = len > i ? 1 : 0
            if (i <= 4) this.bit(ctx + 1 + i, more)
            else if (tc && i <= 16) this.bit(CTX_TC_LONG + i - 5, more)
            else this.rc.direct(more, 1)
            if (!more) break
        }
        if (len >= 2) {
            const rest = mag - POW2[len - 1]
            const top = mod(Math.floor(rest / POW2[len - 2]), 2)
            if (tc && len <= 7) this.bit(CTX_TC_MANT + len - 2, top)
            else this.rc.direct(top, 1)
            if (len >= 3) this.rc.direct(mod(rest, POW2[len - 2]), len - 2)
        }
    }

    /** a signed value zig-zagged, as order-0 exp-Golomb in direct bits (section 4.2.1) */
    private golomb(d: number) {
        const v = d >= 0 ? 2 * d : -2 * d - 1
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
        } else if (sample) this.signed(CTX_TIME, (((t - m.prevSampleT) | 0) - m.prevSampleDt) | 0, false)
        else this.golomb((t - m.prevT) | 0)
        if (sample) {
            if (m.records > 0) m.prevSampleDt = (t - m.prevSampleT) | 0
            m.prevSampleT = t
        }
        m.prevT = t
    }

    /** Append one canonical record; its seq must be nextSeq. */
    add(rec: Buffer) {
        const seq = rec.getAt(0, "u32")
        if (seq !== this.nextSeq) throw new RangeError(`pack: record seq ${seq}, expected ${this.nextSeq}`)
        const kind = rec[4]
        const len = rec[5]
        const m = this.m
        const t = rec.getAt(6, "u32")
        if (kind === KIND_SAMPLE && len === SAMPLE_LEN) {
            const tc = rec.getAt(10, "i32")
            const cj = rec.getAt(14, "i16")
            const sr = rec[16]
            const sflags = rec[17]
            this.bit(CTX_SAMPLE, 0)
            const faulted = sr !== 0 || sflags !== 0
            this.bit(CTX_FAULT, faulted ? 1 : 0)
            this.time(t, true)
            if (faulted) {
                this.rc.direct(sr, 8)
                this.rc.direct(sflags, 8)
                this.rc.direct(tc >>> 0, 32)
                this.rc.direct(cj & 0xffff, 16)
            } else if (m.n === 0) {
                this.rc.direct(cj & 0xffff, 16)
                this.rc.direct(tc >>> 0, 32)
                m.learn(tc, cj, [tc, tc, tc, tc])
            } else {
                this.signed(CTX_CJ, cj - m.predictCj(), false)
                const preds = m.predictions()
                const i = m.chosen()
                this.signed(CTX_TC + 6 * bucketOf(m.scores[i]), tc - preds[i], true)
                m.learn(tc, cj, preds)
            }
        } else {
            this.bit(CTX_SAMPLE, 1)
            const short = kind < SHORT_LEN.length && SHORT_LEN[kind] === len
            this.bit(CTX_SHORT, short ? 0 : 1)
            if (short) this.rc.direct(kind, 4)
            else {
                this.rc.direct(kind, 8)
                this.rc.direct(len, 8)
            }
            this.time(t, false)
            // the payload after t goes byte by byte from `from`, after what the model predicts
            let from = HEADER_LEN + 4
            if (short && kind === KIND_TIME) {
                // the clock's offset from UTC (ms): small once the clock is set
                const d = rec.getAt(10, "u32") + rec.getAt(14, "u32") * TWO32 - 1000 * t
                const near = d >= I32_MIN && d <= I32_MAX
                this.rc.direct(near ? 0 : 1, 1)
                if (near) {
                    this.golomb(d)
                    from = 18
                }
            } else if (short && kind === KIND_ALARM) {
                // an alarm states the reading that raised or cleared it: the last sample's
                this.rc.direct(rec[10], 8)
                this.golomb(rec.getAt(11, "i32") - m.t1)
                from = rec.length
            } else if (kind === KIND_SEAL && len === SEAL_LEN) {
                const epoch = rec.getAt(10, "u32")
                const count = rec.getAt(14, "u16")
                const nextEpoch = m.hasSeal && epoch === m.sealEpoch + 1
                if (m.hasSeal) this.rc.direct(nextEpoch ? 0 : 1, 1)
                if (!nextEpoch) this.rc.direct(epoch, 32)
                const implied = m.hasSeal && count === seq - m.sealSeq - 1
                if (m.hasSeal) this.rc.direct(implied ? 0 : 1, 1)
                if (!implied) this.rc.direct(count, 16)
                m.hasSeal = true
                m.sealEpoch = epoch
                m.sealSeq = seq
                for (let k = 16; k < 32; k++) this.rc.direct(rec[k], 8)
                from = 32
            }
            // the rest byte by byte; in the short form a zero byte (flags, levels) costs a context bit
            for (let k = from; k < rec.length; k++) {
                if (short) this.bit(CTX_BYTE, rec[k] ? 1 : 0)
                if (rec[k] || !short) this.rc.direct(rec[k], 8)
            }
        }
        m.records++
        this.nextSeq++
    }

    /** bytes emitted since the last takeOut() */
    takeOut(): Buffer {
        return this.rc.takeOut()
    }

    /** the bytes that would finish the stream now */
    flushBytes(): Buffer {
        const f = this.rc.flushBytes()
        const b = Buffer.alloc(f.length)
        for (let i = 0; i < f.length; ++i) b[i] = f[i]
        return b
    }

    /** The coder registers and model (docs/format.md 4.4, PACK_STATE_LEN bytes); emitted bytes are not in it. */
    saveState(): Buffer {
        const b = Buffer.alloc(PACK_STATE_LEN)
        const rc = this.rc
        const m = this.m
        const hi = Math.floor(rc.low / TWO32)
        b.setAt(0, "u32", rc.low - hi * TWO32)
        b[4] = hi
        b.setAt(5, "u32", rc.range)
        b[9] = rc.cache
        b[10] = (rc.hasCache ? 1 : 0) | (m.hasSeal ? 2 : 0)
        b.setAt(11, "u16", rc.ffCount)
        for (let i = 0; i < CTX_COUNT; i++) b.setAt(13 + 2 * i, "u16", m.p[i])
        b.setAt(M, "u16", m.records)
        b.setAt(M + 2, "u16", m.n)
        b.setAt(M + 4, "u32", m.prevT)
        b.setAt(M + 8, "u32", m.prevSampleT)
        b.setAt(M + 12, "i32", m.prevSampleDt)
        b.setAt(M + 16, "i32", m.t1)
        b.setAt(M + 20, "i32", m.t2)
        b.setAt(M + 24, "i32", m.ema)
        for (let i = 0; i < 4; i++) b.setAt(M + 28 + 2 * i, "u16", m.scores[i])
        b.setAt(M + 36, "i16", m.cj1)
        b.setAt(M + 38, "i16", m.cj2)
        b.setAt(M + 40, "u32", m.sealEpoch)
        b.setAt(M + 44, "u32", m.sealSeq)
        b[M + 48] = m.k
        return b
    }

    /** An encoder that goes on from a saved state; `nextSeq` is the seq of its next record. */
    static resume(nextSeq: number, b: Buffer): PackEncoder {
        const e = new PackEncoder(nextSeq)
        const rc = e.rc
        const m = e.m
        rc.low = b.getAt(0, "u32") + b[4] * TWO32
        rc.range = b.getAt(5, "u32")
        rc.cache = b[9]
        rc.hasCache = (b[10] & 1) !== 0
        m.hasSeal = (b[10] & 2) !== 0
        rc.ffCount = b.getAt(11, "u16")
        for (let i = 0; i < CTX_COUNT; i++) m.p[i] = b.getAt(13 + 2 * i, "u16")
        m.records = b.getAt(M, "u16")
        m.n = b.getAt(M + 2, "u16")
        m.prevT = b.getAt(M + 4, "u32")
        m.prevSampleT = b.getAt(M + 8, "u32")
        m.prevSampleDt = b.getAt(M + 12, "i32")
        m.t1 = b.getAt(M + 16, "i32")
        m.t2 = b.getAt(M + 20, "i32")
        m.ema = b.getAt(M + 24, "i32")
        for (let i = 0; i < 4; i++) m.scores[i] = b.getAt(M + 28 + 2 * i, "u16")
        m.cj1 = b.getAt(M + 36, "i16")
        m.cj2 = b.getAt(M + 38, "i16")
        m.sealEpoch = b.getAt(M + 40, "u32")
        m.sealSeq = b.getAt(M + 44, "u32")
        m.k = b[M + 48]
        return e
    }
}

/** where the model's fields start in a saved state: after the registers and the probabilities */
const M = 13 + 2 * CTX_COUNT
/** bytes of a saved encoder state (docs/format.md 4.4) */
export const PACK_STATE_LEN = M + 49

/** Binary range decoder (section 4.1): bytes past the end read as 0. */
class RangeDecoder {
    code = 0
    range = 0xffffffff
    pos = 0

    constructor(
        readonly buf: Buffer,
        off: number,
    ) {
        this.pos = off
        for (let i = 0; i < 4; i++) this.code = this.code * 256 + this.next()
    }

    private next(): number {
        const b = this.pos < this.buf.length ? this.buf[this.pos] : 0
        this.pos++
        return b
    }

    private normalize() {
        while (this.range < TOP) {
            this.range *= 256
            this.code = mod(this.code, TOP) * 256 + this.next()
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

/**
 * Decodes a packed stream record by record (the caller yields between records: the VM allows only
 * so many instructions without a pause). `next()` returns undefined and sets `error` on a record the
 * stream cannot hold.
 */
export class PackDecoder {
    private rc: RangeDecoder
    private m = new PackModel()
    error: string = undefined

    constructor(
        buf: Buffer,
        off: number,
        public seq: number,
    ) {
        this.rc = new RangeDecoder(buf, off)
    }

    private bit(ctx: number): number {
        return this.rc.bit(this.m.p, ctx, adaptShift(this.m.n))
    }

    private signed(ctx: number, tc: boolean): number {
        if (!this.bit(ctx)) return 0
        const neg = this.bit(ctx + 1)
        let len = 1
        for (let i = 1; i <= 31; i++) {
            const more = i <= 4 ? this.bit(ctx + 1 + i) : tc && i <= 16 ? this.bit(CTX_TC_LONG + i - 5) : this.rc.direct(1)
            if (!more) break
            len++
        }
        let mag = 1
        if (len >= 2) {
            const top = tc && len <= 7 ? this.bit(CTX_TC_MANT + len - 2) : this.rc.direct(1)
            const low = len >= 3 ? this.rc.direct(len - 2) : 0
            mag = POW2[len - 1] + top * POW2[len - 2] + low
        }
        return neg ? -mag : mag
    }

    private time(sample: boolean): number {
        const m = this.m
        let t: number
        if (m.records === 0) {
            t = this.rc.direct(32)
            m.prevSampleT = t
            m.prevSampleDt = 0
        } else if (sample) t = (m.prevSampleT + ((m.prevSampleDt + this.signed(CTX_TIME, false)) | 0)) >>> 0
        else {
            const d = this.signedGolomb()
            if (d === undefined) return -1
            t = (m.prevT + d) >>> 0
        }
        if (sample) {
            if (m.records > 0) m.prevSampleDt = (t - m.prevSampleT) | 0
            m.prevSampleT = t
        }
        m.prevT = t
        return t
    }

    /** a zig-zagged exp-Golomb value (section 4.2.1); undefined past a 40-zero prefix */
    private signedGolomb(): number {
        let n = 0
        while (!this.rc.direct(1)) if (++n > 40) return undefined
        const z = POW2[n] + this.rc.direct(n) - 1
        return mod(z, 2) ? -(z + 1) / 2 : z / 2
    }

    private fail(why: string): Buffer {
        this.error = why
        return undefined
    }

    /** the next canonical record */
    next(): Buffer {
        const m = this.m
        const seq = this.seq
        let rec: Buffer
        if (!this.bit(CTX_SAMPLE)) {
            const faulted = this.bit(CTX_FAULT)
            const t = this.time(true)
            rec = Buffer.alloc(HEADER_LEN + SAMPLE_LEN)
            rec[4] = KIND_SAMPLE
            rec[5] = SAMPLE_LEN
            rec.setAt(6, "u32", t)
            if (faulted) {
                rec[16] = this.rc.direct(8)
                rec[17] = this.rc.direct(8)
                rec.setAt(10, "u32", this.rc.direct(32))
                rec.setAt(14, "u16", this.rc.direct(16))
                if (!rec[16] && !rec[17]) return this.fail("faulted sample without fault bits")
            } else if (m.n === 0) {
                rec.setAt(14, "u16", this.rc.direct(16))
                rec.setAt(10, "u32", this.rc.direct(32))
                const tc = rec.getAt(10, "i32")
                m.learn(tc, rec.getAt(14, "i16"), [tc, tc, tc, tc])
            } else {
                const cj = m.predictCj() + this.signed(CTX_CJ, false)
                const preds = m.predictions()
                const i = m.chosen()
                const tc = preds[i] + this.signed(CTX_TC + 6 * bucketOf(m.scores[i]), true)
                if (cj < -32768 || cj > 32767 || tc < I32_MIN || tc > I32_MAX) return this.fail("sample out of range")
                rec.setAt(10, "i32", tc)
                rec.setAt(14, "i16", cj)
                m.learn(tc, cj, preds)
            }
        } else {
            const short = this.bit(CTX_SHORT) === 0
            const kind = this.rc.direct(short ? 4 : 8)
            const len = short ? (kind < SHORT_LEN.length ? SHORT_LEN[kind] : 0) : this.rc.direct(8)
            if (len < 4 || kind === KIND_SAMPLE) return this.fail("bad record header")
            const t = this.time(false)
            if (t < 0) return this.fail("bad time step")
            rec = Buffer.alloc(HEADER_LEN + len)
            rec[4] = kind
            rec[5] = len
            rec.setAt(6, "u32", t)
            let from = HEADER_LEN + 4
            if (short && kind === KIND_TIME) {
                if (!this.rc.direct(1)) {
                    const d = this.signedGolomb()
                    const utc = d === undefined ? -1 : 1000 * t + d
                    if (utc < 0 || utc > 9007199254740991) return this.fail("bad utc")
                    const hi = Math.floor(utc / TWO32)
                    rec.setAt(10, "u32", utc - hi * TWO32)
                    rec.setAt(14, "u32", hi)
                    from = 18
                }
            } else if (short && kind === KIND_ALARM) {
                rec[10] = this.rc.direct(8)
                const d = this.signedGolomb()
                const tc = d === undefined ? NaN : m.t1 + d
                if (!(tc >= I32_MIN && tc <= I32_MAX)) return this.fail("bad alarm reading")
                rec.setAt(11, "i32", tc)
                from = rec.length
            } else if (kind === KIND_SEAL && len === SEAL_LEN) {
                const nextEpoch = m.hasSeal && this.rc.direct(1) === 0
                const epoch = nextEpoch ? m.sealEpoch + 1 : this.rc.direct(32)
                const implied = m.hasSeal && this.rc.direct(1) === 0
                const count = implied ? seq - m.sealSeq - 1 : this.rc.direct(16)
                if (count > 65535 || epoch > 0xffffffff) return this.fail("bad seal")
                rec.setAt(10, "u32", epoch)
                rec.setAt(14, "u16", count)
                m.hasSeal = true
                m.sealEpoch = epoch
                m.sealSeq = seq
                for (let k = 16; k < 32; k++) rec[k] = this.rc.direct(8)
                from = 32
            }
            for (let k = from; k < rec.length; k++) rec[k] = !short || this.bit(CTX_BYTE) ? this.rc.direct(8) : 0
        }
        rec.setAt(0, "u32", seq)
        m.records++
        this.seq++
        return rec
    }
}
