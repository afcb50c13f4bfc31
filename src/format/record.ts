// Canonical records (docs/format.md section 2): the bytes the chain hashes.
// Decoding is structural: it checks lengths and framing, not whether a value is
// plausible, because a record is already chained on the device and rejecting it
// would wedge the logger (it could never send past it). Plausibility belongs to
// the reader that shows the data.

/** A format violation. `message` is one line, fit to be sent back as an HTTP reason. */
export class FormatError extends Error {
    readonly status: number
    constructor(reason: string, status = 400) {
        super(reason)
        this.name = "FormatError"
        this.status = status
    }
}

export const KIND = {
    sample: 1,
    boot: 2,
    config: 3,
    time: 4,
    stop: 5,
    alarm: 6,
    evicted: 7,
    seal: 8,
    fix: 9,
    battery: 10,
    ruleAlarm: 11,
    lid: 12,
} as const

/** Payload length (`t` included) of every known kind. */
export const PAYLOAD_LEN: { readonly [kind: number]: number } = {
    [KIND.sample]: 12,
    [KIND.boot]: 26,
    [KIND.config]: 20,
    [KIND.time]: 14,
    [KIND.stop]: 32,
    [KIND.alarm]: 9,
    [KIND.evicted]: 34,
    [KIND.seal]: 26,
    [KIND.fix]: 30,
    [KIND.battery]: 8,
    [KIND.ruleAlarm]: 12,
    [KIND.lid]: 12,
}

export const RECORD_HEADER_LEN = 6 // seq u32, kind u8, len u8
export const T_LEN = 4
/** 0xFFFFFFFF means "none" in an ack, so no record can carry it. */
export const MAX_SEQ = 0xfffffffe
export const LOC_LEN = 24
export const BOOT_PREV_LEN = 8
export const FIRMWARE_ID_LEN = 8
export const CONFIG_HASH_LEN = 16
export const SEAL_MAC_LEN = 16

export const SFLAG_NO_READING = 0x01
export const SFLAG_CONFIG_MISMATCH = 0x02

/** Why the logger booted (a wake from standby is not a boot; docs/format.md 2.3). */
export const BOOT_REASON = { powerOn: 0, restart: 1, watchdog: 2, brownOut: 3, interrupted: 4 } as const
/** Boot record `rtc` bits: what the real-time clock said at this boot. */
export const BOOT_RTC = {
    /** power-on reset: the clock lost all power, its time restarted from 0 */
    lost: 0x01,
    /** it ran on its backup supply since the previous boot */
    backup: 0x02,
    /** its time was never set from a trusted source since it last lost power */
    unset: 0x04,
} as const
export const TIME_SOURCE = { gnss: 1, network: 2, simulator: 3, technician: 4 } as const
/** Time record `flags` */
export const TIME_FLAG = {
    /** the real-time clock was set to `utc` at this record: records after it read the new time */
    set: 0x01,
} as const
export const ALARM_TYPE = { aboveBand: 1, belowBand: 2, backInBand: 3 } as const
export const BATTERY_LEVEL = { normal: 0, low: 1, critical: 2, final: 3, cutoff: 4 } as const
/** A rule alarm's `why` (docs/alarms.md): band side, too many openings, open too long */
export const RULE_WHY = { none: 0, above: 1, below: 2, count: 3, duration: 4 } as const
/** A lid record's flags: the clock's event input was not watching before it (a first start, or the clock lost all power) */
export const LID_FLAG = { unwatched: 0x01 } as const
/** how people read a battery level (reports, CSV) */
export const BATTERY_LEVEL_NAME: Record<number, string> = { 0: "normal", 1: "low", 2: "critical", 3: "final", 4: "cut-off" }
export const BATTERY_FLAG = {
    /** external power (USB) present */
    external: 0x01,
} as const

interface RecordBase {
    seq: number
    /** device time: seconds on the logger's real-time clock (docs/timebase.md) */
    t: number
}
export interface SampleRecord extends RecordBase {
    kind: typeof KIND.sample
    /** thermocouple, 1/128 C per count (19-bit signed) */
    tc: number
    /** cold junction, 1/64 C per count (14-bit signed) */
    cj: number
    /** MAX31856 fault status register */
    sr: number
    sflags: number
}
export interface BootRecord extends RecordBase {
    kind: typeof KIND.boot
    /** boot counter, 1 for the first boot */
    boot: number
    reason: number
    /** BOOT_RTC bits */
    rtc: number
    /** first 8 bytes of the head before this record (zeros for seq 0) */
    prev: Buffer
    /** the program that runs: first 8 bytes of its identity (docs/format.md 2.3) */
    fw: Buffer
}
export interface ConfigRecord extends RecordBase {
    kind: typeof KIND.config
    /** first 16 bytes of SHA-256 of the configuration text */
    hash: Buffer
}
export interface TimeRecord extends RecordBase {
    kind: typeof KIND.time
    /** UTC ms since 1970 at `t` (utc_hi:utc_lo on the wire) */
    utc: number
    source: number
    /** TIME_FLAG bits */
    flags: number
}
export interface StopRecord extends RecordBase {
    kind: typeof KIND.stop
    /** device time when the stop began (`t` is when it ended) */
    start: number
    /** encrypted position, section 2.2 (see encryptLoc) */
    loc: Buffer
}
export interface AlarmRecord extends RecordBase {
    kind: typeof KIND.alarm
    type: number
    tc: number
}
/** An alarm rule's event (docs/alarms.md): the rule's index in the compiled rule set, raised or cleared. */
export interface RuleAlarmRecord extends RecordBase {
    kind: typeof KIND.ruleAlarm
    rule: number
    raise: boolean
    /** RULE_WHY */
    why: number
    /** the rule's type code (docs/alarms.md, State) */
    type: number
    /** the reading that did it: a count (1/128 °C), or mV for a battery rule, 0 when none */
    value: number
}
/**
 * The shipper's lid (docs/format.md kind 12): `count` edges of the kind the clock watched for
 * (`openEdge`: openings, else closings) since the previous lid record, the first at `first`; the lid
 * as read at `t`.
 */
export interface LidRecord extends RecordBase {
    kind: typeof KIND.lid
    /** `t` of the first edge (the clock's time stamp); 0 when `count` is 0 */
    first: number
    openEdge: boolean
    count: number
    open: boolean
    /** LID_FLAG */
    flags: number
}
/** Summary of records removed unsent from a full store (section 5.3). */
export interface EvictedRecord extends RecordBase {
    kind: typeof KIND.evicted
    /** seq range removed, inclusive */
    first: number
    last: number
    /** sample records among them */
    samples: number
    /** device time of the first and last removed sample (0 if none) */
    tFirst: number
    tLast: number
    /** extremes of the non-faulted samples (0, 0 if none) */
    minTc: number
    maxTc: number
    /** minutes outside the alarm band */
    outMin: number
    /** union of the fault bits of the removed samples */
    srOr: number
    sflagsOr: number
}
export interface SealRecord extends RecordBase {
    kind: typeof KIND.seal
    epoch: number
    /** records since the previous seal (or since seq 0), this seal excluded */
    count: number
    /** MAC16(k[epoch], ...), see sealMac */
    mac: Buffer
}
export interface FixRecord extends RecordBase {
    kind: typeof KIND.fix
    /** encrypted position, section 2.2 (see encryptLoc) */
    loc: Buffer
    /** GNSS fix type 2, 3 or 4 */
    fix: number
    /** satellites */
    sv: number
}
export interface BatteryRecord extends RecordBase {
    kind: typeof KIND.battery
    /** cell voltage, mV */
    mv: number
    /** BATTERY_LEVEL */
    level: number
    /** BATTERY_FLAG bits */
    flags: number
}
/** A kind this reader does not know: kept whole so it can be stored and re-hashed. */
export interface UnknownRecord extends RecordBase {
    kind: number
    /** payload bytes after `t` */
    payload: Buffer
}

export type KnownRecord =
    | SampleRecord
    | BootRecord
    | ConfigRecord
    | TimeRecord
    | StopRecord
    | AlarmRecord
    | EvictedRecord
    | SealRecord
    | FixRecord
    | BatteryRecord
    | RuleAlarmRecord
    | LidRecord
export type LogRecord = KnownRecord | UnknownRecord

export function isKnown(r: LogRecord): r is KnownRecord {
    return PAYLOAD_LEN[r.kind] !== undefined && !("payload" in r)
}
export function isSample(r: LogRecord): r is SampleRecord {
    return r.kind === KIND.sample && !("payload" in r)
}

/** A sample with any fault bit is shown as a fault, never as a temperature. */
export function isFaulted(s: Pick<SampleRecord, "sr" | "sflags">): boolean {
    return s.sr !== 0 || s.sflags !== 0
}
export function tcToCelsius(tc: number): number {
    return tc / 128
}
export function cjToCelsius(cj: number): number {
    return cj / 64
}
/** Thermocouple temperature in C, or null when the sample is faulted. */
export function sampleCelsius(s: SampleRecord): number | null {
    return isFaulted(s) ? null : tcToCelsius(s.tc)
}

function checkInt(v: number, min: number, max: number, name: string): void {
    if (!Number.isInteger(v) || v < min || v > max) {
        throw new RangeError(`${name} must be an integer in ${min}..${max}, got ${v}`)
    }
}
function checkBuf(b: Buffer, len: number, name: string): void {
    if (!Buffer.isBuffer(b) || b.length !== len) throw new RangeError(`${name} must be ${len} bytes, got ${b?.length}`)
}
const U8 = 0xff
const U16 = 0xffff
const U32 = 0xffffffff
const I32_MIN = -0x80000000
const I32_MAX = 0x7fffffff

/** The payload after `t` of a known record. */
function encodeBody(k: KnownRecord): Buffer {
    const body = Buffer.alloc(PAYLOAD_LEN[k.kind] - T_LEN)
    switch (k.kind) {
        case KIND.sample:
            checkInt(k.tc, I32_MIN, I32_MAX, "tc")
            checkInt(k.cj, -0x8000, 0x7fff, "cj")
            checkInt(k.sr, 0, U8, "sr")
            checkInt(k.sflags, 0, U8, "sflags")
            body.writeInt32LE(k.tc, 0)
            body.writeInt16LE(k.cj, 4)
            body.writeUInt8(k.sr, 6)
            body.writeUInt8(k.sflags, 7)
            break
        case KIND.boot:
            checkInt(k.boot, 0, U32, "boot")
            checkInt(k.reason, 0, U8, "reason")
            checkInt(k.rtc, 0, U8, "rtc")
            checkBuf(k.prev, BOOT_PREV_LEN, "boot prev")
            checkBuf(k.fw, FIRMWARE_ID_LEN, "boot fw")
            body.writeUInt32LE(k.boot, 0)
            body.writeUInt8(k.reason, 4)
            body.writeUInt8(k.rtc, 5)
            k.prev.copy(body, 6)
            k.fw.copy(body, 14)
            break
        case KIND.config:
            checkBuf(k.hash, CONFIG_HASH_LEN, "config hash")
            k.hash.copy(body, 0)
            break
        case KIND.time:
            checkInt(k.utc, 0, Number.MAX_SAFE_INTEGER, "utc")
            checkInt(k.source, 0, U8, "source")
            checkInt(k.flags, 0, U8, "flags")
            body.writeUInt32LE(k.utc % 0x100000000, 0)
            body.writeUInt32LE(Math.floor(k.utc / 0x100000000), 4)
            body.writeUInt8(k.source, 8)
            body.writeUInt8(k.flags, 9)
            break
        case KIND.stop:
            checkInt(k.start, 0, U32, "start")
            checkBuf(k.loc, LOC_LEN, "loc")
            body.writeUInt32LE(k.start, 0)
            k.loc.copy(body, 4)
            break
        case KIND.alarm:
            checkInt(k.type, 0, U8, "type")
            checkInt(k.tc, I32_MIN, I32_MAX, "tc")
            body.writeUInt8(k.type, 0)
            body.writeInt32LE(k.tc, 1)
            break
        case KIND.evicted:
            checkInt(k.first, 0, U32, "first")
            checkInt(k.last, 0, U32, "last")
            checkInt(k.samples, 0, U16, "samples")
            checkInt(k.tFirst, 0, U32, "tFirst")
            checkInt(k.tLast, 0, U32, "tLast")
            checkInt(k.minTc, I32_MIN, I32_MAX, "minTc")
            checkInt(k.maxTc, I32_MIN, I32_MAX, "maxTc")
            checkInt(k.outMin, 0, U16, "outMin")
            checkInt(k.srOr, 0, U8, "srOr")
            checkInt(k.sflagsOr, 0, U8, "sflagsOr")
            body.writeUInt32LE(k.first, 0)
            body.writeUInt32LE(k.last, 4)
            body.writeUInt16LE(k.samples, 8)
            body.writeUInt32LE(k.tFirst, 10)
            body.writeUInt32LE(k.tLast, 14)
            body.writeInt32LE(k.minTc, 18)
            body.writeInt32LE(k.maxTc, 22)
            body.writeUInt16LE(k.outMin, 26)
            body.writeUInt8(k.srOr, 28)
            body.writeUInt8(k.sflagsOr, 29)
            break
        case KIND.seal:
            checkInt(k.epoch, 0, U32, "epoch")
            checkInt(k.count, 0, U16, "count")
            checkBuf(k.mac, SEAL_MAC_LEN, "seal mac")
            body.writeUInt32LE(k.epoch, 0)
            body.writeUInt16LE(k.count, 4)
            k.mac.copy(body, 6)
            break
        case KIND.fix:
            checkBuf(k.loc, LOC_LEN, "loc")
            checkInt(k.fix, 0, U8, "fix")
            checkInt(k.sv, 0, U8, "sv")
            k.loc.copy(body, 0)
            body.writeUInt8(k.fix, LOC_LEN)
            body.writeUInt8(k.sv, LOC_LEN + 1)
            break
        case KIND.battery:
            checkInt(k.mv, 0, U16, "mv")
            checkInt(k.level, 0, U8, "level")
            checkInt(k.flags, 0, U8, "flags")
            body.writeUInt16LE(k.mv, 0)
            body.writeUInt8(k.level, 2)
            body.writeUInt8(k.flags, 3)
            break
        case KIND.ruleAlarm:
            checkInt(k.rule, 0, U8, "rule")
            checkInt(k.why, 0, U8, "why")
            checkInt(k.type, 0, U8, "type")
            checkInt(k.value, I32_MIN, I32_MAX, "value")
            body.writeUInt8(k.rule, 0)
            body.writeUInt8(k.raise ? 1 : 0, 1)
            body.writeUInt8(k.why, 2)
            body.writeUInt8(k.type, 3)
            body.writeInt32LE(k.value, 4)
            break
        case KIND.lid:
            checkInt(k.first, 0, U32, "first")
            checkInt(k.count, 0, U8, "count")
            checkInt(k.flags, 0, U8, "flags")
            body.writeUInt32LE(k.first, 0)
            body.writeUInt8(k.openEdge ? 1 : 0, 4)
            body.writeUInt8(k.count, 5)
            body.writeUInt8(k.open ? 1 : 0, 6)
            body.writeUInt8(k.flags, 7)
            break
    }
    return body
}

/** Canonical bytes of a record. Throws RangeError for values that do not fit their fields. */
export function encodeRecord(r: LogRecord): Buffer {
    checkInt(r.seq, 0, MAX_SEQ, "seq")
    checkInt(r.kind, 0, U8, "kind")
    checkInt(r.t, 0, U32, "t")
    let body: Buffer // payload after t
    if ("payload" in r) {
        if (PAYLOAD_LEN[r.kind] !== undefined) {
            throw new RangeError(`kind ${r.kind} is known: encode it from its fields, not a payload`)
        }
        body = r.payload
    } else {
        if (PAYLOAD_LEN[r.kind] === undefined) throw new RangeError(`kind ${r.kind} is not known: give its payload`)
        body = encodeBody(r)
    }
    const len = T_LEN + body.length
    if (len > U8) throw new RangeError(`payload of ${len} bytes does not fit the u8 len field`)
    const out = Buffer.alloc(RECORD_HEADER_LEN + len)
    out.writeUInt32LE(r.seq, 0)
    out.writeUInt8(r.kind, 4)
    out.writeUInt8(len, 5)
    out.writeUInt32LE(r.t, 6)
    body.copy(out, RECORD_HEADER_LEN + T_LEN)
    return out
}

/** Decodes exactly one record; `buf` must hold that record and nothing else. */
export function decodeRecord(buf: Buffer): LogRecord {
    const { records } = parseRecords(buf)
    if (records.length !== 1) throw new FormatError(`expected one record, found ${records.length}`)
    return records[0]
}

/**
 * Fields of a record from its kind and payload (`t` included). The caller has
 * checked that a known kind has its exact payload length.
 */
export function decodeFields(seq: number, kind: number, p: Buffer): LogRecord {
    const t = p.readUInt32LE(0)
    const copy = (from: number, to: number) => Buffer.from(p.subarray(from, to))
    switch (kind) {
        case KIND.sample:
            return { seq, kind, t, tc: p.readInt32LE(4), cj: p.readInt16LE(8), sr: p[10], sflags: p[11] }
        case KIND.boot:
            return { seq, kind, t, boot: p.readUInt32LE(4), reason: p[8], rtc: p[9], prev: copy(10, 18), fw: copy(18, 26) }
        case KIND.config:
            return { seq, kind, t, hash: copy(4, 20) }
        case KIND.time:
            return { seq, kind, t, utc: p.readUInt32LE(8) * 0x100000000 + p.readUInt32LE(4), source: p[12], flags: p[13] }
        case KIND.stop:
            return { seq, kind, t, start: p.readUInt32LE(4), loc: copy(8, 8 + LOC_LEN) }
        case KIND.alarm:
            return { seq, kind, t, type: p[4], tc: p.readInt32LE(5) }
        case KIND.evicted:
            return {
                seq,
                kind,
                t,
                first: p.readUInt32LE(4),
                last: p.readUInt32LE(8),
                samples: p.readUInt16LE(12),
                tFirst: p.readUInt32LE(14),
                tLast: p.readUInt32LE(18),
                minTc: p.readInt32LE(22),
                maxTc: p.readInt32LE(26),
                outMin: p.readUInt16LE(30),
                srOr: p[32],
                sflagsOr: p[33],
            }
        case KIND.seal:
            return { seq, kind, t, epoch: p.readUInt32LE(4), count: p.readUInt16LE(8), mac: copy(10, 26) }
        case KIND.fix:
            return { seq, kind, t, loc: copy(4, 4 + LOC_LEN), fix: p[4 + LOC_LEN], sv: p[5 + LOC_LEN] }
        case KIND.battery:
            return { seq, kind, t, mv: p.readUInt16LE(4), level: p[6], flags: p[7] }
        case KIND.ruleAlarm:
            return { seq, kind, t, rule: p[4], raise: p[5] !== 0, why: p[6], type: p[7], value: p.readInt32LE(8) }
        case KIND.lid:
            return { seq, kind, t, first: p.readUInt32LE(4), openEdge: p[8] !== 0, count: p[9], open: p[10] !== 0, flags: p[11] }
        default:
            return { seq, kind, t, payload: copy(T_LEN, p.length) }
    }
}

/**
 * Checks a payload length against the kind (FormatError otherwise): at least the
 * device time `t`, and exactly the table's length for a known kind (a different size is a
 * writer bug, not an extension).
 */
export function checkPayloadLen(kind: number, len: number, where: string): void {
    if (len < T_LEN) throw new FormatError(`${where}: payload of ${len} bytes has no t`)
    const want = PAYLOAD_LEN[kind]
    if (want !== undefined && len !== want) {
        throw new FormatError(`${where}: payload is ${len} bytes, kind ${kind} needs ${want}`)
    }
}

export interface ParsedRecords {
    records: LogRecord[]
    /** canonical bytes of each record (copies, safe to keep) */
    raw: Buffer[]
}

/**
 * Walks a concatenation of canonical records that must be filled exactly by whole
 * records (for tools; flash and batches carry packed streams, see pack.ts).
 * With `firstSeq`, the records must also be numbered consecutively from it.
 */
export function parseRecords(buf: Buffer, firstSeq?: number): ParsedRecords {
    const records: LogRecord[] = []
    const raw: Buffer[] = []
    let off = 0
    while (off < buf.length) {
        const i = records.length
        const left = buf.length - off
        if (left < RECORD_HEADER_LEN) {
            throw new FormatError(`record ${i} at offset ${off}: truncated header (${left} of ${RECORD_HEADER_LEN} bytes)`)
        }
        const seq = buf.readUInt32LE(off)
        const kind = buf[off + 4]
        const len = buf[off + 5]
        const where = `record ${i} (seq ${seq}, kind ${kind}) at offset ${off}`
        if (RECORD_HEADER_LEN + len > left) {
            throw new FormatError(`${where}: payload of ${len} bytes runs past the end (${left - RECORD_HEADER_LEN} left)`)
        }
        checkPayloadLen(kind, len, where)
        if (seq > MAX_SEQ) throw new FormatError(`${where}: seq 0xffffffff is reserved`)
        if (firstSeq !== undefined && seq !== firstSeq + i) {
            throw new FormatError(`${where}: seq not consecutive, expected ${firstSeq + i}`)
        }
        const end = off + RECORD_HEADER_LEN + len
        records.push(decodeFields(seq, kind, buf.subarray(off + RECORD_HEADER_LEN, end)))
        raw.push(Buffer.from(buf.subarray(off, end)))
        off = end
    }
    return { records, raw }
}

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
