/**
 * Canonical records (docs/format.md section 2): what the chain hashes and what the server stores.
 * seq u32 | kind u8 | len u8 | payload (starting with t u32: seconds on the real-time clock)
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
export const KIND_BATTERY = 10
export const KIND_RULE_ALARM = 11
export const KIND_LID = 12
/** lid record flags: b0 the clock's event input was not watching before this record (it lost all power, or a first start) */
export const LID_UNWATCHED = 0x01

export const SFLAG_NO_READING = 0x01
export const SFLAG_CONFIG_MISMATCH = 0x02

export const BOOT_POWER_ON = 0
export const BOOT_RESTART = 1
export const BOOT_WATCHDOG = 2
export const BOOT_BROWN_OUT = 3
export const BOOT_INTERRUPTED = 4

/** boot record `rtc` bits */
export const BOOT_RTC_LOST = 0x01
export const BOOT_RTC_BACKUP = 0x02
export const BOOT_RTC_UNSET = 0x04

export const TIME_SOURCE_GPS = 1
export const TIME_SOURCE_NETWORK = 2
export const TIME_SOURCE_SIM = 3
export const TIME_SOURCE_TECHNICIAN = 4
/** time record flag: the real-time clock was set to this UTC here */
export const TIME_FLAG_SET = 0x01

export const BATTERY_NORMAL = 0
export const BATTERY_LOW = 1
export const BATTERY_CRITICAL = 2
/** the last seal and upload are done: the logger records to flash only */
export const BATTERY_FINAL = 3
/** the last record before the logger stops sampling (hardware/power.md) */
export const BATTERY_CUTOFF = 4
export const BATTERY_FLAG_EXTERNAL = 0x01

export const HEADER_LEN = 6
export const SAMPLE_LEN = HEADER_LEN + 12
export const LOC_LEN = 24

function record(seq: number, kind: number, t: number, payloadLen: number): Buffer {
    const b = Buffer.alloc(HEADER_LEN + 4 + payloadLen)
    b.setAt(0, "u32", seq)
    b.setAt(4, "u8", kind)
    b.setAt(5, "u8", 4 + payloadLen)
    b.setAt(6, "u32", t >>> 0)
    return b
}

/** A temperature sample: raw MAX31856 counts and fault bits, exactly as read. */
export function sampleRecord(seq: number, t: number, tc: number, cj: number, sr: number, sflags: number): Buffer {
    const b = record(seq, KIND_SAMPLE, t, 8)
    b.setAt(10, "i32", tc)
    b.setAt(14, "i16", cj)
    b.setAt(16, "u8", sr)
    b.setAt(17, "u8", sflags)
    return b
}

/** `prevHead`: the head before this record (its first 8 bytes are stated); `fw`: 8 bytes of program identity */
export function bootRecord(seq: number, t: number, boot: number, reason: number, rtc: number, prevHead: Buffer, fw: Buffer): Buffer {
    const b = record(seq, KIND_BOOT, t, 22)
    b.setAt(10, "u32", boot)
    b.setAt(14, "u8", reason)
    b.setAt(15, "u8", rtc)
    if (seq > 0) b.blitAt(16, prevHead, 0, 8)
    b.blitAt(24, fw, 0, 8)
    return b
}

export function configRecord(seq: number, t: number, hash16: Buffer): Buffer {
    const b = record(seq, KIND_CONFIG, t, 16)
    b.blitAt(10, hash16, 0, 16)
    return b
}

/** UTC (ms since 1970) at device time `t`; with TIME_FLAG_SET the clock was set to it here. */
export function timeRecord(seq: number, t: number, utcMs: number, source: number, flags: number): Buffer {
    const b = record(seq, KIND_TIME, t, 10)
    const hi = Math.floor(utcMs / 4294967296)
    b.setAt(10, "u32", utcMs - hi * 4294967296)
    b.setAt(14, "u32", hi)
    b.setAt(18, "u8", source)
    b.setAt(19, "u8", flags)
    return b
}

/** A stop: from device time `start` to `t`, at the encrypted position `loc` (24 bytes). */
export function stopRecord(seq: number, t: number, start: number, loc: Buffer): Buffer {
    const b = record(seq, KIND_STOP, t, 28)
    b.setAt(10, "u32", start >>> 0)
    b.blitAt(14, loc, 0, LOC_LEN)
    return b
}

export function alarmRecord(seq: number, t: number, type: number, tc: number): Buffer {
    const b = record(seq, KIND_ALARM, t, 5)
    b.setAt(10, "u8", type)
    b.setAt(11, "i32", tc)
    return b
}

/** Summary of records evicted unsent from a full store (docs/format.md section 5.5). */
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

export function evictedRecord(seq: number, t: number, s: EvictedSummary): Buffer {
    const b = record(seq, KIND_EVICTED, t, 30)
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

/** the first seq an evicted record summarizes */
export function evictedFirst(rec: Buffer): number {
    return rec.getAt(10, "u32")
}

export function sealRecord(seq: number, t: number, epoch: number, count: number, mac16: Buffer): Buffer {
    const b = record(seq, KIND_SEAL, t, 22)
    b.setAt(10, "u32", epoch)
    b.setAt(14, "u16", count)
    b.blitAt(16, mac16, 0, 16)
    return b
}

export function fixRecord(seq: number, t: number, loc: Buffer, fixType: number, sv: number): Buffer {
    const b = record(seq, KIND_FIX, t, 26)
    b.blitAt(10, loc, 0, LOC_LEN)
    b.setAt(34, "u8", fixType)
    b.setAt(35, "u8", sv)
    return b
}

/**
 * An alarm rule's event (docs/alarms.md): rule `rule` (its index in the compiled rule set, of type
 * `type`) raised (`raise`) or cleared, `why` (docs/alarms.md codes), with the reading that did it
 * (a count, or mV for a battery rule).
 */
export function ruleAlarmRecord(seq: number, t: number, rule: number, raise: boolean, why: number, type: number, value: number): Buffer {
    const b = record(seq, KIND_RULE_ALARM, t, 8)
    b.setAt(10, "u8", rule)
    b.setAt(11, "u8", raise ? 1 : 0)
    b.setAt(12, "u8", why)
    b.setAt(13, "u8", type)
    b.setAt(14, "i32", value)
    return b
}

/**
 * The lid (docs/format.md kind 12): `count` edges of the kind the clock was armed for (`openEdge`:
 * openings, else closings) since the previous lid record, the first at `first`; whether it is open at `t`.
 */
export function lidRecord(seq: number, t: number, first: number, openEdge: boolean, count: number, open: boolean, flags: number): Buffer {
    const b = record(seq, KIND_LID, t, 8)
    b.setAt(10, "u32", first >>> 0)
    b[14] = openEdge ? 1 : 0
    b[15] = count
    b[16] = open ? 1 : 0
    b[17] = flags
    return b
}

/** Cell voltage (mV) and the level the firmware acts on. */
export function batteryRecord(seq: number, t: number, mv: number, level: number, flags: number): Buffer {
    const b = record(seq, KIND_BATTERY, t, 4)
    b.setAt(10, "u16", mv)
    b.setAt(12, "u8", level)
    b.setAt(13, "u8", flags)
    return b
}

export function recordSeq(rec: Buffer): number {
    return rec.getAt(0, "u32")
}

export function recordKind(rec: Buffer): number {
    return rec.getAt(4, "u8")
}

/** device time of a record (seconds on the real-time clock) */
export function recordTime(rec: Buffer): number {
    return rec.getAt(6, "u32")
}

/** sample fields (for records of KIND_SAMPLE) */
export function sampleTc(rec: Buffer): number {
    return rec.getAt(10, "i32")
}
export function sampleSr(rec: Buffer): number {
    return rec[16]
}
export function sampleFlags(rec: Buffer): number {
    return rec[17]
}

/** seal fields (for records of KIND_SEAL) */
export function sealEpoch(rec: Buffer): number {
    return rec.getAt(10, "u32")
}
