/**
 * Canonical records (docs/format.md section 2): what the chain hashes and what the server stores.
 * seq u32 | kind u8 | len u8 | payload (starting with uptime u32)
 */
export const KIND_SAMPLE = 1
export const KIND_BOOT = 2
export const KIND_CONFIG = 3
export const KIND_TIME = 4
export const KIND_STOP = 5
export const KIND_ALARM = 6
export const KIND_EVICTED = 7
export const KIND_SEAL = 8
export const KIND_FIX = 9

export const SFLAG_NO_READING = 0x01
export const SFLAG_CONFIG_MISMATCH = 0x02

export const TIME_SOURCE_GPS = 1
export const TIME_SOURCE_NETWORK = 2
export const TIME_SOURCE_SIM = 3

export const HEADER_LEN = 6
export const SAMPLE_LEN = HEADER_LEN + 12

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

/** `prevHead`: the head before this record; its first 8 bytes are stated in the record */
export function bootRecord(seq: number, uptime: number, boot: number, reason: number, prevHead: Buffer): Buffer {
    const b = record(seq, KIND_BOOT, uptime, 13)
    b.setAt(10, "u32", boot)
    b.setAt(14, "u8", reason)
    if (seq > 0) b.blitAt(15, prevHead, 0, 8)
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

/** A stop: from uptime `start` to `uptime`, at the encrypted position `loc` (16 bytes). */
export function stopRecord(seq: number, uptime: number, start: number, loc: Buffer): Buffer {
    const b = record(seq, KIND_STOP, uptime, 20)
    b.setAt(10, "u32", start >>> 0)
    b.blitAt(14, loc, 0, 16)
    return b
}

export function alarmRecord(seq: number, uptime: number, type: number, tc: number): Buffer {
    const b = record(seq, KIND_ALARM, uptime, 5)
    b.setAt(10, "u8", type)
    b.setAt(11, "i32", tc)
    return b
}

/** Summary of records evicted unsent from a full store (docs/format.md section 5.3). */
export class EvictedSummary {
    first = 0
    last = 0
    samples = 0
    tFirst = 0
    tLast = 0
    minTc = 0
    maxTc = 0
    outMin = 0
    srOr = 0
    sflagsOr = 0
}

export function evictedRecord(seq: number, uptime: number, s: EvictedSummary): Buffer {
    const b = record(seq, KIND_EVICTED, uptime, 30)
    b.setAt(10, "u32", s.first)
    b.setAt(14, "u32", s.last)
    b.setAt(18, "u16", s.samples)
    b.setAt(20, "u32", s.tFirst)
    b.setAt(24, "u32", s.tLast)
    b.setAt(28, "i32", s.minTc)
    b.setAt(32, "i32", s.maxTc)
    b.setAt(36, "u16", s.outMin)
    b.setAt(38, "u8", s.srOr)
    b.setAt(39, "u8", s.sflagsOr)
    return b
}

export function sealRecord(seq: number, uptime: number, epoch: number, count: number, mac16: Buffer): Buffer {
    const b = record(seq, KIND_SEAL, uptime, 22)
    b.setAt(10, "u32", epoch)
    b.setAt(14, "u16", count)
    b.blitAt(16, mac16, 0, 16)
    return b
}

export function fixRecord(seq: number, uptime: number, loc: Buffer, fixType: number, sv: number): Buffer {
    const b = record(seq, KIND_FIX, uptime, 18)
    b.blitAt(10, loc, 0, 16)
    b.setAt(26, "u8", fixType)
    b.setAt(27, "u8", sv)
    return b
}

export function recordSeq(rec: Buffer): number {
    return rec.getAt(0, "u32")
}

export function recordKind(rec: Buffer): number {
    return rec.getAt(4, "u8")
}

export function recordUptime(rec: Buffer): number {
    return rec.getAt(6, "u32")
}

/** Total length of the record starting at `off` in `buf`, or 0 if it does not fit. */
export function recordLengthAt(buf: Buffer, off: number): number {
    if (off + HEADER_LEN > buf.length) return 0
    const n = HEADER_LEN + buf.getAt(off + 5, "u8")
    return off + n <= buf.length ? n : 0
}
