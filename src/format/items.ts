// The compact encoding of records in flash blocks and batch bodies (docs/format.md section 4).
//   0x01 full: kind u8, len u8, payload              one canonical record without its seq
//   0x02 run:  n u8 (1..255), step u16 (s), nibbles  n samples derived from the reference sample
// Decoding reproduces the canonical records byte for byte; the chain is computed over those.
import {
    FormatError,
    KIND,
    MAX_SEQ,
    RECORD_HEADER_LEN,
    checkPayloadLen,
    decodeFields,
    encodeRecord,
    isSample,
    parseRecords,
    type LogRecord,
    type SampleRecord,
} from "./record.js"

export const ITEM_FULL = 0x01
export const ITEM_RUN = 0x02
export const FULL_HEADER_LEN = 3 // tag, kind, len
export const RUN_HEADER_LEN = 4 // tag, n, step u16
export const RUN_MAX = 255
export const STEP_MAX = 0xffff
export const NIBBLE_MIN = -8
export const NIBBLE_MAX = 7

/** A record as a typed object or as its canonical bytes. */
export type RecordLike = LogRecord | Buffer

export interface Canonical {
    records: LogRecord[]
    /** canonical bytes of each record */
    recordBytes: Buffer[]
}

/** Typed records and canonical bytes of a list given either way; checks that seq runs consecutively. */
export function canonical(list: RecordLike[]): Canonical {
    const records: LogRecord[] = []
    const recordBytes: Buffer[] = []
    for (const x of list) {
        if (Buffer.isBuffer(x)) {
            const { records: rs, raw } = parseRecords(x)
            if (rs.length !== 1) throw new RangeError(`a canonical record buffer must hold one record, found ${rs.length}`)
            records.push(rs[0])
            recordBytes.push(raw[0])
        } else {
            records.push(x)
            recordBytes.push(encodeRecord(x))
        }
    }
    for (let i = 1; i < records.length; i++) {
        if (records[i].seq !== records[0].seq + i) {
            throw new RangeError(`records must have consecutive seq: record ${i} has ${records[i].seq}, expected ${records[0].seq + i}`)
        }
    }
    return { records, recordBytes }
}

export interface EncodeItemsOptions {
    /** use run items where allowed (default true); false writes full items only */
    runs?: boolean
}

/** The step (seconds) of a run that would derive `s` from `ref`, or null when no run can. */
export function runStep(ref: SampleRecord | null, s: LogRecord): number | null {
    if (!ref || !isSample(s)) return null
    if (s.cj !== ref.cj || s.sr !== ref.sr || s.sflags !== ref.sflags) return null
    const d = s.tc - ref.tc
    if (d < NIBBLE_MIN || d > NIBBLE_MAX) return null
    const dt = s.uptime - ref.uptime
    if (dt <= 0 || dt % 1000 !== 0 || dt / 1000 > STEP_MAX) return null
    return dt / 1000
}

interface Run {
    step: number
    deltas: number[]
}
type Item = { full: Buffer } | { run: Run }

function itemBytes(it: Item): Buffer {
    if ("full" in it) return Buffer.concat([Buffer.from([ITEM_FULL]), it.full.subarray(4)])
    const { step, deltas } = it.run
    const out = Buffer.alloc(RUN_HEADER_LEN + Math.ceil(deltas.length / 2))
    out[0] = ITEM_RUN
    out[1] = deltas.length
    out.writeUInt16LE(step, 2)
    deltas.forEach((d, i) => {
        out[RUN_HEADER_LEN + (i >> 1)] |= (d & 0x0f) << (i & 1 ? 4 : 0)
    })
    return out
}

/**
 * Items for consecutive records. Greedy, like the firmware: a sample that a run
 * may derive from the reference (the most recent sample before it) extends the
 * last item when that is a run with the same step and fewer than 255 samples,
 * else starts a new run (whose step it fixes); everything else is a full item.
 */
export function encodeItems(list: RecordLike[], opts: EncodeItemsOptions = {}): Buffer {
    const runs = opts.runs ?? true
    const { records, recordBytes } = canonical(list)
    const items: Item[] = []
    let ref: SampleRecord | null = null
    records.forEach((r, i) => {
        const step = runs ? runStep(ref, r) : null
        if (step !== null) {
            const d = (r as SampleRecord).tc - ref!.tc
            const last = items[items.length - 1]
            if (last && "run" in last && last.run.step === step && last.run.deltas.length < RUN_MAX) {
                last.run.deltas.push(d)
            } else {
                items.push({ run: { step, deltas: [d] } })
            }
        } else {
            items.push({ full: recordBytes[i] })
        }
        if (isSample(r)) ref = r
    })
    return Buffer.concat(items.map(itemBytes))
}

export interface DecodeItemsOptions {
    /** refuse (FormatError) as soon as more records than this decode */
    maxCount?: number
}

/**
 * Decodes items into canonical records numbered from `firstSeq`. Throws a one-line
 * FormatError (400) for anything that does not decode: unknown tag, truncated item,
 * bad payload length, run without reference sample, n or step 0, non-zero pad
 * nibble, a derived tc or uptime outside its field, seq past 0xfffffffe.
 */
export function decodeItems(buf: Buffer, firstSeq: number, opts: DecodeItemsOptions = {}): Canonical {
    const maxCount = opts.maxCount ?? Infinity
    const records: LogRecord[] = []
    const recordBytes: Buffer[] = []
    let ref: SampleRecord | null = null
    let off = 0
    let index = 0
    const push = (r: LogRecord, bytes: Buffer, where: string) => {
        if (records.length >= maxCount) throw new FormatError(`${where}: more than ${maxCount} records`)
        records.push(r)
        recordBytes.push(bytes)
    }
    const seqAt = (where: string) => {
        const seq = firstSeq + records.length
        if (seq > MAX_SEQ) throw new FormatError(`${where}: seq past 0xfffffffe`)
        return seq
    }
    while (off < buf.length) {
        const where = `item ${index} at offset ${off}`
        const tag = buf[off]
        const left = buf.length - off
        if (tag === ITEM_FULL) {
            if (left < FULL_HEADER_LEN) throw new FormatError(`${where}: truncated full item header (${left} of ${FULL_HEADER_LEN} bytes)`)
            const kind = buf[off + 1]
            const len = buf[off + 2]
            checkPayloadLen(kind, len, `${where} (kind ${kind})`)
            if (FULL_HEADER_LEN + len > left) {
                throw new FormatError(`${where} (kind ${kind}): payload of ${len} bytes runs past the end (${left - FULL_HEADER_LEN} left)`)
            }
            const seq = seqAt(where)
            const bytes = Buffer.alloc(RECORD_HEADER_LEN + len)
            bytes.writeUInt32LE(seq, 0)
            buf.copy(bytes, 4, off + 1, off + FULL_HEADER_LEN + len)
            const r = decodeFields(seq, kind, bytes.subarray(RECORD_HEADER_LEN))
            push(r, bytes, where)
            if (isSample(r)) ref = r
            off += FULL_HEADER_LEN + len
        } else if (tag === ITEM_RUN) {
            if (left < RUN_HEADER_LEN) throw new FormatError(`${where}: truncated run header (${left} of ${RUN_HEADER_LEN} bytes)`)
            const n = buf[off + 1]
            const step = buf.readUInt16LE(off + 2)
            if (n === 0) throw new FormatError(`${where}: run of 0 samples`)
            if (step === 0) throw new FormatError(`${where}: run with step 0`)
            const nb = Math.ceil(n / 2)
            if (RUN_HEADER_LEN + nb > left) {
                throw new FormatError(`${where}: run of ${n} samples needs ${nb} nibble bytes, ${left - RUN_HEADER_LEN} left`)
            }
            if (!ref) throw new FormatError(`${where}: run without a reference sample`)
            if (n & 1 && buf[off + RUN_HEADER_LEN + nb - 1] >> 4 !== 0) throw new FormatError(`${where}: pad nibble is not 0`)
            for (let i = 0; i < n; i++) {
                const nib = (buf[off + RUN_HEADER_LEN + (i >> 1)] >> (i & 1 ? 4 : 0)) & 0x0f
                const tc: number = ref.tc + (nib >= 8 ? nib - 16 : nib)
                const uptime: number = ref.uptime + step * 1000
                if (tc > 0x7fffffff || tc < -0x80000000) throw new FormatError(`${where}: sample ${i} of the run overflows tc`)
                if (uptime > 0xffffffff) throw new FormatError(`${where}: sample ${i} of the run overflows uptime`)
                const s: SampleRecord = { seq: seqAt(where), kind: KIND.sample, uptime, tc, cj: ref.cj, sr: ref.sr, sflags: ref.sflags }
                push(s, encodeRecord(s), where)
                ref = s
            }
            off += RUN_HEADER_LEN + nb
        } else {
            throw new FormatError(`${where}: unknown item tag 0x${tag.toString(16).padStart(2, "0")}`)
        }
        index++
    }
    return { records, recordBytes }
}
