import * as ds from "@devicescript/core"
import { I2cBus } from "../hal/i2c"
import { Clock } from "../hal/clock"
import { Peripheral } from "../hal/peripheral"
import {
    UbxParser,
    UbxMessage,
    NavPvt,
    ubxFrame,
    decodeNavPvt,
    CLS_NAV,
    ID_NAV_PVT,
    CLS_ACK,
    ID_ACK_ACK,
    ID_ACK_NAK,
    CLS_CFG,
    ID_CFG_VALSET,
    CLS_RXM,
    ID_RXM_PMREQ,
} from "./ubx"

/*
 * u-blox GNSS receiver (NEO-M9N, SAM-M10Q, MAX-M10S) on I2C / DDC at 0x42. Registers and frames:
 * docs/parts.md.
 *
 * - 0xFD/0xFE: bytes waiting, big-endian; 0xFF: the output stream. The driver reads the count, then
 *   exactly that many bytes in chunks of at most 64 per transaction (register byte 0xFF, then a
 *   repeated-start read), and feeds them to a UbxParser. NMEA and garbage in between are skipped.
 * - Configuration: ONE UBX-CFG-VALSET (class 06, id 8A; configuration interface of protocol 27+,
 *   which the M9 and M10 both speak; the M10 no longer has CFG-PRT/CFG-MSG) to the RAM layer:
 *   UBX in and out on I2C, NMEA out on I2C off, periodic NAV-PVT on I2C off (we poll). RAM only, so
 *   nothing wears out and a receiver reset brings back its defaults; configure() runs again then.
 *   An M8 (protocol < 27) answers ACK-NAK: configure() throws saying so.
 * - standby(ms): UBX-RXM-PMREQ (class 02, id 41, version 0: duration ms, flags backup | force, no
 *   wake-up source: the DDC port is not one), so the receiver sleeps in software standby (46 uA
 *   instead of ~12 mA tracking) and wakes by itself after `ms`, with its backup RAM kept (hot start)
 *   and its RAM configuration gone: `ok` turns false, the next configure() runs again. PMREQ has no
 *   acknowledgement; while asleep the receiver does not answer its address.
 * - poll(): discards stale output, sends the NAV-PVT poll B5 62 01 07 00 00 08 19, waits (device
 *   clock, timeout) for a NAV-PVT and returns it decoded. It never throws.
 */

export const UBLOX_I2C_ADDRESS = 0x42
export const REG_BYTES_HI = 0xfd
export const REG_BYTES_LO = 0xfe
export const REG_STREAM = 0xff

/** CFG-VALSET layers */
export const LAYER_RAM = 0x01
export const LAYER_BBR = 0x02
export const LAYER_FLASH = 0x04

/** configuration keys (u-blox M9/M10 interface description, "Configuration interface") */
export const KEY_I2CINPROT_UBX = 0x10710001
export const KEY_I2CINPROT_NMEA = 0x10710002
export const KEY_I2COUTPROT_UBX = 0x10720001
export const KEY_I2COUTPROT_NMEA = 0x10720002
export const KEY_MSGOUT_UBX_NAV_PVT_I2C = 0x20910006

/** Value size in bytes from a key's size field (bits 28..30): 1 bit and 1 byte both take one byte. */
export function keyValueSize(key: number): number {
    const s = Math.floor(key / 0x10000000) & 7
    if (s === 1 || s === 2) return 1
    if (s === 3) return 2
    if (s === 4) return 4
    if (s === 5) return 8
    return -1
}

/** CFG-VALSET payload: version 0 (no transaction), `layers`, then key (u32 LE) / value pairs */
export function valsetPayload(layers: number, keys: number[], values: number[]): Buffer {
    let n = 4
    for (const k of keys) n += 4 + keyValueSize(k)
    const p = Buffer.alloc(n)
    p[0] = 0
    p[1] = layers
    let o = 4
    for (let i = 0; i < keys.length; i++) {
        const sz = keyValueSize(keys[i])
        if (sz < 0 || sz > 4) throw new Error("valsetPayload: unsupported key size")
        p.setAt(o, "u32", keys[i])
        o += 4
        if (sz === 1) p[o] = values[i] & 0xff
        else if (sz === 2) p.setAt(o, "u16", values[i])
        else p.setAt(o, "u32", values[i])
        o += sz
    }
    return p
}

/** the CFG-VALSET frame configure() sends (the tests check its bytes) */
export function configFrame(): Buffer {
    const keys = [KEY_I2CINPROT_UBX, KEY_I2COUTPROT_UBX, KEY_I2COUTPROT_NMEA, KEY_MSGOUT_UBX_NAV_PVT_I2C]
    const values = [1, 1, 0, 0]
    return ubxFrame(CLS_CFG, ID_CFG_VALSET, valsetPayload(LAYER_RAM, keys, values))
}

/** B5 62 01 07 00 00 08 19 */
export function navPvtPollFrame(): Buffer {
    return ubxFrame(CLS_NAV, ID_NAV_PVT)
}

/** RXM-PMREQ flags: b1 backup (software standby for `duration`), b2 force */
const PMREQ_BACKUP_FORCE = 0x06

/** UBX-RXM-PMREQ version 0: software standby for `ms` (0 would be until a wake-up pin: none here) */
export function pmreqFrame(ms: number): Buffer {
    const p = Buffer.alloc(16)
    p.setAt(4, "u32", ms)
    p.setAt(8, "u32", PMREQ_BACKUP_FORCE)
    return ubxFrame(CLS_RXM, ID_RXM_PMREQ, p)
}

export interface UbloxOptions {
    /** device clock for timeouts and back-off (default: real time) */
    clock?: Clock
    /** 7-bit I2C address, default 0x42 */
    address?: number
    /** how long poll() waits for the NAV-PVT (device ms), default 1100 (one 1 Hz epoch + margin) */
    pollTimeoutMs?: number
    /** how long configure() waits for ACK-ACK / ACK-NAK (device ms), default 1100 */
    ackTimeoutMs?: number
    /** bytes per stream read transaction, default 64 */
    chunk?: number
}

const POLL_MS = 20
/** partial frame held while the receiver has nothing waiting for this long (device ms): garbage */
const IDLE_FLUSH_MS = 60
/** most stream bytes read per readAvailable(); the receiver's TX buffer is about 4 KB */
const MAX_READ = 1024

/**
 * u-blox receiver on an I2cBus.
 *
 * `ok`: configuration acknowledged (ACK-ACK) and the receiver answering since. It turns false when
 * configure() fails and when a poll gets no NAV-PVT (timeout, bus error, byte count 0xFFFF = nobody
 * drives the bus): a receiver that went away may come back reset, with NMEA on and our RAM
 * configuration gone. poll() still works while `!ok` (NMEA is skipped by the parser); call
 * `retryConfigure()` before polls: it reconfigures at once after a poll failure and backs off 1 s,
 * 2 s ... 60 s between failed configurations. Calls are serialized by a lock released on every path.
 */
export class Ublox extends Peripheral {
    /** last NAV-PVT received (fix or not) and the device time it arrived; -1 before the first */
    last: NavPvt = undefined
    lastAt = -1
    /** device time of the last poll() attempt, -1 before the first */
    lastPollAt = -1
    /** device time the last NAV-PVT poll request was written */
    requestAt = -1
    /** number of NAV-PVT polls that got no answer */
    pollFailures = 0

    readonly parser = new UbxParser()
    readonly address: number
    readonly pollTimeoutMs: number
    readonly ackTimeoutMs: number
    readonly chunk: number
    private idleSince = -1

    constructor(
        readonly bus: I2cBus,
        options: UbloxOptions = {},
    ) {
        super(options.clock || new Clock())
        this.address = options.address === undefined ? UBLOX_I2C_ADDRESS : options.address
        this.pollTimeoutMs = options.pollTimeoutMs === undefined ? 1100 : options.pollTimeoutMs
        this.ackTimeoutMs = options.ackTimeoutMs === undefined ? 1100 : options.ackTimeoutMs
        const c = options.chunk === undefined ? 64 : options.chunk
        this.chunk = c < 1 ? 1 : c
    }

    /** bytes waiting in the receiver (0xFD/0xFE); throws when the bus reads 0xFFFF (nobody there) */
    private async bytesWaiting(): Promise<number> {
        const r = await this.bus.xfer(this.address, Buffer.from([REG_BYTES_HI]), 2)
        const n = (r[0] << 8) | r[1]
        if (n === 0xffff) throw new Error("u-blox not answering: byte count reads 0xFFFF")
        return n
    }

    /**
     * Reads what the receiver has waiting (at most MAX_READ bytes) and returns the frames it
     * completed. A partial frame held while the receiver has nothing more to say for IDLE_FLUSH_MS
     * is garbage with a plausible length: it is flushed so the frames behind it come out.
     */
    private async readAvailable(): Promise<UbxMessage[]> {
        const frames: UbxMessage[] = []
        let n = await this.bytesWaiting()
        if (n === 0) {
            if (this.parser.pending() === 0) {
                this.idleSince = -1
                return frames
            }
            const now = this.clock.now()
            if (this.idleSince < 0) this.idleSince = now
            if (now - this.idleSince >= IDLE_FLUSH_MS) {
                this.idleSince = -1
                await this.collect(this.parser.flush(), frames)
            }
            return frames
        }
        this.idleSince = -1
        if (n > MAX_READ) n = MAX_READ
        const reg = Buffer.from([REG_STREAM])
        while (n > 0) {
            const k = n < this.chunk ? n : this.chunk
            const data = await this.bus.xfer(this.address, reg, k)
            await this.collect(this.parser.push(data), frames)
            n -= k
        }
        return frames
    }

    /**
     * Adds `got` to `frames`, then lets the parser finish what it left for later (more()), yielding
     * between its calls and after it: the VM panics on a fiber that runs too long without a yield,
     * and on the simulator's I2C model a transfer does not yield by itself.
     */
    private async collect(got: UbxMessage[], frames: UbxMessage[]) {
        while (true) {
            for (const f of got) frames.push(f) // (no Array.concat in DeviceScript)
            await ds.sleep(0)
            if (!this.parser.more()) return
            got = this.parser.resume()
        }
    }

    /** discard whatever is waiting and anything half-parsed: an answer must come after our request */
    private async discardStale() {
        await this.readAvailable()
        const junk: UbxMessage[] = []
        await this.collect(this.parser.flush(), junk)
        this.idleSince = -1
    }

    /** waits for a frame accepted by `want` until `timeoutMs` (device ms) after now; undefined on timeout */
    private async waitFrame(want: (m: UbxMessage) => boolean, timeoutMs: number): Promise<UbxMessage> {
        const t0 = this.clock.now()
        while (true) {
            // "late" is decided before reading: a delayed read that finds the answer is a success
            const late = this.clock.now() - t0 >= timeoutMs
            const frames = await this.readAvailable()
            for (const m of frames) if (want(m)) return m
            if (late) return undefined
            await this.clock.sleep(POLL_MS)
        }
    }

    /**
     * Sends the CFG-VALSET and waits for its ACK-ACK. Throws an Error on ACK-NAK, on no answer
     * within ackTimeoutMs, on a silent bus or a transfer error; the lock is released either way
     * and `ok` tells the outcome.
     */
    /** (Peripheral.configure() calls it with the lock held) */
    protected override async setup(): Promise<void> {
        await this.discardStale()
        await this.bus.xfer(this.address, configFrame(), 0)
        const ack = await this.waitFrame((m: UbxMessage) => {
            if (m.cls !== CLS_ACK || (m.id !== ID_ACK_ACK && m.id !== ID_ACK_NAK)) return false
            return m.payload.length >= 2 && m.payload[0] === CLS_CFG && m.payload[1] === ID_CFG_VALSET
        }, this.ackTimeoutMs)
        if (!ack) throw new Error(`u-blox: no ACK for CFG-VALSET within ${this.ackTimeoutMs} ms`)
        if (ack.id === ID_ACK_NAK) throw new Error("u-blox: CFG-VALSET refused (ACK-NAK); protocol < 27 (M8) needs CFG-PRT")
    }

    /**
     * Polls one NAV-PVT. Returns it decoded (check positionValid()/timeValid() before using it), or
     * undefined when the receiver does not answer in time, the bus fails or reads 0xFFFF; then `ok`
     * is false and `lastError` says why. Never throws.
     */
    async poll(): Promise<NavPvt> {
        await this.lock.acquire()
        let r: NavPvt = undefined
        try {
            r = await this.pollLocked()
        } catch (e: any) {
            this.lastError = "u-blox poll: " + e.message
            r = undefined
        } finally {
            this.lock.release()
        }
        if (r) {
            this.last = r
            this.lastAt = this.clock.now()
        } else {
            this.ok = false
            this.pollFailures++
        }
        return r
    }

    /**
     * Software standby for `ms` (> 0) of the receiver's own time: it wakes by itself, configuration
     * gone (`ok` false: configure() again before polling). False when the request did not reach it
     * (the receiver then keeps tracking). Never throws.
     */
    async standby(ms: number): Promise<boolean> {
        await this.lock.acquire()
        let sent = false
        try {
            await this.bus.xfer(this.address, pmreqFrame(Math.max(1, Math.floor(ms))), 0)
            sent = true
        } catch (e: any) {
            this.lastError = "u-blox standby: " + e.message
        } finally {
            this.lock.release()
        }
        if (sent) {
            this.ok = false
            this.parser.reset()
        }
        return sent
    }

    private async pollLocked(): Promise<NavPvt> {
        this.lastPollAt = this.clock.now()
        await this.discardStale()
        // the solution the receiver answers with is the one of this instant (a 1 Hz receiver's is up
        // to an epoch older; NAV-PVT's own UTC tells): taken right before the request, no await between
        this.requestAt = this.clock.now()
        await this.bus.xfer(this.address, navPvtPollFrame(), 0)
        const m = await this.waitFrame((f: UbxMessage) => {
            return f.cls === CLS_NAV && f.id === ID_NAV_PVT && f.payload.length > 0
        }, this.pollTimeoutMs)
        if (!m) {
            this.lastError = `u-blox: no NAV-PVT within ${this.pollTimeoutMs} ms`
            return undefined
        }
        const pvt = decodeNavPvt(m.payload)
        if (!pvt) this.lastError = `u-blox: NAV-PVT payload of ${m.payload.length} bytes`
        return pvt
    }
}
