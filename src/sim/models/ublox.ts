import type { I2cChip } from "./bus.js"
import {
    CLS_ACK,
    CLS_CFG,
    CLS_NAV,
    CLS_RXM,
    ID_ACK_ACK,
    ID_ACK_NAK,
    ID_CFG_VALSET,
    ID_NAV_PVT,
    ID_RXM_PMREQ,
    NAV_PVT_LEN,
    UBX_OVERHEAD,
    navPvtPayload,
    navPvtTime,
    parseUbxStream,
    ubxChecksum,
    ubxFrame,
    type UbxMessage,
} from "../../gnss/ubx.js"

/*
 * Register-level model of a u-blox receiver's I2C (DDC) port, on the host behind the bus bridge
 * (docs/simulator.md): the real driver (devs/sensor/ublox.ts) runs against it in the simulator and
 * in its unit tests. Written from the hardware notes; its NAV-PVT encoder is the host's
 * (src/gnss/ubx.ts), not the driver's decoder. Its time is the world's: each transaction comes with
 * its instant.
 *
 * Modelled:
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
 * - faults: "nack" (every transfer is refused), "ff" (bus reads 0xFF everywhere), "silent" (ACKs
 *   its address, has nothing to say, ignores input);
 * - noise: garbage bursts (random bytes, lone B5, false headers with short or huge lengths) before
 *   messages, and byte counts that reveal only part of what is queued, so frames split across reads;
 * - replay(capture): a recorded raw stream served as the receiver's output, one NAV-PVT per poll;
 * - software standby (UBX-RXM-PMREQ version 0 with the backup flag and a duration; the 8-byte
 *   legacy form too): the address does not answer until the duration is over, then the receiver
 *   starts again with its RAM configuration at the power-on defaults and its backup RAM kept: it
 *   knows the time at once and has a fix (when the sky gives one) after a hot start of 1 s (SAM-M10Q
 *   data sheet, TTFF hot start). A duration of 0 (until a wake-up pin, none on the DDC port) lasts
 *   until the next power-on. `onStandby` tells the world's energy ledger each standby's window.
 * Not modelled: the UART/SPI ports, other UBX messages, BBR/flash layers (VALSET to them is accepted
 * and applied to RAM), clock drift, TXREADY.
 */
export const UBLOX_ADDR = 0x42
export type UbloxFault = "none" | "nack" | "ff" | "silent"

export interface UbloxInputs {
    /** the receiver's UTC (ms since 1970) at the input's instant; null: it has no time */
    utcMs?: number | null
    /** degrees (float) at the input's instant */
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
    /** answers appear this long after the request (ms), default 0 */
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

const WEEK_MS = 604_800_000
/** SAM-M10Q data sheet UBX-22013293, Table 1: hot start TTFF 1 s */
export const HOT_START_MS = 1000
/** RXM-PMREQ flags: b1 backup (software standby) */
const PMREQ_BACKUP = 0x02
const NAV_PERIOD_MS = 1000
const KEY_I2CINPROT_UBX = 0x10710001
const KEY_I2CINPROT_NMEA = 0x10710002
const KEY_I2COUTPROT_UBX = 0x10720001
const KEY_I2COUTPROT_NMEA = 0x10720002
const KEY_MSGOUT_UBX_NAV_PVT_I2C = 0x20910006
const VALSET_KEYS = [KEY_I2CINPROT_UBX, KEY_I2CINPROT_NMEA, KEY_I2COUTPROT_UBX, KEY_I2COUTPROT_NMEA, KEY_MSGOUT_UBX_NAV_PVT_I2C]

/** round half up, as the receiver's fixed-point output does */
const rnd = (v: number) => Math.floor(v + 0.5)
const pad2 = (v: number) => String(v).padStart(2, "0")

/** NMEA sentence with its checksum and CR LF */
function nmea(body: string): Buffer {
    let x = 0
    for (let i = 0; i < body.length; i++) x ^= body.charCodeAt(i)
    return Buffer.from(`$${body}*${x.toString(16).toUpperCase().padStart(2, "0")}\r\n`)
}

export class UbloxChip implements I2cChip {
    // configuration (CFG-I2C*), power-on defaults in powerOn()
    inUbx = true
    inNmea = true
    outUbx = true
    outNmea = true
    /** periodic NAV-PVT on I2C, every n navigation epochs (0 = off) */
    pvtRate = 0

    // inputs
    /** the receiver's UTC at `utcAt` (world), undefined: it has no time */
    private utcMs?: number
    private utcAt = 0
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
    /** in software standby until this world instant (Infinity: until power-on); null: running */
    standbyUntil: number | null = null
    /** no fix is reported before this instant (the hot start after a standby) */
    private fixFrom = -Infinity
    /** standby requests obeyed; transactions refused while in standby */
    standbys = 0
    refusedAsleep = 0
    /** the world's energy ledger: the receiver sleeps from `fromUtc` to `untilUtc` (a cut-short window ends at the power-on) */
    onStandby?: (fromUtc: number, untilUtc: number) => void

    latencyMs: number
    readonly epochMs: number
    readonly signedNano: boolean
    readonly legacy: boolean
    readonly txBufferSize: number
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

    /** world UTC (ms) of the current transaction or input */
    private now: number
    private poweredAt: number
    private ptr = 0xff
    private out: Buffer = Buffer.alloc(0)
    private revealed = 0
    private later: { at: number; bytes: Buffer }[] = []
    private inRest: Buffer = Buffer.alloc(0)
    /** world instant of the last position input, and how it moves on from there */
    private posAt = 0
    private latRate = 0
    private lonRate = 0
    private lastLat = 0 // last fixed position, reported (with fixType 0) when the fix is lost
    private lastLon = 0
    private lastHeightM = 0
    private nextEpoch = 0
    private epochCount = 0
    private seed = 12345
    private capture?: Buffer
    private capturePos = 0
    private captureLoop = false

    /** a receiver powered at world `utc` */
    constructor(utc: number, options: UbloxModelOptions = {}) {
        this.now = utc
        this.poweredAt = utc
        this.latencyMs = options.latencyMs ?? 0
        this.epochMs = options.epochMs ?? 0
        this.signedNano = !!options.signedNano
        this.legacy = !!options.legacy
        this.txBufferSize = options.txBufferSize ?? 4096
        if (options.noise) this.setNoise(options.noise)
        this.powerOn(utc)
    }

    /** power-on reset at `utc`: default configuration (NMEA + UBX on I2C), empty stream, no fix yet */
    powerOn(utc: number) {
        this.at(utc)
        if (this.standbyUntil !== null && this.standbyUntil > this.now) this.onStandby?.(this.now, this.now)
        this.standbyUntil = null
        this.fixFrom = -Infinity
        this.poweredAt = this.now
        this.hadFix = this.fix
        this.startRam(this.now)
        this.epochCount = 0
        this.capturePos = 0
        this.emitNmea(nmea("GNTXT,01,01,02,u-blox AG - www.u-blox.com"))
        this.emitNmea(nmea("GNTXT,01,01,02,coldtrace receiver model"))
    }

    /** the world's inputs at `utc` */
    setInputs(inputs: UbloxInputs, utc: number) {
        this.at(utc)
        if (inputs.utcMs !== undefined) {
            this.utcMs = inputs.utcMs ?? undefined
            this.utcAt = this.now
        }
        if (inputs.lat !== undefined || inputs.lon !== undefined) this.posAt = this.now
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

    /** the receiver's UTC now (ms since 1970), NaN when it has none */
    utcNow(): number {
        return this.utcMs === undefined ? NaN : this.utcMs + (this.now - this.utcAt)
    }

    setNoise(noise: UbloxNoise) {
        this.garbage = noise.garbage ?? 0
        this.split = !!noise.split
        if (noise.seed !== undefined) this.seed = noise.seed | 0 || 1 // xorshift needs a non-zero seed
    }

    /** bytes queued in the TX buffer at `utc` (what 0xFD/0xFE say without noise) */
    waiting(utc: number): number {
        this.at(utc)
        this.tick()
        return this.out.length
    }

    /** put raw bytes in the output stream (tests: garbage exactly where wanted) */
    inject(bytes: Buffer) {
        this.out = Buffer.concat([this.out, bytes])
    }

    /**
     * Serve a recorded raw receiver stream (UBX, NMEA, anything) as the output: each NAV-PVT poll
     * releases the capture up to and including its next NAV-PVT frame. When it is used up, polls get
     * no answer (or it starts over with `loop`). `replay(undefined)` goes back to live output. The
     * model's own NMEA and periodic output are off while replaying; CFG messages are still answered.
     */
    replay(capture: Buffer | undefined, loop = false) {
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
        const c = this.capture!
        const frameLen = NAV_PVT_LEN + UBX_OVERHEAD
        for (let i = c.indexOf(0xb5, from); i >= 0 && i + frameLen <= c.length; i = c.indexOf(0xb5, i + 1)) {
            if (c[i + 1] !== 0x62 || c[i + 2] !== CLS_NAV || c[i + 3] !== ID_NAV_PVT || c.readUInt16LE(i + 4) !== NAV_PVT_LEN) continue
            const ck = ubxChecksum(c, i + 2, i + 6 + NAV_PVT_LEN)
            if (c[i + frameLen - 2] === (ck & 0xff) && c[i + frameLen - 1] === ck >> 8) return i + frameLen
        }
        return -1
    }

    // ---- I2C ---------------------------------------------------------------------------------

    /** time only moves forward (a transaction's instant is never before the last one's) */
    private at(utc: number) {
        if (utc > this.now) this.now = utc
    }

    xfer(tx: Buffer, rxLen: number, utc: number): Buffer | undefined {
        this.at(utc)
        this.transactions++
        if (this.fault === "nack") return undefined
        if (this.asleep()) {
            this.refusedAsleep++
            return undefined
        }
        const rx = Buffer.alloc(rxLen)
        if (this.fault === "ff") return rx.fill(0xff)
        this.tick()
        if (tx.length === 1) this.ptr = tx[0]
        else if (tx.length >= 2 && this.fault !== "silent") this.input(tx)
        if (rxLen === 0) return rx
        if (this.fault === "silent") {
            for (let i = 0; i < rxLen; i++) {
                rx[i] = this.ptr === 0xff ? 0xff : 0
                if (this.ptr !== 0xff) this.ptr++
            }
            return rx
        }
        this.tick() // a request just written may have an answer with no latency
        // one byte-count snapshot per transaction; with `split` it shows only part of the queue
        if (!this.split) this.revealed = this.out.length
        else if (this.revealed < this.out.length) this.revealed = Math.min(this.out.length, this.revealed + 1 + this.random(40))
        const count = Math.min(this.revealed, 0xfffe)
        let taken = 0
        for (let i = 0; i < rxLen; i++) {
            if (this.ptr === 0xfd) rx[i] = count >> 8
            else if (this.ptr === 0xfe) rx[i] = count & 0xff
            else if (this.ptr === 0xff) rx[i] = taken < this.revealed ? this.out[taken++] : 0xff
            else rx[i] = 0 // reserved registers
            if (this.ptr !== 0xff) this.ptr++
        }
        if (taken > 0) {
            this.out = this.out.subarray(taken)
            this.revealed -= taken
        }
        return rx
    }

    // ---- receiver ----------------------------------------------------------------------------

    /** in standby now; a standby that is over ends here (the receiver starts again at its end) */
    private asleep(): boolean {
        if (this.standbyUntil === null) return false
        if (this.now < this.standbyUntil) return true
        this.wake(this.standbyUntil)
        return false
    }

    /** the end of a standby: the RAM configuration at its defaults, the time and last fix kept (hot start) */
    private wake(at: number) {
        this.standbyUntil = null
        this.startRam(at)
        this.fixFrom = at + HOT_START_MS
    }

    /** what a power-on and a standby's end both lose: the RAM configuration, the port's state and queues */
    private startRam(at: number) {
        this.inUbx = this.inNmea = this.outUbx = this.outNmea = true
        this.pvtRate = 0
        this.ptr = 0xff
        this.out = Buffer.alloc(0)
        this.revealed = 0
        this.later = []
        this.inRest = Buffer.alloc(0)
        this.nextEpoch = at + NAV_PERIOD_MS
    }

    /** RXM-PMREQ: version 0 (16 bytes) or the legacy 8 bytes; only the backup request is modelled */
    private pmreq(p: Buffer) {
        const v0 = p.length === 16 && p[0] === 0
        if (!v0 && p.length !== 8) return
        const o = v0 ? 4 : 0
        const duration = p.readUInt32LE(o)
        if ((p.readUInt32LE(o + 4) & PMREQ_BACKUP) === 0) return
        this.standbys++
        this.standbyUntil = duration > 0 ? this.now + duration : Infinity
        this.onStandby?.(this.now, this.standbyUntil)
    }

    /** 0..n-1 (n < 2^24), xorshift32 */
    private random(n: number): number {
        let x = this.seed
        x ^= x << 13
        x ^= x >>> 17
        x ^= x << 5
        this.seed = x | 0
        return (x >>> 8) % n
    }

    private input(tx: Buffer) {
        const s = parseUbxStream(Buffer.concat([this.inRest, tx]))
        this.inRest = s.rest
        for (const f of s.frames) this.handle(f)
    }

    private handle(f: UbxMessage) {
        if (!this.inUbx) return
        this.received.push(Buffer.from([f.cls, f.id]).toString("hex"))
        if (this.received.length > 16) this.received.shift()
        if (f.cls === CLS_CFG && f.id === ID_CFG_VALSET) {
            this.valsets++
            this.answerAck(f, this.valset(f.payload))
        } else if (f.cls === CLS_NAV && f.id === ID_NAV_PVT && f.payload.length === 0) {
            this.polls++
            if (this.capture) this.replayNext()
            else this.emitUbx(ubxFrame(CLS_NAV, ID_NAV_PVT, this.navPvt()))
        } else if (f.cls === CLS_RXM && f.id === ID_RXM_PMREQ) this.pmreq(f.payload)
        else if (f.cls === CLS_CFG) this.answerAck(f, false) // other CFG messages are not modelled
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
        const set: [number, number][] = []
        for (let i = 4; i < p.length;) {
            if (i + 4 > p.length) return false
            const key = p.readUInt32LE(i)
            i += 4
            const size = (key >>> 28) & 7
            const n = size === 1 || size === 2 ? 1 : size === 3 ? 2 : size === 4 ? 4 : size === 5 ? 8 : -1
            if (n < 0 || i + n > p.length || !VALSET_KEYS.includes(key)) return false
            set.push([key, n === 1 ? p[i] : n === 2 ? p.readUInt16LE(i) : p.readUInt32LE(i)])
            i += n
        }
        for (const [key, v] of set) {
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
     * poll asked for comes last.
     */
    private replayNext() {
        let end = this.nextPvtEnd(this.capturePos)
        if (end < 0 && this.captureLoop && this.nextPvtEnd(0) >= 0) {
            this.capturePos = 0
            end = this.nextPvtEnd(0)
        }
        if (end < 0) end = this.capture!.length
        if (end <= this.capturePos) return // the recording is over: no answer
        let start = this.capturePos
        if (end - start > this.txBufferSize) {
            this.dropped++
            start = end - this.txBufferSize
        }
        this.emit(this.capture!.subarray(start, end), true)
        this.capturePos = end
    }

    /** the NAV-PVT payload the receiver would send now */
    navPvt(): Buffer {
        let utc = Math.floor(this.utcNow())
        const timeKnown = !isNaN(utc)
        if (timeKnown && this.epochMs > 0) utc = Math.floor(utc / this.epochMs) * this.epochMs
        const time = timeKnown
            ? { ...navPvtTime(utc, { signedNano: this.signedNano }), fullyResolved: this.hadFix }
            : { iTOW: (this.now - this.poweredAt) % WEEK_MS }
        const dt = (this.now - this.posAt) / 1000
        // (a hot start: the fix comes back a second after a standby)
        const fixed = this.fix && this.now >= this.fixFrom
        const lat = fixed ? this.lat + this.latRate * dt : this.lastLat
        const lon = fixed ? this.lon + this.lonRate * dt : this.lastLon
        const h = fixed ? this.heightM : this.lastHeightM
        const speed = fixed ? this.speedMps * 1000 : 0
        const head = (this.headingDeg * Math.PI) / 180
        return navPvtPayload({
            ...time,
            tAccNs: fixed ? 25 : timeKnown && this.hadFix ? 5000 : 0xffffffff,
            fixType: fixed ? 3 : 0,
            gnssFixOK: fixed,
            flags2: timeKnown ? (this.hadFix ? 0xe0 : 0x20) : 0, // confirmedAvai / Date / Time
            numSV: this.numSV,
            lon: rnd(lon * 1e7),
            lat: rnd(lat * 1e7),
            heightMm: rnd(h * 1000),
            hMslMm: rnd(h * 1000),
            hAccMm: fixed ? 2500 : 0xffffffff,
            vAccMm: fixed ? 4000 : 0xffffffff,
            velNMmS: rnd(speed * Math.cos(head)),
            velEMmS: rnd(speed * Math.sin(head)),
            gSpeedMmS: rnd(speed),
            headMot: rnd(this.headingDeg * 1e5),
            sAccMmS: fixed ? 300 : 20000,
            headAcc: fixed ? 1000000 : 18000000,
            pDOP: fixed ? 130 : 9999,
        })
    }

    private emitUbx(frame: Buffer) {
        if (this.outUbx) this.emit(frame, false)
    }

    private emitNmea(line: Buffer) {
        if (this.outNmea && !this.capture) this.emit(line, false)
    }

    /** queues an output message, visible after the latency (raw replay bytes bypass the latency) */
    private emit(bytes: Buffer, now: boolean) {
        this.later.push({ at: now ? this.now : this.now + this.latencyMs, bytes })
        this.tick()
    }

    /** move due output into the TX buffer; periodic output of elapsed navigation epochs */
    private tick() {
        const now = this.now
        // at most a few epochs at a time: after a long silence the buffer would be full anyway
        for (let steps = 0; this.nextEpoch <= now && steps < 8; steps++) {
            this.epochCount++
            this.nextEpoch += NAV_PERIOD_MS
            if (this.outNmea && !this.capture) this.nmeaEpoch()
            if (this.outUbx && this.pvtRate > 0 && !this.capture && this.epochCount % this.pvtRate === 0)
                this.later.push({ at: now, bytes: ubxFrame(CLS_NAV, ID_NAV_PVT, this.navPvt()) })
        }
        if (this.nextEpoch <= now) this.nextEpoch = now - ((now - this.nextEpoch) % NAV_PERIOD_MS) + NAV_PERIOD_MS
        const due = this.later.filter(m => m.at <= now)
        this.later = this.later.filter(m => m.at > now)
        for (const m of due) {
            let b = m.bytes
            if (this.garbage > 0 && this.random(1000) < this.garbage * 1000) b = Buffer.concat([this.junk(), b])
            if (this.out.length + b.length > this.txBufferSize) this.dropped++
            else this.out = Buffer.concat([this.out, b])
        }
    }

    private nmeaEpoch() {
        let t = ""
        let d = ""
        const utc = this.utcNow()
        if (!isNaN(utc)) {
            const f = new Date(Math.floor(utc / 1000) * 1000)
            t = `${pad2(f.getUTCHours())}${pad2(f.getUTCMinutes())}${pad2(f.getUTCSeconds())}.00`
            d = `${pad2(f.getUTCDate())}${pad2(f.getUTCMonth() + 1)}${pad2(f.getUTCFullYear() % 100)}`
        }
        this.later.push({ at: this.now, bytes: nmea(`GNRMC,${t},${this.fix ? "A" : "V"},,,,,,,${d},,,N,V`) })
        this.later.push({ at: this.now, bytes: nmea(`GNGGA,${t},,,,,${this.fix ? "1" : "0"},${pad2(this.numSV)},,,M,,M,,`) })
    }

    /** a garbage burst: random bytes, lone sync bytes, false headers (short or huge lengths) */
    private junk(): Buffer {
        const b = Buffer.alloc(1 + this.random(16))
        for (let i = 0; i < b.length; i++) b[i] = this.random(256)
        const kind = this.random(4)
        if (kind === 0) return b
        if (kind === 1) return Buffer.concat([b, Buffer.from([0xb5])])
        // a false header: B5 62, random class/id, a length that is short (checksum fails) or huge
        const h = Buffer.from([0xb5, 0x62, this.random(256), this.random(256), 0, 0])
        h.writeUInt16LE(kind === 2 ? this.random(24) : 2000 + this.random(60000), 4)
        return Buffer.concat([b, h])
    }
}
