// Batches (device -> server) and acknowledgements (server -> device),
// docs/format.md sections 6 and 7. A batch body is a list of packed streams ("parts"): the logger
// sends its flash blocks as they are, without decoding them.
import { DEVID_LEN, HEAD_LEN, MAC16_LEN, checkHead, checkKey, devidBytes, mac16, macEquals } from "./chain.js"
import { decodePack, PackEncoder } from "./pack.js"
import { FormatError, MAX_SEQ, RECORD_HEADER_LEN, canonical, decodeFields, type LogRecord, type RecordLike } from "./record.js"

export const BATCH_MAGIC = "CTB3"
export const BATCH_FLAG_PREV = 0x01
/** magic, devid, boot, epoch, nonce, first_seq, count, flags */
export const BATCH_FIXED_LEN = 31
export const MAC_LEN = MAC16_LEN
/** the smallest frame: fixed header, body_len, mac (no PREV, no parts) */
export const BATCH_MIN_LEN = BATCH_FIXED_LEN + 2 + MAC_LEN
export const BATCH_MAX_COUNT = 0xffff
export const BATCH_MAX_BODY_LEN = 0xffff
/** the largest valid batch: PREV, a full body_len and the mac */
export const BATCH_MAX_LEN = BATCH_FIXED_LEN + HEAD_LEN + 2 + BATCH_MAX_BODY_LEN + MAC_LEN
/** a part: len u16, count u16, then the packed stream */
export const PART_HEADER_LEN = 4

export const ACK_MAGIC = "CTA3"
export const ACK_LEN = 84
export const ACK_SIGNED_LEN = 68
/** seq on the wire when the server holds nothing for the device */
export const ACK_NONE = 0xffffffff

function checkU32(v: number, name: string): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name} must be a u32, got ${v}`)
}

/** One packed stream of a batch body (a flash block's stream, or any run of records). */
export interface BatchPart {
    count: number
    stream: Buffer
}

/** Parts for consecutive records: one packed stream per `perPart` records (default: all in one). */
export function packParts(list: RecordLike[], perPart = Infinity): BatchPart[] {
    const { recordBytes } = canonical(list)
    const parts: BatchPart[] = []
    for (let i = 0; i < recordBytes.length;) {
        const n = Math.min(perPart, recordBytes.length - i)
        const enc = new PackEncoder(recordBytes[i].readUInt32LE(0))
        for (let k = 0; k < n; k++) enc.add(recordBytes[i + k])
        parts.push({ count: n, stream: enc.finish() })
        i += n
    }
    return parts
}

export function encodeParts(parts: BatchPart[]): Buffer {
    return Buffer.concat(
        parts.map(p => {
            if (p.stream.length > 0xffff || p.count > 0xffff) throw new RangeError("a part is at most 65535 bytes and records")
            const h = Buffer.alloc(PART_HEADER_LEN)
            h.writeUInt16LE(p.stream.length, 0)
            h.writeUInt16LE(p.count, 2)
            return Buffer.concat([h, p.stream])
        }),
    )
}

export interface BatchInput {
    devid: Buffer | string
    /** the device's current boot counter */
    boot: number
    /** the key epoch of `key` */
    epoch: number
    /** random per batch; the ack echoes it */
    nonce?: number
    firstSeq: number
    /** head[firstSeq - 1]; given, it sets PREV (the batch starts a new segment) */
    prevHead?: Buffer | null
    /** consecutive records from firstSeq (typed or canonical bytes) */
    records: RecordLike[]
    /** k[epoch] */
    key: Buffer
    /** records per packed part (default: all in one) */
    perPart?: number
    /** tests: send these body bytes instead of packing `records` */
    body?: Buffer
    /** tests: state this count instead of records.length */
    count?: number
}

/**
 * Frames and signs a batch. It checks the framing limits only, not the records
 * themselves, so tests can build batches the server must refuse.
 */
export function encodeBatch(b: BatchInput): Buffer {
    checkKey(b.key, "key")
    checkU32(b.boot, "boot")
    checkU32(b.epoch, "epoch")
    const nonce = b.nonce ?? Math.floor(Math.random() * 0x100000000)
    checkU32(nonce, "nonce")
    if (!Number.isInteger(b.firstSeq) || b.firstSeq < 0 || b.firstSeq > MAX_SEQ) {
        throw new RangeError(`firstSeq out of range: ${b.firstSeq}`)
    }
    let body = b.body
    if (!body) {
        const { records } = canonical(b.records)
        if (records.length && records[0].seq !== b.firstSeq) {
            throw new RangeError(`first record has seq ${records[0].seq}, batch firstSeq is ${b.firstSeq}`)
        }
        body = encodeParts(packParts(b.records, b.perPart))
    }
    const count = b.count ?? b.records.length
    if (!Number.isInteger(count) || count < 0 || count > 0xffff) throw new RangeError(`count must be a u16, got ${count}`)
    if (b.count === undefined && count < 1) throw new RangeError("a batch holds at least one record")
    if (body.length > BATCH_MAX_BODY_LEN) throw new RangeError(`${body.length} bytes of body exceed body_len u16`)
    const prev = b.prevHead ?? null
    if (prev) checkHead(prev, "prevHead")
    const head = Buffer.alloc(BATCH_FIXED_LEN + (prev ? HEAD_LEN : 0) + 2)
    head.write(BATCH_MAGIC, 0, "ascii")
    devidBytes(b.devid).copy(head, 4)
    head.writeUInt32LE(b.boot, 12)
    head.writeUInt32LE(b.epoch, 16)
    head.writeUInt32LE(nonce, 20)
    head.writeUInt32LE(b.firstSeq, 24)
    head.writeUInt16LE(count, 28)
    head.writeUInt8(prev ? BATCH_FLAG_PREV : 0, 30)
    if (prev) prev.copy(head, BATCH_FIXED_LEN)
    head.writeUInt16LE(body.length, head.length - 2)
    const signed = Buffer.concat([head, body])
    return Buffer.concat([signed, mac16(b.key, signed)])
}

export interface DecodedBatch {
    devid: string
    boot: number
    epoch: number
    nonce: number
    firstSeq: number
    /** seq of the last record */
    lastSeq: number
    count: number
    flags: number
    /** head[firstSeq - 1] when PREV is set, else null */
    prevHead: Buffer | null
    /** the body (parts) as sent */
    body: Buffer
    records: LogRecord[]
    /** canonical bytes of each record */
    recordBytes: Buffer[]
    /** bytes covered by the mac */
    signed: Buffer
    mac: Buffer
}

/**
 * The fixed header and framing of a batch, without its records: enough to find the device, the
 * epoch and the signed bytes, so the mac can be checked before anything else is decoded.
 */
export interface BatchFrame {
    devid: string
    boot: number
    epoch: number
    nonce: number
    firstSeq: number
    count: number
    flags: number
    /** head[firstSeq - 1] when PREV is set, else null */
    prevHead: Buffer | null
    /** the body (parts) as sent */
    body: Buffer
    /** bytes covered by the mac */
    signed: Buffer
    mac: Buffer
}

/** Checks the framing (magic, lengths, flags, count) and splits the body. Throws FormatError (400). */
export function readBatchFrame(body: Buffer): BatchFrame {
    if (body.length === 0) throw new FormatError("empty body")
    if (body.length >= 4 && body.toString("latin1", 0, 4) !== BATCH_MAGIC) {
        throw new FormatError(`bad magic: expected "${BATCH_MAGIC}"`)
    }
    if (body.length < BATCH_MIN_LEN) {
        throw new FormatError(`wrong length: ${body.length} bytes, a batch has at least ${BATCH_MIN_LEN}`)
    }
    const flags = body[30]
    if (flags & ~BATCH_FLAG_PREV) throw new FormatError(`unknown flags 0x${flags.toString(16).padStart(2, "0")}`)
    const prev = (flags & BATCH_FLAG_PREV) !== 0
    const lenAt = BATCH_FIXED_LEN + (prev ? HEAD_LEN : 0)
    if (body.length < lenAt + 2 + MAC_LEN) {
        throw new FormatError(`wrong length: ${body.length} bytes, a batch with PREV has at least ${lenAt + 2 + MAC_LEN}`)
    }
    const bodyLen = body.readUInt16LE(lenAt)
    const partsAt = lenAt + 2
    if (body.length !== partsAt + bodyLen + MAC_LEN) {
        throw new FormatError(`wrong length: ${body.length} bytes, body_len ${bodyLen} needs ${partsAt + bodyLen + MAC_LEN}`)
    }
    const firstSeq = body.readUInt32LE(24)
    const count = body.readUInt16LE(28)
    if (count < 1) throw new FormatError("count 0: a batch holds at least one record")
    if (firstSeq > MAX_SEQ) throw new FormatError("first_seq 0xffffffff is reserved")
    if (firstSeq + count - 1 > MAX_SEQ) throw new FormatError("the batch runs past seq 0xfffffffe")
    const signedEnd = partsAt + bodyLen
    return {
        devid: body.toString("hex", 4, 4 + DEVID_LEN),
        boot: body.readUInt32LE(12),
        epoch: body.readUInt32LE(16),
        nonce: body.readUInt32LE(20),
        firstSeq,
        count,
        flags,
        prevHead: prev ? Buffer.from(body.subarray(BATCH_FIXED_LEN, BATCH_FIXED_LEN + HEAD_LEN)) : null,
        body: body.subarray(partsAt, signedEnd),
        signed: body.subarray(0, signedEnd),
        mac: body.subarray(signedEnd),
    }
}

/** Decodes a frame's parts into exactly `count` canonical records. Throws FormatError (400). */
export function decodeBatchBody(frame: BatchFrame): DecodedBatch {
    let recordBytes: Buffer[] = []
    const b = frame.body
    let off = 0
    let part = 0
    while (off < b.length) {
        const where = `part ${part} at offset ${off}`
        if (b.length - off < PART_HEADER_LEN) throw new FormatError(`${where}: truncated part header`)
        const len = b.readUInt16LE(off)
        const n = b.readUInt16LE(off + 2)
        if (n < 1) throw new FormatError(`${where}: a part of 0 records`)
        if (off + PART_HEADER_LEN + len > b.length) throw new FormatError(`${where}: ${len} bytes run past the body`)
        if (recordBytes.length + n > frame.count) throw new FormatError(`count says ${frame.count} records, the parts hold more`)
        const stream = b.subarray(off + PART_HEADER_LEN, off + PART_HEADER_LEN + len)
        const recs = decodePack(stream, frame.firstSeq + recordBytes.length, n, { where })
        if (part === 0) recordBytes = recs
        else for (const r of recs) recordBytes.push(r)
        off += PART_HEADER_LEN + len
        part++
    }
    if (recordBytes.length !== frame.count) throw new FormatError(`count says ${frame.count} records, the parts hold ${recordBytes.length}`)
    // the typed records only when asked for: the ingest server needs the canonical bytes and kinds
    // (decodePack has checked every record; decodeFields cannot fail on them)
    // the fields one by one, not `...frame`: a spread object with a getter beside it is a slow
    // (dictionary) object, and the acceptance rules read its fields throughout a batch
    let records: LogRecord[] | undefined
    return {
        devid: frame.devid,
        boot: frame.boot,
        epoch: frame.epoch,
        nonce: frame.nonce,
        firstSeq: frame.firstSeq,
        count: frame.count,
        flags: frame.flags,
        prevHead: frame.prevHead,
        body: frame.body,
        signed: frame.signed,
        mac: frame.mac,
        lastSeq: frame.firstSeq + frame.count - 1,
        get records() {
            return (records ??= recordBytes.map(r => decodeFields(r.readUInt32LE(0), r[4], r.subarray(RECORD_HEADER_LEN))))
        },
        recordBytes,
    }
}

/** Parses and checks everything but the mac (which needs k[epoch]). Throws FormatError (400). */
export function decodeBatch(body: Buffer): DecodedBatch {
    return decodeBatchBody(readBatchFrame(body))
}

/** `key` is k[batch.epoch]. */
export function verifyBatchMac(batch: Pick<DecodedBatch, "signed" | "mac">, key: Buffer): boolean {
    checkKey(key, "key")
    return macEquals(mac16(key, batch.signed), batch.mac)
}

export interface AckInput {
    devid: Buffer | string
    ackkey: Buffer
    /** last durably stored seq, or null when the server holds nothing */
    ackSeq: number | null
    /** head[ackSeq]; ignored (zeros) when ackSeq is null */
    head?: Buffer | null
    /** boot counter of the batch acknowledged */
    boot: number
    /** newest key epoch the server accepted */
    epoch: number
    /** the nonce of the batch answered */
    nonce: number
    /** the server's UTC, ms since 1970 (0: none) */
    utc: number
}

export function encodeAck(a: AckInput): Buffer {
    checkKey(a.ackkey, "ackkey")
    checkU32(a.boot, "boot")
    checkU32(a.epoch, "epoch")
    checkU32(a.nonce, "nonce")
    if (!Number.isInteger(a.utc) || a.utc < 0 || a.utc > Number.MAX_SAFE_INTEGER) throw new RangeError(`utc out of range: ${a.utc}`)
    const out = Buffer.alloc(ACK_LEN)
    out.write(ACK_MAGIC, 0, "ascii")
    devidBytes(a.devid).copy(out, 4)
    if (a.ackSeq === null) {
        out.writeUInt32LE(ACK_NONE, 12)
    } else {
        if (!Number.isInteger(a.ackSeq) || a.ackSeq < 0 || a.ackSeq > MAX_SEQ) throw new RangeError(`ackSeq out of range: ${a.ackSeq}`)
        if (!a.head) throw new RangeError("head is required with an ackSeq")
        checkHead(a.head, "head")
        out.writeUInt32LE(a.ackSeq, 12)
        a.head.copy(out, 16)
    }
    out.writeUInt32LE(a.boot, 48)
    out.writeUInt32LE(a.epoch, 52)
    out.writeUInt32LE(a.nonce, 56)
    out.writeUInt32LE(a.utc % 0x100000000, 60)
    out.writeUInt32LE(Math.floor(a.utc / 0x100000000), 64)
    mac16(a.ackkey, out.subarray(0, ACK_SIGNED_LEN)).copy(out, ACK_SIGNED_LEN)
    return out
}

export interface DecodedAck {
    devid: string
    ackSeq: number | null
    head: Buffer | null
    boot: number
    epoch: number
    nonce: number
    utc: number
    mac: Buffer
    /** true when an ackkey was given (a mac that does not verify throws) */
    verified: boolean
}

/**
 * Parses an ack. With `ackkey` the mac must verify (FormatError 401 otherwise);
 * without it the ack is only parsed, for inspection tools.
 */
export function decodeAck(body: Buffer, ackkey?: Buffer): DecodedAck {
    if (body.length !== ACK_LEN) throw new FormatError(`wrong length: ack is ${ACK_LEN} bytes, got ${body.length}`)
    if (body.toString("latin1", 0, 4) !== ACK_MAGIC) throw new FormatError(`bad magic: expected "${ACK_MAGIC}"`)
    const raw = body.readUInt32LE(12)
    const head = Buffer.from(body.subarray(16, 48))
    const mac = Buffer.from(body.subarray(ACK_SIGNED_LEN))
    if (raw === ACK_NONE && head.some(x => x !== 0)) throw new FormatError("ack with no seq must carry a zero head")
    if (ackkey) {
        checkKey(ackkey, "ackkey")
        if (!macEquals(mac16(ackkey, body.subarray(0, ACK_SIGNED_LEN)), mac)) throw new FormatError("ack mac does not verify", 401)
    }
    return {
        devid: body.toString("hex", 4, 12),
        ackSeq: raw === ACK_NONE ? null : raw,
        head: raw === ACK_NONE ? null : head,
        boot: body.readUInt32LE(48),
        epoch: body.readUInt32LE(52),
        nonce: body.readUInt32LE(56),
        utc: body.readUInt32LE(64) * 0x100000000 + body.readUInt32LE(60),
        mac,
        verified: ackkey !== undefined,
    }
}
