import { I2cBus } from "../hal/i2c"
import { Clock } from "../hal/clock"
import {
    UbxParser,
    UbxMessage,
    ubxFrame,
    ubxChecksum,
    CLS_NAV,
    ID_NAV_PVT,
    CLS_ACK,
    ID_ACK_ACK,
    ID_ACK_NAK,
    CLS_CFG,
    ID_CFG_VALSET,
    NAV_PVT_LEN,
} from "../sensor/ubx"

/*
 * Register-level model of a u-blox receiver's I2C (DDC) port for the simulator and the unit tests.
 * It implements the I2cBus the driver uses on the board, so the real driver runs against it.
 * Written from the hardware notes; its NAV-PVT encoder and calendar are its own (not the driver's
 * decoder), and both are tested against the same hand-built vectors.
 *
 * Modelled:
 * - address 0x42 only (any other address throws, like a NACK);
 * - register pointer: a 1-byte write sets it; reads auto-increment through 0xFD, 0xFE and stay at
 *   0xFF; 0xFD/0xFE give the bytes waiting (big-endian, one snapshot per transaction); 0xFF gives
 *   the stream and reads 0xFF when it is empty;
 * - writes of 2 bytes or more are receiver input (UBX; anything else is ignored). CFG-VALSET with the
 *   I2C protocol and NAV-PVT rate keys is applied and answered ACK-ACK (unknown key, bad version or
 *   an M8 (`legacy`): ACK-NAK); the NAV-PVT poll is answered with a NAV-PVT built from the inputs;
 * - power-on defaults: UBX and NMEA out on I2C; NMEA (a GNRMC + GNGGA pair every second, TXT at
 *   boot) fills the stream until configured off; a 4 KB TX buffer that drops whole messages;
 * - a receiver that has no time before its first fix (fullyResolved 0), keeps time (and reports its
 *   last position with fixType 0) after losing the fix; answers `latencyMs` after the request;
 * - faults: "nack" (every transfer throws), "ff" (bus reads 0xFF everywhere), "silent" (ACKs its
 *   address, has nothing to say, ignores input);
 * - noise: garbage bursts (random bytes, lone B5, false headers with short or huge lengths) before
 *   messages, and byte counts that reveal only part of what is queued, so frames split across reads;
 * - replay(capture): a recorded raw stream served as the receiver's output, one NAV-PVT per poll.
 * Not modelled: the UART/SPI ports, other UBX messages, BBR/flash layers (VALSET to them is accepted
 * and applied to RAM), clock drift, TXREADY.
 */

export type UbloxFault = "none" | "nack" | "ff" | "silent"

export interface UbloxInputs {
    /** UTC (ms since 1970) at `atMs`; undefined = the receiver does not know the time */
    utcMs?: number
    /** the device time (clock ms) these inputs describe; default: now */
    atMs?: number
    /** degrees (float) at `atMs` */
    lat?: number
    lon?: number
    /** degrees per second: the receiver's position moves on with them between inputs */
    latRate?: number
    lonRate?: number
    /** above the ellipsoid, m */
    heightM?: number
    speedMps?: number
    headingDeg?: number
    /** the receiver has a 3D fix */
    fix?: boolean
    /** satellites used */
    numSV?: number
    fault?: UbloxFault
}

export interface UbloxNoise {
    /** probability (0..1) of a garbage burst before each output message */
    garbage?: number
    /** byte counts reveal only part of the queue: frames are split across reads */
    split?: boolean
    /** pseudo-random seed (deterministic runs) */
    seed?: number
}

export interface UbloxModelOptions {
    /** 7-bit address, default 0x42 */
    address?: number
    /** answers appear this long after the request (device ms), default 0 */
    latencyMs?: number
    /** > 0: report the time of the last navigation epoch (a multiple of this), as receivers do; default 0 = now */
    epochMs?: number
    /** report the UTC as the nearest second with a signed `nano` (23:59:59.9985 = 00:00:00 - 1.5 ms) */
    signedNano?: boolean
    /** an M8 (protocol < 27): CFG-VALSET is answered ACK-NAK */
    legacy?: boolean
    noise?: UbloxNoise
    /** TX buffer, bytes; default 4096 */
    txBufferSize?: number
}

export const GPS_EPOCH_MS = 315964800000 // 1980-01-06T00:00:00Z
export const GPS_LEAP_SECONDS = 18 // GPS - UTC since 2017-01-01
const WEEK_MS = 604800000
const NAV_PERIOD_MS = 1000

const KEY_I2CINPROT_UBX = 0x10710001
const KEY_I2CINPROT_NMEA = 0x10710002
const KEY_I2COUTPROT_UBX = 0x10720001
const KEY_I2COUTPROT_NMEA = 0x10720002
const KEY_MSGOUT_UBX_NAV_PVT_I2C = 0x20910006

const HEX = "0123456789ABCDEF"
function hex2(v: number): string {
    return HEX.charAt((v >> 4) & 15) + HEX.charAt(v & 15)
}
function pad2(v: number): string {
    return v < 10 ? "0" + v : "" + v
}

/** a mod b for b > 0, exact for large a (DeviceScript's `%` is inexact beyond 2^31) */
function mod(a: number, b: number): number {
    return a - Math.floor(a / b) * b
}

/** days since 1970 -> [year, month, day] (H. Hinnant's civil_from_days) */
export function civilFromDays(days: number): number[] {
    const z = days + 719468
    const era = Math.floor(z / 146097)
    const doe = z - era * 146097
    const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365)
    const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
    const mp = Math.floor((5 * doy + 2) / 153)
    const d = doy - Math.floor((153 * mp + 2) / 5) + 1
    const m = mp < 10 ? mp + 3 : mp - 9
    const y = yoe + era * 400
    return [m <= 2 ? y + 1 : y, m, d]
}

/**
 * UTC ms -> [year, month, day, hour, min, sec, nano] as NAV-PVT reports it. With `signedNano` the
 * time is given as the nearest whole second and a signed nano (what receivers do near a second).
 */
export function utcFields(utcMs: number, signedNano: boolean): number[] {
    const ms = mod(utcMs, 1000)
    let whole = utcMs - ms
    let nano = ms * 1000000
    if (signedNano && ms >= 500) {
        whole += 1000
        nano = (ms - 1000) * 1000000
    }
    const secs = whole / 1000
    const days = Math.floor(secs / 86400)
    const sod = secs - days * 86400
    const ymd = civilFromDays(days)
    return [ymd[0], ymd[1], ymd[2], Math.floor(sod / 3600), Math.floor(sod / 60) % 60, sod % 60, nano]
}

/** GPS time of week (ms) of a UTC instant */
export function gpsTimeOfWeekMs(utcMs: number): number {
    return mod(utcMs + GPS_LEAP_SECONDS * 1000 - GPS_EPOCH_MS, WEEK_MS)
}

/** round half up (Math.round(-2.5) is -3 in DeviceScript, -2 in JS: keep the model host-identical) */
function rnd(v: number): number {
    return Math.floor(v + 0.5)
}

/** sine of an angle in degrees (DeviceScript's Math has no sin/cos): Taylor series on [-90, 90] */
export function sinDeg(deg: number): number {
    let d = deg - Math.floor(deg / 360) * 360 // 0..360
    if (d > 180) d -= 360 // -180..180
    if (d > 90) d = 180 - d
    else if (d < -90) d = -180 - d
    const x = (d * Math.PI) / 180
    const x2 = x * x
    let term = x
    let sum = x
    for (let k = 1; k <= 6; k++) {
        term = (-term * x2) / (2 * k * (2 * k + 1))
        sum += term
    }
    return sum
}

/** NMEA sentence with its checksum and CR LF */
function nmea(body: string): string {
    let x = 0
    for (let i = 0; i < body.length; i++) x ^= body.charCodeAt(i)
    return "$" + body + "*" + hex2(x) + "\r\n"
}

export class UbloxModel implements I2cBus {
    readonly address: number
    // configuration (CFG-I2C*), power-on defaults in powerOn()
    inUbx = true
    inNmea = true
    outUbx = true
    outNmea = true
    /** periodic NAV-PVT on I2C, every n navigation epochs (0 = off) */
    pvtRate = 0

    // inputs
    utcMs: number = undefined
    lat = 0
    lon = 0
    heightM = 0
    speedMps = 0
    headingDeg = 0
    fix = false
    numSV = 0
    fault: UbloxFault = "none"
    /** a fix was obtained since power-on: the time is fully resolved from then on */
    hadFix = false

    latencyMs: number
    epochMs: number
    signedNano: boolean
    legacy: boolean
    txBufferSize: number
    garbage = 0
    split = false

    /** transactions answered (faults included) */
    transactions = 0
    /** NAV-PVT polls received, CFG-VALSET received, answered ACK-ACK / ACK-NAK */
    polls = 0
    valsets = 0
    acks = 0
    naks = 0
    /** output messages lost to a full TX buffer */
    dropped = 0
    /** the last 16 UBX messages received, as "ccii" hex (class, id) */
    readonly received: string[] = []

    private ptr = 0xff
    private out: Buffer = Buffer.alloc(0)
    private revealed = 0
    private later: any[] = [] // [at, Buffer] pairs waiting for their latency
    private readonly inParser = new UbxParser()
    private utcAt = 0
    /** device time of the last position input, and how it moves on from there */
    private posAt = 0
    private latRate = 0
    private lonRate = 0
    private lastLat = 0 // last fixed position, reported (with fixType 0) when the fix is lost
    private lastLon = 0
    private lastHeightM = 0
    private nextEpoch = 0
    private epochCount = 0
    private seed = 12345
    private capture: Buffer = undefined
    private capturePos = 0
    private captureLoop = false

    constructor(
        readonly clock: Clock,
        options: UbloxModelOptions = {},
    ) {
        this.address = options.address ?? 0x42
        this.latencyMs = options.latencyMs ?? 0
        this.epochMs = options.epochMs ?? 0
        this.signedNano = !!options.signedNano
        this.legacy = !!options.legacy
        this.txBufferSize = options.txBufferSize ?? 4096
        if (options.noise) this.setNoise(options.noise)
        this.powerOn()
    }

    /** power-on reset: default configuration (NMEA + UBX on I2C), empty stream, no fix yet */
    powerOn() {
        this.inUbx = true
        this.inNmea = true
        this.outUbx = true
        this.outNmea = true
        this.pvtRate = 0
        this.hadFix = false
        this.ptr = 0xff
        this.out = Buffer.alloc(0)
        this.revealed = 0
        this.later = []
        this.nextEpoch = this.clock.now() + NAV_PERIOD_MS
        this.epochCount = 0
        if (this.fix) this.hadFix = true
        this.emitNmea(nmea("GNTXT,01,01,02,u-blox AG - www.u-blox.com"))
        this.emitNmea(nmea("GNTXT,01,01,02,coldtrace receiver model"))
    }

    setInputs(inputs: UbloxInputs) {
        const at = inputs.atMs ?? this.clock.now()
        if (inputs.utcMs !== undefined) {
            this.utcMs = inputs.utcMs
            this.utcAt = at
        }
        if (inputs.lat !== undefined || inputs.lon !== undefined) this.posAt = at
        if (inputs.lat !== undefined) this.lat = inputs.lat
        if (inputs.lon !== undefined) this.lon = inputs.lon
        if (inputs.latRate !== undefined) this.latRate = inputs.latRate
        if (inputs.lonRate !== undefined) this.lonRate = inputs.lonRate
        if (inputs.heightM !== undefined) this.heightM = inputs.heightM
        if (inputs.speedMps !== undefined) this.speedMps = inputs.speedMps
        if (inputs.headingDeg !== undefined) this.headingDeg = inputs.headingDeg
        if (inputs.numSV !== undefined) this.numSV = inputs.numSV
        if (inputs.fault !== undefined) this.fault = inputs.fault
        if (inputs.fix !== undefined) this.fix = inputs.fix
        if (this.fix) {
            this.hadFix = true
            this.lastLat = this.lat
            this.lastLon = this.lon
            this.lastHeightM = this.heightM
        }
    }

    /** forget the time (a receiver without backup power after a cold start) */
    clearTime() {
        this.utcMs = undefined
    }

    setNoise(noise: UbloxNoise) {
        this.garbage = noise.garbage ?? 0
        this.split = !!noise.split
        if (noise.seed !== undefined) this.seed = noise.seed | 0 || 1 // xorshift needs a non-zero seed
    }

    /** the receiver's UTC now (ms since 1970), NaN when it has none */
    utcNow(): number {
        if (this.utcMs === undefined) return NaN
        return this.utcMs + (this.clock.now() - this.utcAt)
    }

    /** bytes queued in the TX buffer (what 0xFD/0xFE say without noise) */
    waiting(): number {
        this.tick()
        return this.out.length
    }

    /** put raw bytes in the output stream (tests: garbage exactly where wanted) */
    inject(bytes: Buffer) {
        this.out = this.out.concat(bytes)
    }

    /**
     * Serve a recorded raw receiver stream (UBX, NMEA, anything) as the output: each NAV-PVT poll
     * releases the capture up to and including its next NAV-PVT frame (the bytes after the last
     * one go out with it). When it is used up, polls get no answer (or it starts over with `loop`).
     * `replay(undefined)` goes back to live output. The model's own NMEA and periodic output are
     * off while replaying; CFG messages are still answered by the model.
     * The capture is searched lazily, one NAV-PVT per poll, so its size does not matter.
     */
    replay(capture: Buffer, loop = false) {
        this.capture = capture
        this.capturePos = 0
        this.captureLoop = loop
    }

    /** true when no NAV-PVT is left in the capture after what was served (and not looping) */
    replayDone(): boolean {
        if (!this.capture) return true
        if (this.nextPvtEnd(this.capturePos) >= 0) return false
        return !(this.captureLoop && this.nextPvtEnd(0) >= 0)
    }

    /** end offset of the first complete, valid NAV-PVT frame at or after `from`; -1 if none */
    private nextPvtEnd(from: number): number {
        const c = this.capture
        const frameLen = NAV_PVT_LEN + 8
        let i = from
        while (true) {
            i = c.indexOf(0xb5, i) // native search: a large capture costs little
            if (i < 0 || i + frameLen > c.length) return -1
            if (c[i + 1] === 0x62 && c[i + 2] === CLS_NAV && c[i + 3] === ID_NAV_PVT && c.getAt(i + 4, "u16") === NAV_PVT_LEN) {
                const ck = ubxChecksum(c, i + 2, i + 6 + NAV_PVT_LEN)
                if (c[i + frameLen - 2] === (ck & 0xff) && c[i + frameLen - 1] === ck >> 8) return i + frameLen
            }
            i++
        }
    }

    // ---- I2C ---------------------------------------------------------------------------------

    async xfer(address: number, tx: Buffer, rxLen: number): Promise<Buffer> {
        if (address !== this.address) throw new Error("I2C NACK: no device at that address")
        this.transactions++
        if (this.fault === "nack") throw new Error("I2C NACK from the receiver at 0x42")
        const rx = Buffer.alloc(rxLen > 0 ? rxLen : 0)
        if (this.fault === "ff") {
            rx.fillAt(0, rx.length, 0xff)
            return rx
        }
        this.tick()
        if (tx && tx.length === 1) this.ptr = tx[0]
        else if (tx && tx.length >= 2 && this.fault !== "silent") this.input(tx)
        if (rx.length === 0) return rx
        if (this.fault === "silent") {
            for (let i = 0; i < rx.length; i++) {
                rx[i] = this.ptr === 0xff ? 0xff : 0
                if (this.ptr !== 0xff) this.ptr++
            }
            return rx
        }
        this.tick() // a request just written may have an answer with no latency
        // one byte-count snapshot per transaction; with `split` it shows only part of the queue
        if (this.split) {
            if (this.revealed < this.out.length) this.revealed = Math.min(this.out.length, this.revealed + 1 + this.random(40))
        } else {
            this.revealed = this.out.length
        }
        const count = Math.min(this.revealed, 0xfffe)
        let taken = 0
        for (let i = 0; i < rx.length; i++) {
            if (this.ptr === 0xfd) {
                rx[i] = count >> 8
            } else if (this.ptr === 0xfe) {
                rx[i] = count & 0xff
            } else if (this.ptr === 0xff) {
                if (taken < this.revealed) rx[i] = this.out[taken++]
                else rx[i] = 0xff
            } else {
                rx[i] = 0 // reserved registers
            }
            if (this.ptr !== 0xff) this.ptr++
        }
        if (taken > 0) {
            this.out = this.out.slice(taken)
            this.revealed -= taken
        }
        return rx
    }

    // ---- receiver ----------------------------------------------------------------------------

    /** 0..n-1 (n < 2^24), xorshift32 on int32 (DeviceScript's `%` is inexact on large numbers) */
    private random(n: number): number {
        let x = this.seed
        x ^= x << 13
        x ^= x >>> 17
        x ^= x << 5
        this.seed = x | 0
        return (x >>> 8) % n
    }

    private input(tx: Buffer) {
        const frames = this.inParser.push(tx)
        for (const f of frames) this.handle(f)
    }

    private handle(f: UbxMessage) {
        if (!this.inUbx) return
        this.received.push(Buffer.from([f.cls, f.id]).toString("hex"))
        if (this.received.length > 16) this.received.shift() // bounded: a week of polls in a small heap
        if (f.cls === CLS_CFG && f.id === ID_CFG_VALSET) {
            this.valsets++
            this.answerAck(f, this.valset(f.payload))
        } else if (f.cls === CLS_NAV && f.id === ID_NAV_PVT && f.payload.length === 0) {
            this.polls++
            if (this.capture) this.replayNext()
            else this.emitUbx(ubxFrame(CLS_NAV, ID_NAV_PVT, this.navPvt()))
        } else if (f.cls === CLS_CFG) {
            this.answerAck(f, false) // other CFG messages are not modelled
        }
        // other input is ignored, as receivers do with messages they do not handle
    }

    private answerAck(f: UbxMessage, ok: boolean) {
        if (ok) this.acks++
        else this.naks++
        this.emitUbx(ubxFrame(CLS_ACK, ok ? ID_ACK_ACK : ID_ACK_NAK, Buffer.from([f.cls, f.id])))
    }

    /** applies a CFG-VALSET; false (nothing applied) for what a receiver would NAK */
    private valset(p: Buffer): boolean {
        if (this.legacy) return false
        if (p.length < 4 || p[0] !== 0 || (p[1] & 0x07) === 0) return false
        const keys: number[] = []
        const vals: number[] = []
        let i = 4
        while (i < p.length) {
            if (i + 4 > p.length) return false
            const key = p.getAt(i, "u32")
            i += 4
            const s = Math.floor(key / 0x10000000) & 7
            const n = s === 1 || s === 2 ? 1 : s === 3 ? 2 : s === 4 ? 4 : s === 5 ? 8 : -1
            if (n < 0 || i + n > p.length) return false
            const v = n === 1 ? p[i] : n === 2 ? p.getAt(i, "u16") : p.getAt(i, "u32")
            i += n
            if (
                key !== KEY_I2CINPROT_UBX &&
                key !== KEY_I2CINPROT_NMEA &&
                key !== KEY_I2COUTPROT_UBX &&
                key !== KEY_I2COUTPROT_NMEA &&
                key !== KEY_MSGOUT_UBX_NAV_PVT_I2C
            )
                return false
            keys.push(key)
            vals.push(v)
        }
        for (let k = 0; k < keys.length; k++) {
            const key = keys[k]
            const v = vals[k]
            if (key === KEY_I2CINPROT_UBX) this.inUbx = v !== 0
            else if (key === KEY_I2CINPROT_NMEA) this.inNmea = v !== 0
            else if (key === KEY_I2COUTPROT_UBX) this.outUbx = v !== 0
            else if (key === KEY_I2COUTPROT_NMEA) this.outNmea = v !== 0
            else this.pvtRate = v
        }
        return true
    }

    /**
     * One poll's worth of the capture: everything up to and including its next NAV-PVT, or, when no
     * NAV-PVT is left, the rest of it (which answers nothing). What does not fit the TX buffer is
     * dropped from the front: a receiver's buffer overflows with the oldest bytes, the NAV-PVT the
     * poll asked for comes last. (The tail after the last NAV-PVT used to go out with it, and a tail
     * longer than the buffer cost that NAV-PVT.)
     */
    private replayNext() {
        let end = this.nextPvtEnd(this.capturePos)
        if (end < 0 && this.captureLoop && this.nextPvtEnd(0) >= 0) {
            this.capturePos = 0
            end = this.nextPvtEnd(0)
        }
        if (end < 0) end = this.capture.length
        if (end <= this.capturePos) return // the recording is over: no answer
        let start = this.capturePos
        if (end - start > this.txBufferSize) {
            this.dropped++
            start = end - this.txBufferSize
        }
        this.emit(this.capture.slice(start, end), true)
        this.capturePos = end
    }

    /** the NAV-PVT payload the receiver would send now */
    navPvt(): Buffer {
        const p = Buffer.alloc(NAV_PVT_LEN)
        let utc = this.utcNow()
        const timeKnown = !isNaN(utc)
        if (timeKnown && this.epochMs > 0) utc = Math.floor(utc / this.epochMs) * this.epochMs
        const f = timeKnown ? utcFields(utc, this.signedNano) : [1980, 1, 6, 0, 0, 0, 0]
        p.setAt(0, "u32", timeKnown ? gpsTimeOfWeekMs(utc) : mod(this.clock.now(), WEEK_MS))
        p.setAt(4, "u16", f[0])
        p[6] = f[1]
        p[7] = f[2]
        p[8] = f[3]
        p[9] = f[4]
        p[10] = f[5]
        p[11] = timeKnown ? 0x03 | (this.hadFix ? 0x04 : 0) : 0
        p.setAt(12, "u32", this.fix ? 25 : timeKnown && this.hadFix ? 5000 : 0xffffffff)
        p.setAt(16, "i32", f[6])
        p[20] = this.fix ? 3 : 0
        p[21] = this.fix ? 0x01 : 0
        p[22] = timeKnown ? (this.hadFix ? 0xe0 : 0x20) : 0 // confirmedAvai / Date / Time
        p[23] = this.numSV
        const dt = (this.clock.now() - this.posAt) / 1000
        const lat = this.fix ? this.lat + this.latRate * dt : this.lastLat
        const lon = this.fix ? this.lon + this.lonRate * dt : this.lastLon
        const h = this.fix ? this.heightM : this.lastHeightM
        p.setAt(24, "i32", rnd(lon * 1e7))
        p.setAt(28, "i32", rnd(lat * 1e7))
        p.setAt(32, "i32", rnd(h * 1000))
        p.setAt(36, "i32", rnd(h * 1000))
        p.setAt(40, "u32", this.fix ? 2500 : 0xffffffff)
        p.setAt(44, "u32", this.fix ? 4000 : 0xffffffff)
        const speed = this.fix ? this.speedMps * 1000 : 0
        p.setAt(48, "i32", rnd(speed * sinDeg(this.headingDeg + 90))) // north
        p.setAt(52, "i32", rnd(speed * sinDeg(this.headingDeg))) // east
        p.setAt(56, "i32", 0)
        p.setAt(60, "i32", rnd(speed))
        p.setAt(64, "i32", rnd(this.headingDeg * 1e5))
        p.setAt(68, "u32", this.fix ? 300 : 20000)
        p.setAt(72, "u32", this.fix ? 1000000 : 18000000)
        p.setAt(76, "u16", this.fix ? 130 : 9999)
        return p
    }

    private emitUbx(frame: Buffer) {
        if (this.outUbx) this.emit(frame, false)
    }

    private emitNmea(line: string) {
        if (this.outNmea && !this.capture) this.emit(Buffer.from(line), false)
    }

    /** queues an output message, visible after the latency (raw replay bytes bypass the latency) */
    private emit(bytes: Buffer, now: boolean) {
        const at = now ? this.clock.now() : this.clock.now() + this.latencyMs
        this.later.push([at, bytes])
        this.tick()
    }

    /** move due output into the TX buffer; periodic output of elapsed navigation epochs */
    private tick() {
        const now = this.clock.now()
        // at most a few epochs at a time: after a long silence the buffer would be full anyway
        let steps = 0
        while (this.nextEpoch <= now && steps < 8) {
            steps++
            this.epochCount++
            this.nextEpoch += NAV_PERIOD_MS
            if (this.outNmea && !this.capture) this.nmeaEpoch()
            if (this.outUbx && this.pvtRate > 0 && !this.capture && this.epochCount % this.pvtRate === 0)
                this.later.push([now, ubxFrame(CLS_NAV, ID_NAV_PVT, this.navPvt())])
        }
        if (this.nextEpoch <= now) this.nextEpoch = now - mod(now - this.nextEpoch, NAV_PERIOD_MS) + NAV_PERIOD_MS
        if (this.later.length === 0) return
        const keep: any[] = []
        for (const item of this.later) {
            if (item[0] > now) {
                keep.push(item)
                continue
            }
            let b: Buffer = item[1]
            if (this.garbage > 0 && this.random(1000) < this.garbage * 1000) b = this.junk().concat(b)
            if (this.out.length + b.length > this.txBufferSize) {
                this.dropped++
                continue
            }
            this.out = this.out.concat(b)
        }
        this.later = keep
    }

    private nmeaEpoch() {
        const utc = this.utcNow()
        let t = ""
        let d = ""
        if (!isNaN(utc)) {
            const f = utcFields(Math.floor(utc / 1000) * 1000, false)
            t = pad2(f[3]) + pad2(f[4]) + pad2(f[5]) + ".00"
            d = pad2(f[2]) + pad2(f[1]) + pad2(f[0] % 100)
        }
        const st = this.fix ? "A" : "V"
        this.later.push([this.clock.now(), Buffer.from(nmea("GNRMC," + t + "," + st + ",,,,,,," + d + ",,,N,V"))])
        const q = this.fix ? "1" : "0"
        this.later.push([this.clock.now(), Buffer.from(nmea("GNGGA," + t + ",,,,," + q + "," + pad2(this.numSV) + ",,,M,,M,,"))])
    }

    /** a garbage burst: random bytes, lone sync bytes, false headers (short or huge lengths) */
    private junk(): Buffer {
        const n = 1 + this.random(16)
        const b = Buffer.alloc(n)
        for (let i = 0; i < n; i++) b[i] = this.random(256)
        const kind = this.random(4)
        if (kind === 0) return b
        if (kind === 1) return b.concat(Buffer.from([0xb5]))
        // a false header: B5 62, random class/id, a length that is short (checksum fails) or huge
        const h = Buffer.alloc(6)
        h[0] = 0xb5
        h[1] = 0x62
        h[2] = this.random(256)
        h[3] = this.random(256)
        h.setAt(4, "u16", kind === 2 ? this.random(24) : 2000 + this.random(60000))
        return b.concat(h)
    }
}
