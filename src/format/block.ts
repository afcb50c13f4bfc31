// Flash blocks and the log bookkeeping values in the settings store
// (docs/format.md section 5). Host tools use these to read a device's flash
// image and to produce vectors; the firmware has its own implementation.
import { HEAD_LEN, KEY_LEN, checkHead, checkKey, hashRun } from "./chain.js"
import { decodeItems, encodeItems, type RecordLike } from "./items.js"
import { FormatError, MAX_SEQ, type LogRecord } from "./record.js"

/** Settings values over 192 bytes cannot be read back, so blocks stay at or under this. */
export const BLOCK_MAX_LEN = 192
export const BLOCK_HEADER_LEN = 36
export const LOG_META_KEY = "lgmeta"
export const LOG_META_LEN = 12
export const LOG_ACK_KEY = "lgack"
export const LOG_ACK_LEN = 40
export const EKEY_KEY = "ekey"
export const EKEY_LEN = 40
/** `sealSeq` in epoch 0: no seal before it */
export const SEAL_SEQ_NONE = 0xffffffff

/**
 * Block keys are reused round a ring of BLOCK_SLOTS names: the settings store keeps a small record of
 * every deleted key for good, so a log that deleted a new key name per freed block would fill the
 * store in months (measured, bench). At most BLOCK_SLOTS - 2 blocks are ever live.
 */
export const BLOCK_SLOTS = 64

/** Settings key of block `n`: "lg" + 8 lower-case hex digits of n mod BLOCK_SLOTS. */
export function blockKey(n: number): string {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`block number out of range: ${n}`)
    return "lg" + (n % BLOCK_SLOTS).toString(16).padStart(8, "0")
}

export interface BlockInput {
    firstSeq: number
    /** head[firstSeq - 1] */
    prevHead: Buffer
    /** consecutive records from firstSeq (typed or canonical bytes) */
    records: RecordLike[]
    /** use run items (default true) */
    runs?: boolean
}

export function encodeBlock(b: BlockInput): Buffer {
    if (!Number.isInteger(b.firstSeq) || b.firstSeq < 0 || b.firstSeq > MAX_SEQ) {
        throw new RangeError(`firstSeq out of range: ${b.firstSeq}`)
    }
    checkHead(b.prevHead, "prevHead")
    if (b.records.length < 1) throw new RangeError("a block holds at least one record")
    const items = encodeItems(b.records, { runs: b.runs ?? true })
    const seq0 = Buffer.isBuffer(b.records[0]) ? b.records[0].readUInt32LE(0) : b.records[0].seq
    if (seq0 !== b.firstSeq) throw new RangeError(`first record has seq ${seq0}, block firstSeq is ${b.firstSeq}`)
    const head = Buffer.alloc(4)
    head.writeUInt32LE(b.firstSeq, 0)
    const out = Buffer.concat([head, b.prevHead, items])
    if (out.length > BLOCK_MAX_LEN) throw new RangeError(`block of ${out.length} bytes exceeds ${BLOCK_MAX_LEN}`)
    return out
}

export interface DecodedBlock {
    firstSeq: number
    prevHead: Buffer
    /** the items area as stored */
    items: Buffer
    records: LogRecord[]
    recordBytes: Buffer[]
    /** seq of the last record */
    lastSeq: number
    /** head after the last record: what the device recomputes at boot */
    head: Buffer
}

export function decodeBlock(buf: Buffer): DecodedBlock {
    if (buf.length < BLOCK_HEADER_LEN)
        throw new FormatError(`block of ${buf.length} bytes is shorter than its ${BLOCK_HEADER_LEN}-byte header`)
    if (buf.length > BLOCK_MAX_LEN) throw new FormatError(`block of ${buf.length} bytes exceeds ${BLOCK_MAX_LEN}`)
    const firstSeq = buf.readUInt32LE(0)
    if (firstSeq > MAX_SEQ) throw new FormatError("block first_seq 0xffffffff is reserved")
    const prevHead = Buffer.from(buf.subarray(4, BLOCK_HEADER_LEN))
    const items = Buffer.from(buf.subarray(BLOCK_HEADER_LEN))
    const { records, recordBytes } = decodeItems(items, firstSeq)
    if (records.length === 0) throw new FormatError("block holds no record")
    return {
        firstSeq,
        prevHead,
        items,
        records,
        recordBytes,
        lastSeq: firstSeq + records.length - 1,
        head: hashRun(prevHead, recordBytes),
    }
}

export interface LogMeta {
    firstBlock: number
    lastBlock: number
    boot: number
}

export function encodeLogMeta(m: LogMeta): Buffer {
    const out = Buffer.alloc(LOG_META_LEN)
    out.writeUInt32LE(m.firstBlock, 0)
    out.writeUInt32LE(m.lastBlock, 4)
    out.writeUInt32LE(m.boot, 8)
    return out
}

export function decodeLogMeta(buf: Buffer): LogMeta {
    if (buf.length !== LOG_META_LEN) throw new FormatError(`${LOG_META_KEY} must be ${LOG_META_LEN} bytes, got ${buf.length}`)
    return { firstBlock: buf.readUInt32LE(0), lastBlock: buf.readUInt32LE(4), boot: buf.readUInt32LE(8) }
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

/** The current epoch key the device keeps (`ekey`). */
export interface EpochKey {
    epoch: number
    /** k[epoch] */
    key: Buffer
    /** seq of the seal that ended epoch - 1 (SEAL_SEQ_NONE in epoch 0): the next seal's count starts after it */
    sealSeq: number
}

export function encodeEpochKey(e: EpochKey): Buffer {
    checkKey(e.key)
    const out = Buffer.alloc(EKEY_LEN)
    out.writeUInt32LE(e.epoch, 0)
    e.key.copy(out, 4)
    out.writeUInt32LE(e.sealSeq, 4 + KEY_LEN)
    return out
}

export function decodeEpochKey(buf: Buffer): EpochKey {
    if (buf.length !== EKEY_LEN) throw new FormatError(`${EKEY_KEY} must be ${EKEY_LEN} bytes, got ${buf.length}`)
    return { epoch: buf.readUInt32LE(0), key: Buffer.from(buf.subarray(4, 4 + KEY_LEN)), sealSeq: buf.readUInt32LE(4 + KEY_LEN) }
}
