/*
 * UBX protocol (u-blox GNSS receivers): frame builder, streaming parser and the NAV-PVT decoder.
 * Frame layout and the NAV-PVT fields: docs/parts.md ("u-blox GNSS over I2C").
 *
 *     B5 62 | class | id | length u16 LE | payload | CK_A CK_B
 *
 * The checksum is the 8-bit Fletcher sum over class..end of payload. The host has the same framing
 * in src/gnss/ubx.ts (Node Buffer API); both are tested against the same hand-built byte vectors.
 */

export const UBX_SYNC1 = 0xb5
export const UBX_SYNC2 = 0x62
/** sync, class, id, length */
export const UBX_HEADER_LEN = 6
/** header + checksum */
export const UBX_OVERHEAD = 8

export const CLS_NAV = 0x01
export const ID_NAV_PVT = 0x07
export const CLS_ACK = 0x05
export const ID_ACK_NAK = 0x00
export const ID_ACK_ACK = 0x01
export const CLS_CFG = 0x06
export const ID_CFG_VALSET = 0x8a
export const CLS_RXM = 0x02
export const ID_RXM_PMREQ = 0x41

/** NAV-PVT payload length since protocol 15 (M8 and later); u-blox 7 sent 84 bytes */
export const NAV_PVT_LEN = 92
const NAV_PVT_MIN_LEN = 84

/** Largest frame (header + payload + checksum) the parser accepts; a longer length field is garbage. */
export const UBX_MAX_FRAME = 1024

/** NAV-PVT `valid` bits */
export const VALID_DATE = 0x01
export const VALID_TIME = 0x02
export const VALID_FULLY_RESOLVED = 0x04
/** NAV-PVT `flags` bit 0 */
export const FLAG_GNSS_FIX_OK = 0x01

/** fixType values */
export const FIX_NONE = 0
export const FIX_DEAD_RECKONING = 1
export const FIX_2D = 2
export const FIX_3D = 3
export const FIX_GNSS_DR = 4
export const FIX_TIME_ONLY = 5

export interface UbxMessage {
    cls: number
    id: number
    payload: Buffer
}

// ---- framing -------------------------------------------------------------------------------------

/** 8-bit Fletcher checksum over b[start..end): CK_A in the low byte, CK_B in the high byte */
export function ubxChecksum(b: Buffer, start: number, end: number): number {
    let a = 0
    let c = 0
    for (let i = start; i < end; i++) {
        a = (a + b[i]) & 0xff
        c = (c + a) & 0xff
    }
    return a | (c << 8)
}

/** A complete UBX frame; `payload` may be omitted for an empty (poll) message. */
export function ubxFrame(cls: number, id: number, payload?: Buffer): Buffer {
    const n = payload ? payload.length : 0
    const f = Buffer.alloc(n + UBX_OVERHEAD)
    f[0] = UBX_SYNC1
    f[1] = UBX_SYNC2
    f[2] = cls & 0xff
    f[3] = id & 0xff
    f.setAt(4, "u16", n)
    if (n > 0) f.blitAt(UBX_HEADER_LEN, payload, 0, n)
    const ck = ubxChecksum(f, 2, UBX_HEADER_LEN + n)
    f[UBX_HEADER_LEN + n] = ck & 0xff
    f[UBX_HEADER_LEN + n + 1] = ck >> 8
    return f
}

function copyOf(b: Buffer, start: number, len: number): Buffer {
    const r = Buffer.alloc(len)
    if (len > 0) r.blitAt(0, b, start, len)
    return r
}

/**
 * Work one parser call may do before it returns, in bytes checksummed or scanned. The DeviceScript
 * VM panics (InfiniteLoop) when a fiber runs about 128 K instructions without yielding; a checksum
 * costs about 20 per byte, so this keeps one call near 50 K whatever the stream holds.
 */
export const UBX_PARSE_BUDGET = 2048

/**
 * Streaming UBX parser. Feed it whatever the transport delivers (any chunking, NMEA or garbage in
 * between); it returns each complete frame whose checksum verifies, in stream order.
 *
 * - Resynchronizes on B5 62; every other byte is skipped (and counted).
 * - A candidate whose checksum fails is dropped by ONE byte and the rest is scanned again, so a real
 *   frame that began inside a false candidate (garbage that looked like a header) is still found.
 * - A length field that would make the frame longer than `maxFrame` is rejected at once: a bogus
 *   length cannot make the parser wait for bytes that will never come.
 * - A plausible but false length still holds back the bytes behind it until enough have arrived;
 *   when the stream has been idle for a while the caller can `flush()` to rescan them.
 * - Bounded work: one call does at most `budget` units (bytes checksummed, scan steps). When that
 *   runs out (only with pathological input: many overlapping false headers), the rest stays held,
 *   `more()` is true, and the caller yields and calls `resume()` until it is false. The held bytes
 *   stay below `maxFrame` while callers do so (and are cut to 4 x maxFrame if they do not).
 */
export class UbxParser {
    /** verified frames returned */
    frames = 0
    /** candidates (B5 62 + a length that fits) whose checksum failed */
    badChecksum = 0
    /** candidates whose length field exceeded maxFrame */
    oversize = 0
    /** bytes discarded (garbage, NMEA, sync bytes of rejected candidates, flushed partials) */
    skipped = 0

    private held: Buffer = Buffer.alloc(0)
    /** the first `flushLeft` held bytes were held at flush(): incomplete candidates there are garbage */
    private flushLeft = 0
    private stalled = false

    constructor(
        readonly maxFrame: number = UBX_MAX_FRAME,
        readonly budget: number = UBX_PARSE_BUDGET,
    ) {}

    /** bytes held back: a frame that has not completely arrived, or input not scanned yet (more()) */
    pending(): number {
        return this.held.length
    }

    /** the last call ran out of budget: yield, then call resume() */
    more(): boolean {
        return this.stalled
    }

    /** forget held bytes and counters */
    reset() {
        this.held = Buffer.alloc(0)
        this.flushLeft = 0
        this.stalled = false
        this.frames = 0
        this.badChecksum = 0
        this.oversize = 0
        this.skipped = 0
    }

    /** feed a chunk; returns the frames it completed (possibly none) */
    push(chunk: Buffer): UbxMessage[] {
        if (chunk && chunk.length > 0) this.held = this.held.length > 0 ? this.held.concat(chunk) : chunk
        return this.run()
    }

    /** continue after a call that ran out of budget */
    resume(): UbxMessage[] {
        return this.run()
    }

    /**
     * The stream is idle: the held bytes cannot be a frame still arriving, so each held candidate
     * is garbage (its first byte is dropped and the rest scanned again). Returns the frames found
     * in what was held back; afterwards nothing is held (unless more() asks for a resume()).
     */
    flush(): UbxMessage[] {
        this.flushLeft = this.held.length
        return this.run()
    }

    private run(): UbxMessage[] {
        const out: UbxMessage[] = []
        const b = this.held
        if (b.length === 0) {
            this.stalled = false
            return out
        }
        let keep = this.scan(b, out)
        if (b.length - keep > 4 * this.maxFrame) {
            // a caller that never resumes: keep the buffer bounded anyway
            this.skipped += b.length - keep - this.maxFrame
            keep = b.length - this.maxFrame
        }
        this.flushLeft = this.flushLeft > keep ? this.flushLeft - keep : 0
        this.held = copyOf(b, keep, b.length - keep) // a copy: `b` may be the caller's chunk
        return out
    }

    /** extracts frames from the start of b; returns the offset of the first byte to hold back */
    private scan(b: Buffer, out: UbxMessage[]): number {
        const n = b.length
        let i = 0
        let work = 0
        this.stalled = false
        while (i < n) {
            if (++work > this.budget) {
                this.stalled = true
                break
            }
            if (b[i] !== UBX_SYNC1) {
                let j = b.indexOf(UBX_SYNC1, i) // native: garbage costs one step
                if (j < 0) j = n
                this.skipped += j - i
                i = j
                continue
            }
            if (i + 1 < n && b[i + 1] !== UBX_SYNC2) {
                this.skipped++
                i++
                continue
            }
            // B5 62 (or a B5 at the very end): a candidate
            let complete = i + UBX_HEADER_LEN <= n
            let len = 0
            if (complete) {
                len = b[i + 4] | (b[i + 5] << 8)
                if (len + UBX_OVERHEAD > this.maxFrame) {
                    this.oversize++
                    this.skipped++
                    i++
                    continue
                }
                complete = i + UBX_OVERHEAD + len <= n
            }
            if (!complete) {
                if (i < this.flushLeft) {
                    this.skipped++ // flushed: what was held when the stream went idle is garbage
                    i++
                    continue
                }
                break // the rest has not arrived yet
            }
            if (work > 1 && work + len > this.budget) {
                this.stalled = true // checksum this one in the next call
                break
            }
            work += len
            const end = i + UBX_OVERHEAD + len
            const ck = ubxChecksum(b, i + 2, i + UBX_HEADER_LEN + len)
            if (b[end - 2] !== (ck & 0xff) || b[end - 1] !== ck >> 8) {
                this.badChecksum++
                this.skipped++
                i++ // not a frame: rescan from the next byte, a real one may start inside it
                continue
            }
            out.push({ cls: b[i + 2], id: b[i + 3], payload: copyOf(b, i + UBX_HEADER_LEN, len) })
            this.frames++
            i = end
        }
        return i
    }
}

// ---- time ----------------------------------------------------------------------------------------

/** days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil) */
export function daysFromCivil(year: number, month: number, day: number): number {
    const y = month <= 2 ? year - 1 : year
    const era = Math.floor(y / 400)
    const yoe = y - era * 400 // 0..399
    const mp = month > 2 ? month - 3 : month + 9 // March = 0
    const doy = Math.floor((153 * mp + 2) / 5) + day - 1 // 0..365
    const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy // 0..146096
    return era * 146097 + doe - 719468
}

export function isLeapYear(y: number): boolean {
    return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0
}

export function daysInMonth(year: number, month: number): number {
    if (month === 2) return isLeapYear(year) ? 29 : 28
    if (month === 4 || month === 6 || month === 9 || month === 11) return 30
    return 31
}

/**
 * UTC fields -> ms since 1970 (POSIX: a leap second 60 reads as the next minute's 00). `nano` is
 * signed (u-blox reports e.g. 00:00:00 with nano -1500000 for 23:59:59.9985); the result is
 * truncated to the ms below. NaN when a field is out of range.
 */
export function utcFromFields(year: number, month: number, day: number, hour: number, min: number, sec: number, nano: number): number {
    if (year < 1980 || year > 2199 || month < 1 || month > 12) return NaN
    if (day < 1 || day > daysInMonth(year, month)) return NaN
    if (hour > 23 || min > 59 || sec > 60) return NaN
    if (nano < -1000000000 || nano > 1000000000) return NaN
    const days = daysFromCivil(year, month, day)
    const secs = days * 86400 + hour * 3600 + min * 60 + sec
    return secs * 1000 + Math.floor(nano / 1000000)
}

// ---- NAV-PVT -------------------------------------------------------------------------------------

/**
 * UBX-NAV-PVT, decoded. Every field is the receiver's own integer (units in the name or as in the
 * u-blox interface description: lat/lon 1e-7 deg, headMot 1e-5 deg, pDOP 0.01); only `utcMs` is
 * derived. Use positionValid()/timeValid() before trusting a position or the time.
 */
export interface NavPvt {
    /** GPS time of week of the navigation epoch, ms */
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
    /** time accuracy estimate, ns */
    tAccNs: number
    /** fraction of second, ns, signed (-1e9..1e9) */
    nano: number
    /** 0 none, 1 dead reckoning, 2 2D, 3 3D, 4 GNSS + DR, 5 time only */
    fixType: number
    gnssFixOK: boolean
    numSV: number
    /** 1e-7 deg */
    lon: number
    lat: number
    /** above the ellipsoid / mean sea level, mm */
    heightMm: number
    hMslMm: number
    /** horizontal / vertical accuracy estimates, mm */
    hAccMm: number
    vAccMm: number
    /** ground speed, mm/s */
    gSpeedMmS: number
    /** heading of motion, 1e-5 deg */
    headMot: number
    /** position DOP, 0.01 */
    pDOP: number
    /** ms since 1970 when validDate, validTime and fullyResolved are set; NaN otherwise */
    utcMs: number
}

/** NAV-PVT payload -> fields; undefined when the payload is too short to be one */
export function decodeNavPvt(p: Buffer): NavPvt {
    if (!p || p.length < NAV_PVT_MIN_LEN) return undefined
    const valid = p[11]
    const r: NavPvt = {
        iTOW: p.getAt(0, "u32"),
        year: p.getAt(4, "u16"),
        month: p[6],
        day: p[7],
        hour: p[8],
        min: p[9],
        sec: p[10],
        validDate: (valid & VALID_DATE) !== 0,
        validTime: (valid & VALID_TIME) !== 0,
        fullyResolved: (valid & VALID_FULLY_RESOLVED) !== 0,
        tAccNs: p.getAt(12, "u32"),
        nano: p.getAt(16, "i32"),
        fixType: p[20],
        gnssFixOK: (p[21] & FLAG_GNSS_FIX_OK) !== 0,
        numSV: p[23],
        lon: p.getAt(24, "i32"),
        lat: p.getAt(28, "i32"),
        heightMm: p.getAt(32, "i32"),
        hMslMm: p.getAt(36, "i32"),
        hAccMm: p.getAt(40, "u32"),
        vAccMm: p.getAt(44, "u32"),
        gSpeedMmS: p.getAt(60, "i32"),
        headMot: p.getAt(64, "i32"),
        pDOP: p.getAt(76, "u16"),
        utcMs: NaN,
    }
    if (r.validDate && r.validTime && r.fullyResolved) r.utcMs = utcFromFields(r.year, r.month, r.day, r.hour, r.min, r.sec, r.nano)
    return r
}

/** a position to record: gnssFixOK and a 2D, 3D or GNSS+DR fix, coordinates in range */
export function positionValid(pvt: NavPvt): boolean {
    if (!pvt || !pvt.gnssFixOK) return false
    if (pvt.fixType < FIX_2D || pvt.fixType > FIX_GNSS_DR) return false
    return Math.abs(pvt.lat) <= 900000000 && Math.abs(pvt.lon) <= 1800000000
}

/** UTC to set the clock from: validDate, validTime and fullyResolved, and the fields in range */
export function timeValid(pvt: NavPvt): boolean {
    if (!pvt || !pvt.validDate || !pvt.validTime || !pvt.fullyResolved) return false
    return !isNaN(pvt.utcMs)
}
