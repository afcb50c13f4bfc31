// UBX framing on the host (Node Buffer API): frames, a NAV-PVT payload builder and a stream
// parser. The simulator uses them to write and read u-blox capture files (raw receiver output,
// which the receiver model, src/sim/models/ublox.ts, replays to the firmware; it also builds its
// NAV-PVT output with them). The firmware has the same framing in
// devs/sensor/ubx.ts; both are checked against the same byte vectors (test/ubx-host.test.ts and
// devs/test/ublox.test.ts). Layout: u-blox interface description, NAV-PVT as in
// docs/parts.md.
//
//     B5 62 | class | id | length u16 LE | payload | CK_A CK_B   (8-bit Fletcher over class..payload)

export const UBX_SYNC1 = 0xb5
export const UBX_SYNC2 = 0x62
export const UBX_HEADER_LEN = 6
export const UBX_OVERHEAD = 8
/** Largest frame parseUbxStream accepts by default (the firmware parser's limit too). */
export const UBX_MAX_FRAME = 1024

export const CLS_NAV = 0x01
export const ID_NAV_PVT = 0x07
export const CLS_ACK = 0x05
export const ID_ACK_NAK = 0x00
export const ID_ACK_ACK = 0x01
export const CLS_CFG = 0x06
export const ID_CFG_VALSET = 0x8a
/** UBX-RXM-PMREQ: power management request (software standby) */
export const CLS_RXM = 0x02
export const ID_RXM_PMREQ = 0x41
export const NAV_PVT_LEN = 92

/** GPS epoch 1980-01-06T00:00:00Z, ms since 1970 */
export const GPS_EPOCH_MS = 315_964_800_000
/** GPS - UTC since 2017-01-01 */
export const GPS_LEAP_SECONDS = 18
const WEEK_MS = 604_800_000

export interface UbxMessage {
    cls: number
    id: number
    payload: Buffer
    /** offset of the frame's first sync byte in the parsed buffer */
    offset: number
}

/** 8-bit Fletcher checksum over buf[start..end): CK_A in the low byte, CK_B in the high byte. */
export function ubxChecksum(buf: Buffer, start = 0, end = buf.length): number {
    let a = 0
    let b = 0
    for (let i = start; i < end; i++) {
        a = (a + buf[i]) & 0xff
        b = (b + a) & 0xff
    }
    return a | (b << 8)
}

/** A complete UBX frame. */
export function ubxFrame(cls: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
    if (payload.length > 0xffff) throw new RangeError(`UBX payload of ${payload.length} bytes`)
    const f = Buffer.alloc(payload.length + UBX_OVERHEAD)
    f[0] = UBX_SYNC1
    f[1] = UBX_SYNC2
    f[2] = cls & 0xff
    f[3] = id & 0xff
    f.writeUInt16LE(payload.length, 4)
    payload.copy(f, UBX_HEADER_LEN)
    const ck = ubxChecksum(f, 2, UBX_HEADER_LEN + payload.length)
    f[UBX_HEADER_LEN + payload.length] = ck & 0xff
    f[UBX_HEADER_LEN + payload.length + 1] = ck >> 8
    return f
}

/** The NAV-PVT poll, B5 62 01 07 00 00 08 19. */
export function navPvtPoll(): Buffer {
    return ubxFrame(CLS_NAV, ID_NAV_PVT)
}

/**
 * NAV-PVT fields, in the receiver's integer units (the names the firmware decoder uses):
 * lat/lon 1e-7 deg, headMot/headAcc 1e-5 deg, pDOP 0.01, the rest as the unit suffix says.
 */
export interface NavPvtFields {
    iTOW: number
    year: number
    month: number
    day: number
    hour: number
    min: number
    sec: number
    validDate: boolean
    validTime: boolean
    fullyResolved: boolean
    tAccNs: number
    /** signed, -1e9..1e9 */
    nano: number
    /** 0 none, 1 dead reckoning, 2 2D, 3 3D, 4 GNSS + DR, 5 time only */
    fixType: number
    gnssFixOK: boolean
    /** NAV-PVT flags2 byte (confirmedAvai b5, confirmedDate b6, confirmedTime b7) */
    flags2: number
    numSV: number
    lon: number
    lat: number
    heightMm: number
    hMslMm: number
    hAccMm: number
    vAccMm: number
    velNMmS: number
    velEMmS: number
    velDMmS: number
    gSpeedMmS: number
    headMot: number
    sAccMmS: number
    headAcc: number
    pDOP: number
}

const PVT_DEFAULTS: NavPvtFields = {
    iTOW: 0,
    year: 1980,
    month: 1,
    day: 6,
    hour: 0,
    min: 0,
    sec: 0,
    validDate: false,
    validTime: false,
    fullyResolved: false,
    tAccNs: 0xffffffff,
    nano: 0,
    fixType: 0,
    gnssFixOK: false,
    flags2: 0,
    numSV: 0,
    lon: 0,
    lat: 0,
    heightMm: 0,
    hMslMm: 0,
    hAccMm: 0xffffffff,
    vAccMm: 0xffffffff,
    velNMmS: 0,
    velEMmS: 0,
    velDMmS: 0,
    gSpeedMmS: 0,
    headMot: 0,
    sAccMmS: 0,
    headAcc: 0,
    pDOP: 9999,
}

/** The 92-byte NAV-PVT payload; missing fields are "no fix, no time". Throws RangeError on a bad value. */
export function navPvtPayload(fields: Partial<NavPvtFields> = {}): Buffer {
    const f: NavPvtFields = { ...PVT_DEFAULTS, ...fields }
    const p = Buffer.alloc(NAV_PVT_LEN)
    p.writeUInt32LE(f.iTOW, 0)
    p.writeUInt16LE(f.year, 4)
    p.writeUInt8(f.month, 6)
    p.writeUInt8(f.day, 7)
    p.writeUInt8(f.hour, 8)
    p.writeUInt8(f.min, 9)
    p.writeUInt8(f.sec, 10)
    p.writeUInt8((f.validDate ? 1 : 0) | (f.validTime ? 2 : 0) | (f.fullyResolved ? 4 : 0), 11)
    p.writeUInt32LE(f.tAccNs, 12)
    p.writeInt32LE(f.nano, 16)
    p.writeUInt8(f.fixType, 20)
    p.writeUInt8(f.gnssFixOK ? 1 : 0, 21)
    p.writeUInt8(f.flags2, 22)
    p.writeUInt8(f.numSV, 23)
    p.writeInt32LE(f.lon, 24)
    p.writeInt32LE(f.lat, 28)
    p.writeInt32LE(f.heightMm, 32)
    p.writeInt32LE(f.hMslMm, 36)
    p.writeUInt32LE(f.hAccMm, 40)
    p.writeUInt32LE(f.vAccMm, 44)
    p.writeInt32LE(f.velNMmS, 48)
    p.writeInt32LE(f.velEMmS, 52)
    p.writeInt32LE(f.velDMmS, 56)
    p.writeInt32LE(f.gSpeedMmS, 60)
    p.writeInt32LE(f.headMot, 64)
    p.writeUInt32LE(f.sAccMmS, 68)
    p.writeUInt32LE(f.headAcc, 72)
    p.writeUInt16LE(f.pDOP, 76)
    return p
}

/** A complete NAV-PVT frame. */
export function navPvtFrame(fields: Partial<NavPvtFields> = {}): Buffer {
    return ubxFrame(CLS_NAV, ID_NAV_PVT, navPvtPayload(fields))
}

/** GPS time of week (ms) of a UTC instant. */
export function gpsTimeOfWeekMs(utcMs: number, leapSeconds = GPS_LEAP_SECONDS): number {
    const t = utcMs + leapSeconds * 1000 - GPS_EPOCH_MS
    return ((t % WEEK_MS) + WEEK_MS) % WEEK_MS
}

export type NavPvtTime = Pick<
    NavPvtFields,
    "iTOW" | "year" | "month" | "day" | "hour" | "min" | "sec" | "nano" | "validDate" | "validTime" | "fullyResolved"
>

/**
 * The time fields of a NAV-PVT for a UTC instant (whole ms), marked valid and fully resolved. With
 * `signedNano` the time is the nearest whole second plus a signed nano, as receivers report it
 * near a second boundary (23:59:59.9985 -> 00:00:00 and nano -1500000).
 */
export function navPvtTime(utcMs: number, opts: { signedNano?: boolean } = {}): NavPvtTime {
    if (!Number.isInteger(utcMs)) throw new RangeError(`navPvtTime: ${utcMs} is not whole ms`)
    const ms = ((utcMs % 1000) + 1000) % 1000
    let whole = utcMs - ms
    let nano = ms * 1_000_000
    if (opts.signedNano && ms >= 500) {
        whole += 1000
        nano = (ms - 1000) * 1_000_000
    }
    const d = new Date(whole)
    return {
        iTOW: gpsTimeOfWeekMs(utcMs),
        year: d.getUTCFullYear(),
        month: d.getUTCMonth() + 1,
        day: d.getUTCDate(),
        hour: d.getUTCHours(),
        min: d.getUTCMinutes(),
        sec: d.getUTCSeconds(),
        nano,
        validDate: true,
        validTime: true,
        fullyResolved: true,
    }
}

export interface UbxStream {
    /** verified frames, in stream order */
    frames: UbxMessage[]
    /** candidates (B5 62 + a length that fits) whose checksum failed */
    badChecksum: number
    /** candidates whose length exceeded maxFrame */
    oversize: number
    /** bytes that are not part of a returned frame (garbage, NMEA, rejected candidates), `rest` excluded */
    skipped: number
    /** an incomplete frame (or a lone sync byte) at the end, to prepend to the next chunk */
    rest: Buffer
}

/**
 * Parses a raw receiver stream (a capture file, or a chunk with the previous call's `rest`
 * prepended). Same rules as the firmware's UbxParser: resync on B5 62, a candidate with a bad
 * checksum is dropped by one byte and the rest rescanned, a length beyond `maxFrame` is rejected at
 * once. With `final`, an incomplete candidate at the end is rescanned as garbage too (the stream
 * has ended), and `rest` is empty.
 */
export function parseUbxStream(buf: Buffer, opts: { maxFrame?: number; final?: boolean } = {}): UbxStream {
    const maxFrame = opts.maxFrame ?? UBX_MAX_FRAME
    const r: UbxStream = { frames: [], badChecksum: 0, oversize: 0, skipped: 0, rest: Buffer.alloc(0) }
    const n = buf.length
    let i = 0
    while (i < n) {
        if (buf[i] !== UBX_SYNC1) {
            let j = buf.indexOf(UBX_SYNC1, i)
            if (j < 0) j = n
            r.skipped += j - i
            i = j
            continue
        }
        if (i + 1 < n && buf[i + 1] !== UBX_SYNC2) {
            r.skipped++
            i++
            continue
        }
        let complete = i + UBX_HEADER_LEN <= n
        let len = 0
        if (complete) {
            len = buf.readUInt16LE(i + 4)
            if (len + UBX_OVERHEAD > maxFrame) {
                r.oversize++
                r.skipped++
                i++
                continue
            }
            complete = i + UBX_OVERHEAD + len <= n
        }
        if (!complete) {
            if (opts.final) {
                r.skipped++
                i++
                continue
            }
            break
        }
        const end = i + UBX_OVERHEAD + len
        const ck = ubxChecksum(buf, i + 2, end - 2)
        if (buf[end - 2] !== (ck & 0xff) || buf[end - 1] !== ck >> 8) {
            r.badChecksum++
            r.skipped++
            i++
            continue
        }
        r.frames.push({
            cls: buf[i + 2],
            id: buf[i + 3],
            payload: Buffer.from(buf.subarray(i + UBX_HEADER_LEN, end - 2)),
            offset: i,
        })
        i = end
    }
    r.rest = Buffer.from(buf.subarray(i))
    return r
}
