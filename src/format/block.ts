// The log in the logger's flash (docs/format.md section 5): blocks of packed records in the settings
// store, the open block's tail, and the bookkeeping values. Host tools use this to read a device's
// flash image (a read-out over USB, the simulator's export) and to write vectors; the firmware has
// its own implementation (devs/flash/).
import { HEAD_LEN, KEY_LEN, checkHead, checkKey, hashRun } from "./chain.js"
import { FormatError, MAX_SEQ } from "./record.js"
import { PRIORS, CTX, MEAN_SPAN, RangeEncoder, decodePack, newModel, type CoderState, type PackModel, PackEncoder } from "./pack.js"

/** Settings values longer than this cannot be read back with a 3-character key (platform notes). */
export const VALUE_MAX_LEN = 224
export const BLOCK_MAX_LEN = VALUE_MAX_LEN
/** first_seq u32 before the stream */
export const BLOCK_HEADER_LEN = 4
export const LOG_META_KEY = "lgmeta"
export const LOG_META_LEN = 72
export const LOG_ACK_KEY = "lgack"
export const LOG_ACK_LEN = 40
export const EPOCH_KEY = "ep"
export const EPOCH_LEN = 44
export const TAIL_KEY = "tl"
export const TAIL_VERSION = 4
export const TAIL_HEADER_LEN = 40
/** where the model's fields start in the pack state (4.4): after the registers and the probabilities */
const M = 13 + 2 * CTX.count
export const PACK_STATE_LEN = M + 49
export const TAIL_MAX_BYTES = VALUE_MAX_LEN - TAIL_HEADER_LEN - PACK_STATE_LEN
export const STATE_KEY = "st"
/** `seal_seq` in epoch 0: no seal before it */
export const SEAL_SEQ_NONE = 0xffffffff

/**
 * Block keys are reused round a ring of BLOCK_SLOTS names: the settings store keeps an entry for every
 * deleted key until the store is erased, so one new name per block would fill it in months.
 */
export const BLOCK_SLOTS = 64

/** Settings key of block `n`: "b" + 2 lower-case hex digits of n mod BLOCK_SLOTS. */
export function blockKey(n: number): string {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`block number out of range: ${n}`)
    return "b" + (n % BLOCK_SLOTS).toString(16).padStart(2, "0")
}

// ---- blocks -----------------------------------------------------------------------------------------

/** A closed block: first_seq and the finished packed stream of its records. */
export function encodeBlock(records: Buffer[]): Buffer {
    if (records.length < 1) throw new RangeError("a block holds at least one record")
    const first = Buffer.alloc(BLOCK_HEADER_LEN)
    first.writeUInt32LE(records[0].readUInt32LE(0), 0)
    const enc = new PackEncoder(records[0].readUInt32LE(0))
    for (const r of records) enc.add(r)
    const out = Buffer.concat([first, enc.finish()])
    if (out.length > BLOCK_MAX_LEN) throw new RangeError(`block of ${out.length} bytes exceeds ${BLOCK_MAX_LEN}`)
    return out
}

export function blockFirstSeq(buf: Buffer): number {
    if (buf.length < BLOCK_HEADER_LEN) throw new FormatError(`block of ${buf.length} bytes has no first_seq`)
    const s = buf.readUInt32LE(0)
    if (s > MAX_SEQ) throw new FormatError("block first_seq 0xffffffff is reserved")
    return s
}

/** The `count` canonical records of a block value (a closed block, or an open one completed by its tail). */
export function decodeBlock(buf: Buffer, count: number, where = "block"): Buffer[] {
    if (buf.length > BLOCK_MAX_LEN + TAIL_MAX_BYTES + 8) throw new FormatError(`${where}: ${buf.length} bytes is too long for a block`)
    return decodePack(buf.subarray(BLOCK_HEADER_LEN), blockFirstSeq(buf), count, { where })
}

// ---- the pack state (section 4.4) ------------------------------------------------------------------

/** The encoder's registers and model as the tail stores them, PACK_STATE_LEN bytes. */
export function encodePackState(rc: CoderState, m: PackModel): Buffer {
    const b = Buffer.alloc(PACK_STATE_LEN)
    b.writeUInt32LE(rc.low % 2 ** 32, 0)
    b[4] = Math.floor(rc.low / 2 ** 32)
    b.writeUInt32LE(rc.range, 5)
    b[9] = rc.cache
    b[10] = (rc.hasCache ? 1 : 0) | (m.hasSeal ? 2 : 0)
    b.writeUInt16LE(rc.ffCount, 11)
    for (let i = 0; i < CTX.count; i++) b.writeUInt16LE(m.p[i], 13 + 2 * i)
    b.writeUInt16LE(m.records, M)
    b.writeUInt16LE(m.n, M + 2)
    b.writeUInt32LE(m.prevT, M + 4)
    b.writeUInt32LE(m.prevSampleT, M + 8)
    b.writeInt32LE(m.prevSampleDt, M + 12)
    b.writeInt32LE(m.t1, M + 16)
    b.writeInt32LE(m.t2, M + 20)
    b.writeInt32LE(m.ema, M + 24)
    for (let i = 0; i < 4; i++) b.writeUInt16LE(m.scores[i], M + 28 + 2 * i)
    b.writeInt16LE(m.cj1, M + 36)
    b.writeInt16LE(m.cj2, M + 38)
    b.writeUInt32LE(m.sealEpoch, M + 40)
    b.writeUInt32LE(m.sealSeq, M + 44)
    b[M + 48] = m.k
    return b
}

export function decodePackState(b: Buffer): { rc: CoderState; m: PackModel } {
    if (b.length !== PACK_STATE_LEN) throw new FormatError(`pack state must be ${PACK_STATE_LEN} bytes, got ${b.length}`)
    const m = newModel()
    for (let i = 0; i < CTX.count; i++) m.p[i] = b.readUInt16LE(13 + 2 * i)
    m.records = b.readUInt16LE(M)
    m.n = b.readUInt16LE(M + 2)
    m.prevT = b.readUInt32LE(M + 4)
    m.prevSampleT = b.readUInt32LE(M + 8)
    m.prevSampleDt = b.readInt32LE(M + 12)
    m.t1 = b.readInt32LE(M + 16)
    m.t2 = b.readInt32LE(M + 20)
    m.ema = b.readInt32LE(M + 24)
    for (let i = 0; i < 4; i++) m.scores[i] = b.readUInt16LE(M + 28 + 2 * i)
    m.cj1 = b.readInt16LE(M + 36)
    m.cj2 = b.readInt16LE(M + 38)
    m.hasSeal = (b[10] & 2) !== 0
    m.sealEpoch = b.readUInt32LE(M + 40)
    m.sealSeq = b.readUInt32LE(M + 44)
    m.k = b[M + 48]
    if (m.k > MEAN_SPAN) throw new FormatError(`pack state: mean of ${m.k} samples`)
    return {
        rc: {
            low: b.readUInt32LE(0) + b[4] * 2 ** 32,
            range: b.readUInt32LE(5),
            cache: b[9],
            hasCache: (b[10] & 1) !== 0,
            ffCount: b.readUInt16LE(11),
        },
        m,
    }
}

/** A fresh stream's state (what a new open block starts from). */
export function initialPackState(): Buffer {
    return encodePackState(new RangeEncoder().state(), { ...newModel(), p: PRIORS.slice() })
}

// ---- the tail (section 5.3) --------------------------------------------------------------------------

export interface Tail {
    /** seq of the next record */
    nextSeq: number
    /** head[nextSeq - 1] */
    head: Buffer
    /** length of the open block's value this tail follows */
    blockLen: number
    /** stream bytes emitted since that value was written */
    bytes: Buffer
    /** the encoder's state after the last record */
    state: Buffer
}

export function encodeTail(t: Tail): Buffer {
    checkHead(t.head)
    if (t.bytes.length > TAIL_MAX_BYTES) throw new RangeError(`tail of ${t.bytes.length} bytes exceeds ${TAIL_MAX_BYTES}`)
    if (t.state.length !== PACK_STATE_LEN) throw new RangeError("pack state has the wrong length")
    const out = Buffer.alloc(TAIL_HEADER_LEN + PACK_STATE_LEN + t.bytes.length)
    out[0] = TAIL_VERSION
    out[1] = t.blockLen
    out[2] = t.bytes.length
    out.writeUInt32LE(t.nextSeq, 4)
    t.head.copy(out, 8)
    t.state.copy(out, TAIL_HEADER_LEN)
    t.bytes.copy(out, TAIL_HEADER_LEN + PACK_STATE_LEN)
    return out
}

export function decodeTail(b: Buffer): Tail {
    if (b.length < TAIL_HEADER_LEN + PACK_STATE_LEN) throw new FormatError(`${TAIL_KEY} of ${b.length} bytes is too short`)
    if (b[0] !== TAIL_VERSION) throw new FormatError(`${TAIL_KEY} version ${b[0]}, expected ${TAIL_VERSION}`)
    const n = b[2]
    if (b.length !== TAIL_HEADER_LEN + PACK_STATE_LEN + n) throw new FormatError(`${TAIL_KEY} of ${b.length} bytes, its tail says ${n}`)
    return {
        blockLen: b[1],
        nextSeq: b.readUInt32LE(4),
        head: Buffer.from(b.subarray(8, 40)),
        state: Buffer.from(b.subarray(TAIL_HEADER_LEN, TAIL_HEADER_LEN + PACK_STATE_LEN)),
        bytes: Buffer.from(b.subarray(TAIL_HEADER_LEN + PACK_STATE_LEN)),
    }
}

/**
 * The open block as one finished value, from its stored value and the tail (section 5.3):
 *  (a) the value holds first_seq and the bytes written at the last flush: the tail's bytes follow, and
 *      the tail's coder state finishes the stream;
 *  (b) the value is longer by exactly the tail's bytes (a flush that landed just before a power cut):
 *      they are already in it;
 *  (c) neither: the block was closed (rewritten finished) just before a power cut, and the value is
 *      already complete.
 */
export function completeOpenBlock(value: Buffer, tail: Tail): Buffer {
    let committed: Buffer
    if (value.length === tail.blockLen) committed = Buffer.concat([value.subarray(BLOCK_HEADER_LEN), tail.bytes])
    else if (value.length === tail.blockLen + tail.bytes.length && value.subarray(tail.blockLen).equals(tail.bytes))
        committed = Buffer.from(value.subarray(BLOCK_HEADER_LEN))
    else return value
    const { rc } = decodePackState(tail.state)
    const enc = new RangeEncoder([...committed], rc)
    return Buffer.concat([value.subarray(0, BLOCK_HEADER_LEN), enc.finish()])
}

// ---- bookkeeping values --------------------------------------------------------------------------------

export interface LogMeta {
    /** block numbers; the open block is lastBlock */
    firstBlock: number
    lastBlock: number
    /** head before the first record of firstBlock */
    baseHead: Buffer
    /** head before the first record of lastBlock */
    openHead: Buffer
}

export function encodeLogMeta(m: LogMeta): Buffer {
    checkHead(m.baseHead, "baseHead")
    checkHead(m.openHead, "openHead")
    const out = Buffer.alloc(LOG_META_LEN)
    out.writeUInt32LE(m.firstBlock, 0)
    out.writeUInt32LE(m.lastBlock, 4)
    m.baseHead.copy(out, 8)
    m.openHead.copy(out, 40)
    return out
}

export function decodeLogMeta(buf: Buffer): LogMeta {
    if (buf.length !== LOG_META_LEN) throw new FormatError(`${LOG_META_KEY} must be ${LOG_META_LEN} bytes, got ${buf.length}`)
    return {
        firstBlock: buf.readUInt32LE(0),
        lastBlock: buf.readUInt32LE(4),
        baseHead: Buffer.from(buf.subarray(8, 40)),
        openHead: Buffer.from(buf.subarray(40, 72)),
    }
}

/** The acknowledged checkpoint the device keeps (`lgack`). */
export interface LogAck {
    ackSeq: number
    /** head[ackSeq] */
    head: Buffer
    boot: number
}

export function encodeLogAck(a: LogAck): Buffer {
    checkHead(a.head)
    const out = Buffer.alloc(LOG_ACK_LEN)
    out.writeUInt32LE(a.ackSeq, 0)
    a.head.copy(out, 4)
    out.writeUInt32LE(a.boot, 4 + HEAD_LEN)
    return out
}

export function decodeLogAck(buf: Buffer): LogAck {
    if (buf.length !== LOG_ACK_LEN) throw new FormatError(`${LOG_ACK_KEY} must be ${LOG_ACK_LEN} bytes, got ${buf.length}`)
    return { ackSeq: buf.readUInt32LE(0), head: Buffer.from(buf.subarray(4, 4 + HEAD_LEN)), boot: buf.readUInt32LE(4 + HEAD_LEN) }
}

/** The current epoch key the device keeps (`ep`). */
export interface EpochKey {
    epoch: number
    /** k[epoch] */
    key: Buffer
    /** seq of the seal that ended epoch - 1 (SEAL_SEQ_NONE in epoch 0): the next seal's count starts after it */
    sealSeq: number
    /** device time the epoch began */
    start: number
}

export function encodeEpochKey(e: EpochKey): Buffer {
    checkKey(e.key)
    const out = Buffer.alloc(EPOCH_LEN)
    out.writeUInt32LE(e.epoch, 0)
    e.key.copy(out, 4)
    out.writeUInt32LE(e.sealSeq, 4 + KEY_LEN)
    out.writeUInt32LE(e.start, 8 + KEY_LEN)
    return out
}

export function decodeEpochKey(buf: Buffer): EpochKey {
    if (buf.length !== EPOCH_LEN) throw new FormatError(`${EPOCH_KEY} must be ${EPOCH_LEN} bytes, got ${buf.length}`)
    return {
        epoch: buf.readUInt32LE(0),
        key: Buffer.from(buf.subarray(4, 4 + KEY_LEN)),
        sealSeq: buf.readUInt32LE(4 + KEY_LEN),
        start: buf.readUInt32LE(8 + KEY_LEN),
    }
}

/** The boot counter in the wake state (`st`, section 5.6). */
export function stateBoot(st: Buffer): number {
    if (st.length < 8) throw new FormatError(`${STATE_KEY} of ${st.length} bytes is too short`)
    return st.readUInt32LE(4)
}

// ---- reading a whole log out of flash ---------------------------------------------------------------

export interface FlashEntry {
    seq: number
    bytes: Buffer
}

export interface FlashLog {
    entries: FlashEntry[]
    /** heads the image states: before the first held block, before the open block, after the last record */
    claims: { seq: number; head: Buffer; what: string }[]
    ack: LogAck | null
    boot: number
    problems: { seq: number; detail: string }[]
}

/**
 * The records a flash image holds, the way the firmware finds them at a boot: lgmeta names the held
 * blocks; each closed block holds the records up to the next block's first_seq; the open block is its
 * stored value completed by the tail (`tl`). A block that does not decode is a problem, not an exception.
 */
export function readFlashLog(get: (key: string) => Buffer | undefined): FlashLog {
    const out: FlashLog = { entries: [], claims: [], ack: null, boot: 0, problems: [] }
    const problem = (seq: number, detail: string) => out.problems.push({ seq, detail })
    const ackBuf = get(LOG_ACK_KEY)
    if (ackBuf) {
        try {
            out.ack = decodeLogAck(ackBuf)
            out.claims.push({ seq: out.ack.ackSeq, head: out.ack.head, what: "lgack head" })
        } catch (e) {
            problem(0, `lgack: ${(e as Error).message}`)
        }
    }
    const stBuf = get(STATE_KEY)
    if (stBuf) {
        try {
            out.boot = stateBoot(stBuf)
        } catch (e) {
            problem(0, `st: ${(e as Error).message}`)
        }
    }
    const metaBuf = get(LOG_META_KEY)
    const tailBuf = get(TAIL_KEY)
    if (!metaBuf || !tailBuf) return out
    let meta: LogMeta, tail: Tail
    try {
        meta = decodeLogMeta(metaBuf)
        tail = decodeTail(tailBuf)
    } catch (e) {
        problem(0, (e as Error).message)
        return out
    }
    if (meta.lastBlock < meta.firstBlock || meta.lastBlock - meta.firstBlock >= BLOCK_SLOTS) {
        problem(0, `lgmeta names blocks ${meta.firstBlock}..${meta.lastBlock}`)
        return out
    }
    const values: Buffer[] = []
    for (let n = meta.firstBlock; n <= meta.lastBlock; n++) {
        const v = get(blockKey(n))
        if (!v) {
            problem(0, `block ${blockKey(n)} (number ${n}) is missing`)
            return out
        }
        values.push(v)
    }
    // every block's first_seq first: a value too short to hold one is a problem, not an exception
    const firsts: number[] = []
    for (let i = 0; i < values.length; i++) {
        try {
            firsts.push(blockFirstSeq(values[i]))
        } catch (e) {
            problem(firsts.length ? firsts[firsts.length - 1] : 0, `block ${blockKey(meta.firstBlock + i)}: ${(e as Error).message}`)
            return out
        }
    }
    out.claims.push({ seq: firsts[0] - 1, head: meta.baseHead, what: "lgmeta base head" })
    out.claims.push({ seq: firsts[firsts.length - 1] - 1, head: meta.openHead, what: "lgmeta open head" })
    out.claims.push({ seq: tail.nextSeq - 1, head: tail.head, what: "tail head" })
    for (let i = 0; i < values.length; i++) {
        const key = blockKey(meta.firstBlock + i)
        const first = firsts[i]
        const open = i === values.length - 1
        const end = open ? tail.nextSeq : firsts[i + 1]
        if (end < first) {
            problem(first, `block ${key} starts at ${first}, after the next record ${end}`)
            break
        }
        if (end === first) {
            // only the open block may be empty (just opened): a closed block always holds a record
            if (!open) problem(first, `block ${key} holds no record: the next block starts at the same seq ${first}`)
            continue
        }
        try {
            const value = open ? completeOpenBlock(values[i], tail) : values[i]
            decodeBlock(value, end - first, `block ${key}`).forEach((bytes, k) => out.entries.push({ seq: first + k, bytes }))
        } catch (e) {
            problem(first, `block ${key} does not decode: ${(e as Error).message}`)
        }
    }
    return out
}

/** head after the records held, from the base head (for checks against the claims) */
export function flashHead(log: FlashLog, baseHead: Buffer): Buffer {
    return hashRun(
        baseHead,
        log.entries.map(e => e.bytes),
    )
}
