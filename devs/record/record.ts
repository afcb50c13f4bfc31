/**
 * Canonical records (docs/format.md section 2): what the chain hashes and what the server stores.
 * seq u32 | kind u8 | len u8 | payload (starting with uptime u32)
 */
export const KIND_SAMPLE = 1
export const KIND_BOOT = 2
export const KIND_CONFIG = 3
export const KIND_TIME = 4
export const KIND_ALARM = 6
export const KIND_GAP = 7

export const SFLAG_NO_READING = 0x01
export const SFLAG_CONFIG_MISMATCH = 0x02

export const TIME_SOURCE_GPS = 1
export const TIME_SOURCE_NETWORK = 2
export const TIME_SOURCE_SIM = 3

export const HEADER_LEN = 6

function record(seq: number, kind: number, uptime: number, payloadLen: number): Buffer {
    const b = Buffer.alloc(HEADER_LEN + 4 + payloadLen)
    b.setAt(0, "u32", seq)
    b.setAt(4, "u8", kind)
    b.setAt(5, "u8", 4 + payloadLen)
    b.setAt(6, "u32", uptime >>> 0)
    return b
}

/** A temperature sample: raw MAX31856 counts and fault bits, exactly as read. */
export function sampleRecord(seq: number, uptime: number, tc: number, cj: number, sr: number, sflags: number): Buffer {
    const b = record(seq, KIND_SAMPLE, uptime, 8)
    b.setAt(10, "i32", tc)
    b.setAt(14, "i16", cj)
    b.setAt(16, "u8", sr)
    b.setAt(17, "u8", sflags)
    return b
}

export function bootRecord(seq: number, uptime: number, boot: number, reason: number): Buffer {
    const b = record(seq, KIND_BOOT, uptime, 5)
    b.setAt(10, "u32", boot)
    b.setAt(14, "u8", reason)
    return b
}

export function configRecord(seq: number, uptime: number, hash16: Buffer): Buffer {
    const b = record(seq, KIND_CONFIG, uptime, 16)
    b.blitAt(10, hash16, 0, 16)
    return b
}

/** UTC (ms since 1970) valid at `uptime`; the host places every record of this boot from it. */
export function timeRecord(seq: number, uptime: number, utcMs: number, source: number): Buffer {
    const b = record(seq, KIND_TIME, uptime, 9)
    const hi = Math.floor(utcMs / 4294967296)
    b.setAt(10, "u32", utcMs - hi * 4294967296)
    b.setAt(14, "u32", hi)
    b.setAt(18, "u8", source)
    return b
}

export function alarmRecord(seq: number, uptime: number, type: number, tc: number): Buffer {
    const b = record(seq, KIND_ALARM, uptime, 5)
    b.setAt(10, "u8", type)
    b.setAt(11, "i32", tc)
    return b
}

export function gapRecord(seq: number, uptime: number, first: number, last: number): Buffer {
    const b = record(seq, KIND_GAP, uptime, 8)
    b.setAt(10, "u32", first)
    b.setAt(14, "u32", last)
    return b
}

export function recordSeq(rec: Buffer): number {
    return rec.getAt(0, "u32")
}

export function recordKind(rec: Buffer): number {
    return rec.getAt(4, "u8")
}

/** Total length of the record starting at `off` in `buf`, or 0 if it does not fit. */
export function recordLengthAt(buf: Buffer, off: number): number {
    if (off + HEADER_LEN > buf.length) return 0
    const n = HEADER_LEN + buf.getAt(off + 5, "u8")
    return off + n <= buf.length ? n : 0
}
