import * as ds from "@devicescript/core"
import { describe, test, expect } from "@devicescript/test"
import { I2cBus } from "../hal/i2c"
import { Clock } from "../hal/clock"
import {
    UbxParser,
    UbxMessage,
    NavPvt,
    ubxFrame,
    ubxChecksum,
    decodeNavPvt,
    positionValid,
    timeValid,
    utcFromFields,
    daysFromCivil,
    UBX_MAX_FRAME,
} from "../sensor/ubx"
import { Ublox, UbloxOptions, configFrame, navPvtPollFrame, valsetPayload, pmreqFrame } from "../sensor/ublox"
import { WorldLink } from "../sim/world"
import { HostI2c } from "../sim/host-i2c"
import { rig as rigCommand, exact } from "./rig"

/*
 * UBX framing, parser, NAV-PVT decoding, and the u-blox driver against the simulator's
 * register-level model of the receiver, which runs on the host (src/sim/models/ublox.ts, its own
 * behaviour tested in test/chip-models.test.ts) over the bus bridge, steered through the rig.
 * The byte vectors below are also in test/ubx-host.test.ts (host framing, src/gnss/ubx.ts): keep
 * them identical.
 */
const world = new WorldLink()
const bus = new HostI2c(world)

// ---- shared vectors (identical in test/ubx-host.test.ts) ---------------------------------------

/** NAV-PVT poll, from the hardware notes */
const POLL_HEX = "b562010700000819"
/** ACK-ACK and ACK-NAK for CFG-VALSET */
const ACK_HEX = "b56205010200068a98c1"
const NAK_HEX = "b56205000200068a97bc"
/**
 * CFG-VALSET, version 0, layer RAM: I2CINPROT-UBX (0x10710001) = 1, I2COUTPROT-UBX (0x10720001) = 1,
 * I2COUTPROT-NMEA (0x10720002) = 0, MSGOUT-UBX_NAV_PVT_I2C (0x20910006) = 0
 */
const VALSET_HEX = "b562068a1800000100000100711001010072100102007210000600912000ebac"
/**
 * NAV-PVT, Brussels, 2024-02-29 (leap day) 13:45:30.250 UTC, 3D fix:
 * iTOW 395148250, valid 0x07, tAcc 21, nano 250000000, fixType 3, flags 0x01, flags2 0xe0, numSV 14,
 * lon 43524862, lat 508467512, height 112345, hMSL 65678, hAcc 1432, vAcc 2210,
 * velN 120, velE -340, velD 15, gSpeed 360, headMot 28946123, sAcc 210, headAcc 1234567, pDOP 134
 */
const PVT_BE_HEX =
    "b56201075c00da7b8d17e807021d0d2d1e071500000080b2e60e0301e00efe22980238994e1ed9b601008e0001009805" +
    "0000a208000078000000acfeffff0f00000068010000cbaeb901d200000087d6120086000000000000000000000000000000e6ef"
/**
 * NAV-PVT, Sao Paulo, 2024-01-01 00:00:00 with nano -1500000 (= 2023-12-31 23:59:59.9985 UTC), 2D fix:
 * iTOW 86417998, valid 0x07, tAcc 48, fixType 2, flags 0x01, flags2 0xe0, numSV 6,
 * lon -466565123, lat -235613456, height 760250, hMSL 765900, hAcc 8150, vAcc 15000,
 * velN -2000, velE 0, velD 0, gSpeed 2000, headMot 18000000, sAcc 800, headAcc 2500000, pDOP 287
 */
const PVT_SP_HEX =
    "b56201075c004ea22605e80701010000000730000000a01ce9ff0201e006fdc730e4f0d2f4f1ba990b00ccaf0b00d61f" +
    "0000983a000030f8ffff0000000000000000d007000080a8120120030000a02526001f010000000000000000000000000000c4a6"

/** RXM-PMREQ version 0: software standby (flags backup | force) for 295 s, no wake-up pin */
const PMREQ_HEX = "b56202411000000000005880040006000000000000003513"

const BE_UTC = 1709214330250
const SP_UTC = 1704067199998

// ---- helpers -------------------------------------------------------------------------------------

function bytes(hex: string) {
    return Buffer.from(hex, "hex")
}
function near(got: number, want: number, tol: number, what: string) {
    if (!(Math.abs(got - want) <= tol)) throw new Error(`${what}: got ${got}, want ${want} +/- ${tol}`)
}
function contains(s: string, part: string) {
    return s !== undefined && s.indexOf(part) >= 0
}
async function errorOf(f: () => Promise<any>): Promise<string> {
    try {
        await f()
    } catch (e: any) {
        return e.message
    }
    return undefined
}
function cat(parts: Buffer[]): Buffer {
    let r = Buffer.alloc(0)
    for (const p of parts) r = r.concat(p)
    return r
}
function ids(frames: UbxMessage[]): string {
    let s = ""
    for (const f of frames) s += Buffer.from([f.cls, f.id]).toString("hex") + " "
    return s
}
/** payload of a vector frame */
function payloadOf(hex: string): Buffer {
    const f = bytes(hex)
    return f.slice(6, f.length - 2)
}

/** push, then resume() (yielding between calls) while the parser says more() */
async function feed(p: UbxParser, b: Buffer): Promise<UbxMessage[]> {
    const out: UbxMessage[] = []
    let got = p.push(b)
    while (true) {
        for (const f of got) out.push(f)
        await ds.sleep(0)
        if (!p.more()) return out
        got = p.resume()
    }
}

/** records transactions; can throw once on a chosen one, and run a hook after writes */
class SpyBus implements I2cBus {
    log: string[] = []
    n = 0
    /** throw (once) on the next transaction whose "tx-hex/rxLen" starts with this */
    throwOn: string = undefined
    afterWrite: (tx: Buffer) => Promise<void> = undefined
    constructor(readonly dev: I2cBus) {}
    async xfer(address: number, tx: Buffer, rxLen: number): Promise<Buffer> {
        this.n++
        const h = tx.toString("hex") + "/" + rxLen
        this.log.push(h)
        if (this.throwOn !== undefined && h.indexOf(this.throwOn) === 0) {
            this.throwOn = undefined
            throw new Error("I2C bus error (test)")
        }
        const rx = await this.dev.xfer(address, tx, rxLen)
        if (this.afterWrite && tx.length >= 2) await this.afterWrite(tx)
        return rx
    }
}

/** the receiver on the host, as the rig steers and shows it */
class Receiver {
    /** lat/lon to 1e-7 degree, heightM to the mm (as exact text: `exact`) */
    async inputs(i: any) {
        const o: any = { ...i }
        if (i.lat !== undefined) o.lat = exact(i.lat, 7)
        if (i.lon !== undefined) o.lon = exact(i.lon, 7)
        if (i.heightM !== undefined) o.heightM = exact(i.heightM, 3)
        await rigCommand(bus, { gnssInputs: o })
    }
    /** outNmea, valsets, received, dropped, utcNow, replayDone */
    async state(): Promise<any> {
        return await rigCommand(bus, { get: "gnss" })
    }
    async utcNow(): Promise<number> {
        return (await this.state()).utcNow
    }
    async inject(b: Buffer) {
        await rigCommand(bus, { gnssInject: b.toString("hex") })
    }
    /** a recording made of `parts` ([bytes, times repeated]); undefined: back to live output */
    async replay(parts: any[], loop = false) {
        await rigCommand(bus, { gnssReplay: parts ? parts.map(p => [p[0].toString("hex"), p[1]]) : null, loop })
    }
    async latency(ms: number) {
        await rigCommand(bus, { gnssLatency: ms })
    }
    async powerOn() {
        await rigCommand(bus, { gnssPowerOn: 1 })
    }
}

interface Rig {
    clock: Clock
    gnss: Receiver
    spy: SpyBus
    drv: Ublox
}
/** a new receiver on the bus (`mopts`: the model's options) and a driver for it */
async function rig(mopts: any = {}, dopts: UbloxOptions = {}): Promise<Rig> {
    await rigCommand(bus, { gnss: mopts })
    const clock = new Clock()
    const spy = new SpyBus(bus)
    const o: UbloxOptions = { ...dopts, clock }
    const drv = new Ublox(spy, o)
    return { clock, gnss: new Receiver(), spy, drv }
}

/** garbage a real stream can hold between frames */
function junk(): Buffer {
    return cat([
        Buffer.from("$GNRMC,134530.00,A,5050.80507,N,00421.14917,E,0.001,,290224,,,A,V*1C\r\n"),
        bytes("ffffffff00b5"), // 0xFF filler, a lone sync byte
        bytes("b562010700ff"), // false header, length 0xFF00: oversize
        bytes("b56201070400deadbeef0000"), // false header, length 4, checksum wrong
        bytes("b5b5"),
    ])
}

// ---- framing ---------------------------------------------------------------------------------------

describe("ubx framing", () => {
    test("poll, ACK, VALSET and NAV-PVT frames are the vector bytes", () => {
        expect(navPvtPollFrame().toString("hex")).toBe(POLL_HEX)
        expect(ubxFrame(0x01, 0x07).toString("hex")).toBe(POLL_HEX)
        expect(ubxFrame(0x05, 0x01, bytes("068a")).toString("hex")).toBe(ACK_HEX)
        expect(ubxFrame(0x05, 0x00, bytes("068a")).toString("hex")).toBe(NAK_HEX)
        expect(configFrame().toString("hex")).toBe(VALSET_HEX)
        expect(ubxFrame(0x01, 0x07, payloadOf(PVT_BE_HEX)).toString("hex")).toBe(PVT_BE_HEX)
        expect(ubxFrame(0x01, 0x07, payloadOf(PVT_SP_HEX)).toString("hex")).toBe(PVT_SP_HEX)
    })
    test("Fletcher checksum over class..payload", () => {
        const f = bytes(POLL_HEX)
        expect(ubxChecksum(f, 2, 6)).toBe(0x1908)
    })
    test("VALSET payload: value sizes from the key", () => {
        const p = valsetPayload(0x03, [0x40520001, 0x30210001, 0x20910006], [115200, 1000, 1])
        expect(p.toString("hex")).toBe("00030000" + "0100524000c20100" + "01002130e803" + "0600912001")
    })
})

// ---- parser ----------------------------------------------------------------------------------------

describe("ubx parser", () => {
    test("frames with garbage between them", () => {
        const p = new UbxParser()
        const s = cat([junk(), bytes(PVT_BE_HEX), junk(), bytes(ACK_HEX), junk(), bytes(PVT_SP_HEX), junk()])
        const got = p.push(s)
        expect(ids(got)).toBe("0107 0501 0107 ")
        expect(got[0].payload.toString("hex")).toBe(payloadOf(PVT_BE_HEX).toString("hex"))
        expect(got[2].payload.toString("hex")).toBe(payloadOf(PVT_SP_HEX).toString("hex"))
        expect(p.frames).toBe(3)
        expect(p.oversize).toBe(4)
        expect(p.badChecksum).toBe(4)
        expect(p.skipped > 4 * 90).toBe(true)
        // the trailing junk ends in "b5b5": the last B5 may start a frame, so it is held
        expect(p.pending()).toBe(1)
    })

    test("a frame with a bad checksum is dropped and counted; the next one is found", () => {
        const bad = bytes(PVT_BE_HEX)
        bad[30] ^= 0x01 // one bit of lon
        const p = new UbxParser()
        const got = p.push(cat([bad, bytes(PVT_SP_HEX)]))
        expect(ids(got)).toBe("0107 ")
        expect(got[0].payload.getAt(28, "i32")).toBe(-235613456)
        expect(p.badChecksum).toBe(1)
        // a wrong CK_B alone is enough
        const bad2 = bytes(ACK_HEX)
        bad2[9] ^= 0x80
        expect(p.push(bad2).length).toBe(0)
        expect(p.badChecksum).toBe(2)
    })

    test("frames split at every byte boundary", async () => {
        const s = cat([bytes(PVT_BE_HEX), junk(), bytes(ACK_HEX), bytes(PVT_SP_HEX)])
        for (let k = 1; k < s.length; k++) {
            await ds.sleep(0) // long loops must yield (the VM panics with InfiniteLoop otherwise)
            const p = new UbxParser()
            const a = p.push(s.slice(0, k))
            const b = p.push(s.slice(k))
            const all = ids(a) + ids(b)
            if (all !== "0107 0501 0107 ") throw new Error(`split at ${k}: got ${all}`)
            if (p.pending() !== 0) throw new Error(`split at ${k}: ${p.pending()} bytes held`)
        }
        // byte by byte
        const p = new UbxParser()
        const got: UbxMessage[] = []
        for (let i = 0; i < s.length; i++) {
            if (i % 32 === 0) await ds.sleep(0)
            const fs = p.push(s.slice(i, i + 1))
            for (const f of fs) got.push(f)
        }
        expect(ids(got)).toBe("0107 0501 0107 ")
        expect(got[2].payload.toString("hex")).toBe(payloadOf(PVT_SP_HEX).toString("hex"))
        // three pieces: every cut through the first frame, with a second cut in the next
        for (let k = 1; k < 100; k += 3) {
            await ds.sleep(0)
            const q = new UbxParser()
            const r = ids(q.push(s.slice(0, k))) + ids(q.push(s.slice(k, k + 117))) + ids(q.push(s.slice(k + 117)))
            if (r !== "0107 0501 0107 ") throw new Error(`3-way split at ${k}: got ${r}`)
        }
    })

    test("a bogus huge length does not stall the parser", () => {
        const p = new UbxParser()
        const got = p.push(cat([bytes("b5620107ffff"), bytes(ACK_HEX)]))
        expect(ids(got)).toBe("0501 ")
        expect(p.oversize).toBe(1)
        expect(p.pending()).toBe(0)
        // also when the bogus header arrives on its own, split in the middle of its length
        const q = new UbxParser()
        expect(q.push(bytes("b562010700")).length).toBe(0)
        expect(ids(q.push(cat([bytes("20"), bytes(ACK_HEX)])))).toBe("0501 ") // 0x2000 = 8192 bytes
    })

    test("a plausible false length holds frames back until flush() or enough bytes", () => {
        const p = new UbxParser()
        const lie = bytes("b56201070003") // claims 768 bytes
        expect(p.push(cat([lie, bytes(PVT_BE_HEX)])).length).toBe(0)
        expect(p.pending()).toBe(106)
        const got = p.flush()
        expect(ids(got)).toBe("0107 ")
        expect(p.pending()).toBe(0)
        // without flush: once 776 bytes have arrived the checksum fails and the frame comes out
        const q = new UbxParser()
        expect(q.push(cat([lie, bytes(PVT_BE_HEX)])).length).toBe(0)
        const fill = Buffer.alloc(700)
        const got2 = q.push(fill)
        expect(ids(got2)).toBe("0107 ")
        expect(q.badChecksum).toBe(1)
    })

    test("the held buffer stays bounded under arbitrary garbage", async () => {
        const p = new UbxParser()
        let seed = 7
        for (let round = 0; round < 60; round++) {
            await ds.sleep(0)
            const b = Buffer.alloc(97)
            for (let i = 0; i < b.length; i++) {
                seed ^= seed << 13 // xorshift32 (`%` on large numbers is inexact in DeviceScript)
                seed ^= seed >>> 17
                seed ^= seed << 5
                b[i] = (seed >>> 8) & 0xff
            }
            // sprinkle headers with lengths that fit (up to 1016 bytes of payload)
            b[10] = 0xb5
            b[11] = 0x62
            b[14] = (round * 17) & 0xff
            b[15] = round % 4
            await feed(p, b)
            if (p.pending() >= UBX_MAX_FRAME) throw new Error(`held ${p.pending()} bytes`)
        }
        expect(p.pending() < UBX_MAX_FRAME).toBe(true)
        expect(ids(await feed(p, cat([Buffer.alloc(UBX_MAX_FRAME), bytes(ACK_HEX)])))).toBe("0501 ")
    })

    test("pathological input: bounded work per call, resume() finishes it", async () => {
        // 150 overlapping false headers, each claiming 1000 bytes, then enough bytes for all of them
        const lies = Buffer.alloc(900)
        for (let i = 0; i + 6 <= lies.length; i += 6) {
            lies[i] = 0xb5
            lies[i + 1] = 0x62
            lies.setAt(i + 4, "u16", 1000)
        }
        const p = new UbxParser()
        const s = cat([lies, bytes(PVT_BE_HEX), Buffer.alloc(1000), bytes(ACK_HEX)])
        let got = p.push(s)
        expect(p.more()).toBe(true) // stopped well before 150 checksums of 1000 bytes
        let calls = 1
        const all: UbxMessage[] = []
        while (true) {
            for (const f of got) all.push(f)
            await ds.sleep(0)
            if (!p.more()) break
            got = p.resume()
            calls++
        }
        expect(ids(all)).toBe("0107 0501 ")
        expect(calls > 50).toBe(true)
        expect(p.badChecksum).toBe(150)
        expect(p.pending()).toBe(0)
        // the same through flush(): false headers held when the stream went idle
        const q = new UbxParser()
        expect((await feed(q, cat([lies, bytes(ACK_HEX)]))).length).toBe(0)
        let fl = q.flush()
        while (q.more()) {
            await ds.sleep(0)
            const r = q.resume()
            for (const f of r) fl.push(f)
        }
        expect(ids(fl)).toBe("0501 ")
        expect(q.pending()).toBe(0)
    })

    test("sync bytes and 0xFF inside a payload are data", () => {
        const pl = bytes("b562b562ffffffb5620107")
        const f = ubxFrame(0x0a, 0x04, pl)
        const p = new UbxParser()
        const got = p.push(cat([f, bytes(ACK_HEX)]))
        expect(ids(got)).toBe("0a04 0501 ")
        expect(got[0].payload.toString("hex")).toBe(pl.toString("hex"))
        expect(p.skipped).toBe(0)
    })
})

// ---- NAV-PVT -------------------------------------------------------------------------------------

describe("NAV-PVT decode", () => {
    test("Brussels vector (leap day, 3D fix)", () => {
        const v = decodeNavPvt(payloadOf(PVT_BE_HEX))
        expect(v.iTOW).toBe(395148250)
        expect(v.year).toBe(2024)
        expect(v.month).toBe(2)
        expect(v.day).toBe(29)
        expect(v.hour).toBe(13)
        expect(v.min).toBe(45)
        expect(v.sec).toBe(30)
        expect(v.validDate && v.validTime && v.fullyResolved).toBe(true)
        expect(v.tAccNs).toBe(21)
        expect(v.nano).toBe(250000000)
        expect(v.fixType).toBe(3)
        expect(v.gnssFixOK).toBe(true)
        expect(v.numSV).toBe(14)
        expect(v.lon).toBe(43524862)
        expect(v.lat).toBe(508467512)
        expect(v.heightMm).toBe(112345)
        expect(v.hMslMm).toBe(65678)
        expect(v.hAccMm).toBe(1432)
        expect(v.vAccMm).toBe(2210)
        expect(v.gSpeedMmS).toBe(360)
        expect(v.headMot).toBe(28946123)
        expect(v.pDOP).toBe(134)
        expect(v.utcMs).toBe(BE_UTC)
        expect(positionValid(v)).toBe(true)
        expect(timeValid(v)).toBe(true)
    })

    test("Sao Paulo vector (negative lat/lon, negative nano across the year end, 2D fix)", () => {
        const v = decodeNavPvt(payloadOf(PVT_SP_HEX))
        expect(v.iTOW).toBe(86417998)
        expect(v.year).toBe(2024)
        expect(v.month).toBe(1)
        expect(v.day).toBe(1)
        expect(v.hour + v.min + v.sec).toBe(0)
        expect(v.nano).toBe(-1500000)
        expect(v.tAccNs).toBe(48)
        expect(v.fixType).toBe(2)
        expect(v.gnssFixOK).toBe(true)
        expect(v.numSV).toBe(6)
        expect(v.lat).toBe(-235613456)
        expect(v.lon).toBe(-466565123)
        expect(v.heightMm).toBe(760250)
        expect(v.hMslMm).toBe(765900)
        expect(v.hAccMm).toBe(8150)
        expect(v.vAccMm).toBe(15000)
        expect(v.gSpeedMmS).toBe(2000)
        expect(v.headMot).toBe(18000000)
        expect(v.pDOP).toBe(287)
        expect(v.utcMs).toBe(SP_UTC) // 2023-12-31T23:59:59.998Z (truncated from .9985)
        expect(positionValid(v)).toBe(true)
        expect(timeValid(v)).toBe(true)
    })

    test("what is refused: no fix, DR only, time only, time not resolved, bad fields", () => {
        const base = payloadOf(PVT_BE_HEX)
        let p = base.slice(0)
        p[20] = 0 // fixType none
        p[21] = 0 // gnssFixOK off
        p[11] = 0x03 // date and time, not fully resolved
        let v = decodeNavPvt(p)
        expect(positionValid(v)).toBe(false)
        expect(timeValid(v)).toBe(false)
        expect(isNaN(v.utcMs)).toBe(true)
        p = base.slice(0)
        p[21] = 0 // 3D but gnssFixOK off
        expect(positionValid(decodeNavPvt(p))).toBe(false)
        p = base.slice(0)
        p[20] = 1 // dead reckoning only
        expect(positionValid(decodeNavPvt(p))).toBe(false)
        p[20] = 5 // time only: time yes, position no
        v = decodeNavPvt(p)
        expect(positionValid(v)).toBe(false)
        expect(timeValid(v)).toBe(true)
        p[20] = 4 // GNSS + DR
        expect(positionValid(decodeNavPvt(p))).toBe(true)
        p = base.slice(0)
        p[11] = 0x05 // no validTime
        expect(timeValid(decodeNavPvt(p))).toBe(false)
        p = base.slice(0)
        p[6] = 13 // month 13 with every valid bit set
        v = decodeNavPvt(p)
        expect(isNaN(v.utcMs)).toBe(true)
        expect(timeValid(v)).toBe(false)
        p = base.slice(0)
        p.setAt(28, "i32", 950000000) // lat 95 deg
        expect(positionValid(decodeNavPvt(p))).toBe(false)
        expect(decodeNavPvt(base.slice(0, 60))).toBe(undefined)
        expect(positionValid(undefined)).toBe(false)
        expect(timeValid(undefined)).toBe(false)
    })
})

describe("UTC from NAV-PVT fields", () => {
    test("dates: leap days, year ends, epochs", () => {
        expect(utcFromFields(1980, 1, 6, 0, 0, 0, 0)).toBe(315964800000)
        expect(utcFromFields(2024, 2, 29, 0, 0, 0, 0)).toBe(1709164800000)
        expect(utcFromFields(2000, 2, 29, 12, 0, 0, 0)).toBe(951825600000) // divisible by 400: leap
        expect(utcFromFields(2100, 3, 1, 0, 0, 0, 0)).toBe(4107542400000)
        expect(utcFromFields(2023, 12, 31, 23, 59, 59, 999000000)).toBe(1704067199999)
        expect(utcFromFields(2024, 1, 1, 0, 0, 0, 0)).toBe(1704067200000)
        expect(utcFromFields(2024, 12, 31, 23, 59, 59, 0)).toBe(1735689599000) // day 366
        expect(utcFromFields(2038, 1, 19, 3, 14, 8, 0)).toBe(2147483648000) // past 2^31 s
        expect(utcFromFields(2199, 12, 31, 23, 59, 59, 999999999)).toBe(7258118399999)
        expect(utcFromFields(2016, 12, 31, 23, 59, 60, 0)).toBe(1483228800000) // leap second
        expect(utcFromFields(2024, 1, 1, 0, 0, 0, -1)).toBe(1704067199999) // 1 ns before the year
    })
    test("invalid dates are NaN", () => {
        expect(isNaN(utcFromFields(2023, 2, 29, 0, 0, 0, 0))).toBe(true)
        expect(isNaN(utcFromFields(2100, 2, 29, 0, 0, 0, 0))).toBe(true) // century: not leap
        expect(isNaN(utcFromFields(2024, 4, 31, 0, 0, 0, 0))).toBe(true)
        expect(isNaN(utcFromFields(2024, 0, 1, 0, 0, 0, 0))).toBe(true)
        expect(isNaN(utcFromFields(2024, 1, 0, 0, 0, 0, 0))).toBe(true)
        expect(isNaN(utcFromFields(2024, 1, 1, 24, 0, 0, 0))).toBe(true)
        expect(isNaN(utcFromFields(2024, 1, 1, 0, 60, 0, 0))).toBe(true)
        expect(isNaN(utcFromFields(2024, 1, 1, 0, 0, 61, 0))).toBe(true)
        expect(isNaN(utcFromFields(2024, 1, 1, 0, 0, 0, 1000000001))).toBe(true)
        expect(isNaN(utcFromFields(1979, 12, 31, 0, 0, 0, 0))).toBe(true)
    })
})

// ---- driver + model ------------------------------------------------------------------------------

function checkFix(v: NavPvt, lat: number, lon: number, utc: number) {
    expect(positionValid(v)).toBe(true)
    expect(timeValid(v)).toBe(true)
    near(v.lat / 1e7, lat, 1e-6, "lat")
    near(v.lon / 1e7, lon, 1e-6, "lon")
    expect(v.utcMs).toBe(utc)
}

describe("u-blox driver with the model", () => {
    test("configure: one VALSET, ACK-ACK, NMEA off; poll gives the model's fix exactly", async () => {
        const r = await rig()
        await r.clock.sleep(5000)
        await r.drv.configure()
        expect(r.drv.ok).toBe(true)
        expect((await r.gnss.state()).outNmea).toBe(false)
        expect((await r.gnss.state()).valsets).toBe(1)
        expect(r.spy.log.indexOf(VALSET_HEX + "/0") >= 0).toBe(true)
        await r.gnss.inputs({ utcMs: BE_UTC, lat: 50.8467512, lon: 4.3524862, heightM: 112.345, fix: true, numSV: 14 })
        const v = await r.drv.poll()
        checkFix(v, 50.8467512, 4.3524862, BE_UTC)
        expect(v.heightMm).toBe(112345)
        expect(v.numSV).toBe(14)
        expect(r.spy.log.indexOf(POLL_HEX + "/0") >= 0).toBe(true)
        expect(r.drv.last).toBe(v)
        // every stream read is at most 64 bytes, after the 0xFF register byte
        for (const h of r.spy.log) {
            if (h.indexOf("ff/") !== 0) continue
            const n = parseInt(h.slice(3))
            if (n > 64 || n < 1) throw new Error("stream read of " + n)
        }
    })

    test("South America with noise, split reads, latency, signed nano and odd chunk sizes", async () => {
        const r = await rig({ latencyMs: 35, signedNano: true, noise: { garbage: 0.7, split: true, seed: 99 } }, { chunk: 7 })
        await r.drv.configure()
        expect(r.drv.ok).toBe(true)
        let lat = -23.5613456
        let lon = -46.6565123
        let utc = SP_UTC - 20 * 997
        for (let i = 0; i < 40; i++) {
            await r.gnss.inputs({ utcMs: utc, lat, lon, fix: true, numSV: 6, speedMps: 3, headingDeg: 200 })
            const v = await r.drv.poll()
            if (!v) throw new Error(`poll ${i}: ${r.drv.lastError}`)
            checkFix(v, lat, lon, utc)
            lat -= 0.0012345
            lon += 0.0009871
            utc += 997
        }
        expect(r.drv.parser.skipped > 100).toBe(true)
        expect(r.drv.parser.badChecksum + r.drv.parser.oversize > 5).toBe(true)
        expect(r.drv.ok).toBe(true)
    })

    test("the fix follows the receiver's clock between setInputs and the poll", async () => {
        const r = await rig()
        await r.drv.configure()
        await r.gnss.inputs({ utcMs: BE_UTC, lat: 51, lon: 4, fix: true, numSV: 9 })
        await r.clock.sleep(12345)
        const v = await r.drv.poll()
        expect(v.utcMs).toBe(BE_UTC + 12345)
        expect(v.utcMs).toBe(await r.gnss.utcNow())
    })

    test("no fix since power-on: position and time refused; after a fix is lost, time stays", async () => {
        const r = await rig()
        await r.drv.configure()
        await r.gnss.inputs({ utcMs: BE_UTC, lat: 50.85, lon: 4.35, fix: false, numSV: 2 })
        let v = await r.drv.poll()
        expect(v.fixType).toBe(0)
        expect(v.gnssFixOK).toBe(false)
        expect(v.validDate).toBe(true) // from the receiver's RTC
        expect(v.fullyResolved).toBe(false)
        expect(positionValid(v)).toBe(false)
        expect(timeValid(v)).toBe(false)
        expect(isNaN(v.utcMs)).toBe(true)
        // no time at all
        await r.gnss.inputs({ utcMs: null })
        v = await r.drv.poll()
        expect(v.validDate || v.validTime).toBe(false)
        expect(timeValid(v)).toBe(false)
        // the first fix
        await r.gnss.inputs({ utcMs: BE_UTC, fix: true, numSV: 8 })
        v = await r.drv.poll()
        checkFix(v, 50.85, 4.35, BE_UTC)
        // fix lost (into a container): time still fully resolved, position refused
        await r.gnss.inputs({ lat: -33, lon: -70, fix: false, numSV: 0 })
        v = await r.drv.poll()
        expect(positionValid(v)).toBe(false)
        expect(timeValid(v)).toBe(true)
        expect(v.lat).toBe(508500000) // the receiver repeats its last fix with fixType 0
    })

    test("standby: PMREQ; asleep the receiver refuses its address, wakes by itself, reconfigures, fixes after a hot start", async () => {
        expect(pmreqFrame(295000).toString("hex")).toBe(PMREQ_HEX)
        const r = await rig()
        await r.drv.configure()
        await r.gnss.inputs({ utcMs: BE_UTC, lat: 50.85, lon: 4.35, fix: true, numSV: 8 })
        const t0 = r.clock.now()
        expect(await r.drv.standby(10000)).toBe(true)
        expect(r.drv.ok).toBe(false) // its RAM configuration will be gone at the wake
        expect((await r.gnss.state()).standbys).toBe(1)
        expect(await r.drv.poll()).toBe(undefined)
        expect((await r.gnss.state()).refusedAsleep > 0).toBe(true)
        expect(r.clock.now() - t0 < 50).toBe(true) // refused at once, no timeout
        await r.clock.sleep(10000 - (r.clock.now() - t0) + 10)
        expect(await r.drv.retryConfigure()).toBe(true)
        expect((await r.gnss.state()).valsets).toBe(2)
        expect((await r.gnss.state()).outNmea).toBe(false)
        // within the hot start: the time, no position yet
        const early = await r.drv.poll()
        expect(timeValid(early)).toBe(true)
        expect(positionValid(early)).toBe(false)
        await r.clock.sleep(1000)
        checkFix(await r.drv.poll(), 50.85, 4.35, await r.gnss.utcNow())
        // a receiver that is not there: the request does not reach it, nothing changes
        await r.gnss.inputs({ fault: "nack" })
        r.drv.ok = true
        expect(await r.drv.standby(10000)).toBe(false)
        expect(r.drv.ok).toBe(true)
        expect(contains(r.drv.lastError, "standby")).toBe(true)
    })

    test("dead receiver (NACK): ok false at once, back-off, recovery", async () => {
        const r = await rig()
        await r.drv.configure()
        await r.gnss.inputs({ utcMs: BE_UTC, lat: 50.85, lon: 4.35, fix: true, numSV: 8 })
        await r.gnss.inputs({ fault: "nack" })
        const t0 = r.clock.now()
        expect(await r.drv.poll()).toBe(undefined)
        expect(r.clock.now() - t0 < 50).toBe(true) // no waiting on a bus that NACKs
        expect(r.drv.ok).toBe(false)
        expect(contains(r.drv.lastError, "no ack")).toBe(true)
        expect(
            contains(
                await errorOf(async () => {
                    await r.drv.configure()
                }),
                "no ack",
            ),
        ).toBe(true)
        expect(await r.drv.retryConfigure()).toBe(false)
        const n = r.spy.n
        expect(await r.drv.retryConfigure()).toBe(false)
        expect(r.spy.n).toBe(n) // too early: no bus traffic
        await r.gnss.inputs({ fault: "none" })
        await r.clock.sleep(1100)
        expect(await r.drv.retryConfigure()).toBe(true)
        checkFix(await r.drv.poll(), 50.85, 4.35, await r.gnss.utcNow())
        expect(r.drv.ok).toBe(true)
    })

    test("bus reads 0xFF everywhere: refused at once, not after a timeout", async () => {
        const r = await rig()
        await r.drv.configure()
        await r.gnss.inputs({ fault: "ff" })
        const t0 = r.clock.now()
        expect(await r.drv.poll()).toBe(undefined)
        expect(r.clock.now() - t0 < 50).toBe(true)
        expect(contains(r.drv.lastError, "0xFFFF")).toBe(true)
        expect(r.drv.ok).toBe(false)
        expect(
            contains(
                await errorOf(async () => {
                    await r.drv.configure()
                }),
                "0xFFFF",
            ),
        ).toBe(true)
    })

    test("silent receiver: poll and configure time out on the device clock", async () => {
        const r = await rig({}, { pollTimeoutMs: 800, ackTimeoutMs: 500 })
        await r.drv.configure()
        await r.gnss.inputs({ fault: "silent" })
        const t0 = r.clock.now()
        expect(await r.drv.poll()).toBe(undefined)
        const dt = r.clock.now() - t0
        expect(dt >= 800).toBe(true)
        expect(dt < 800 + 50).toBe(true)
        expect(contains(r.drv.lastError, "no NAV-PVT")).toBe(true)
        expect(r.drv.ok).toBe(false)
        expect(r.drv.pollFailures).toBe(1)
        expect(
            contains(
                await errorOf(async () => {
                    await r.drv.configure()
                }),
                "no ACK",
            ),
        ).toBe(true)
        expect(await r.drv.retryConfigure()).toBe(false) // fails again, backs off
        await r.gnss.inputs({ fault: "none", utcMs: BE_UTC, lat: 1, lon: 2, fix: true })
        expect(await r.drv.retryConfigure()).toBe(false) // backing off
        await r.clock.sleep(1000)
        expect(await r.drv.retryConfigure()).toBe(true)
        checkFix(await r.drv.poll(), 1, 2, await r.gnss.utcNow())
    })

    test("an M8 answers CFG-VALSET with ACK-NAK: configure says so", async () => {
        const r = await rig({ legacy: true })
        const m = await errorOf(async () => {
            await r.drv.configure()
        })
        expect(contains(m, "ACK-NAK")).toBe(true)
        expect(contains(m, "CFG-VALSET")).toBe(true)
        expect(r.drv.ok).toBe(false)
        // polling still works: the NMEA in the stream is skipped
        await r.clock.sleep(3000)
        await r.gnss.inputs({ utcMs: BE_UTC, lat: 10, lon: -10, fix: true, numSV: 7 })
        checkFix(await r.drv.poll(), 10, -10, BE_UTC)
        expect(r.drv.parser.skipped > 100).toBe(true)
    })

    test("a transfer that throws leaves the driver usable", async () => {
        const r = await rig()
        await r.drv.configure()
        await r.gnss.inputs({ utcMs: BE_UTC, lat: -23.5, lon: -46.6, fix: true, numSV: 6 })
        // each kind of transaction of a poll in turn: count, poll write, stream read
        const steps = ["fd/2", POLL_HEX, "ff/"]
        for (const step of steps) {
            r.spy.throwOn = step
            if (step === "ff/") await r.gnss.inject(bytes(ACK_HEX)) // so the pre-poll drain reads the stream
            expect(await r.drv.poll()).toBe(undefined)
            expect(contains(r.drv.lastError, "I2C bus error")).toBe(true)
            expect(r.spy.throwOn).toBe(undefined)
            expect(r.drv.ok).toBe(false)
            expect(await r.drv.retryConfigure()).toBe(true) // reconfigures at once after a poll failure
            const v = await r.drv.poll() // lock released, receiver still there
            checkFix(v, -23.5, -46.6, await r.gnss.utcNow())
        }
        // configure propagates the error, releases the lock, and works next time
        r.spy.throwOn = VALSET_HEX
        expect(
            contains(
                await errorOf(async () => {
                    await r.drv.configure()
                }),
                "I2C bus error",
            ),
        ).toBe(true)
        expect(r.drv.ok).toBe(false)
        await r.drv.configure()
        expect(r.drv.ok).toBe(true)
    })

    test("a false header with a plausible length before the answer: flushed when the stream idles", async () => {
        const r = await rig({ latencyMs: 10 })
        await r.drv.configure()
        await r.gnss.inputs({ utcMs: BE_UTC, lat: 50.1, lon: 5.2, fix: true, numSV: 9 })
        r.spy.afterWrite = async (tx: Buffer) => {
            if (tx.toString("hex") === POLL_HEX) await r.gnss.inject(bytes("b56201070002")) // 512 bytes
        }
        const t0 = r.clock.now()
        const v = await r.drv.poll()
        checkFix(v, 50.1, 5.2, BE_UTC)
        expect(r.clock.now() - t0 < 200).toBe(true)
    })

    test("an answer later than the timeout is not taken for the next poll's", async () => {
        const r = await rig({ latencyMs: 1500 })
        // the ACK comes 1500 ms late too
        expect(
            contains(
                await errorOf(async () => {
                    await r.drv.configure()
                }),
                "no ACK",
            ),
        ).toBe(true)
        expect(r.drv.ok).toBe(false)
        await r.gnss.latency(0)
        await r.drv.configure()
        await r.gnss.inputs({ utcMs: BE_UTC, lat: 1, lon: 1, fix: true })
        await r.gnss.latency(1500)
        expect(await r.drv.poll()).toBe(undefined)
        await r.gnss.latency(0)
        await r.clock.sleep(1000) // the late answer (time BE_UTC) is now waiting
        await r.gnss.inputs({ utcMs: BE_UTC + 5000, lat: 2, lon: 2 })
        checkFix(await r.drv.poll(), 2, 2, BE_UTC + 5000)
    })

    test("receiver reset (NMEA back on, configuration lost): polls go on, configure restores", async () => {
        const r = await rig()
        await r.drv.configure()
        await r.gnss.inputs({ utcMs: BE_UTC, lat: 50, lon: 4, fix: true, numSV: 10 })
        await r.gnss.powerOn()
        await r.clock.sleep(2500)
        checkFix(await r.drv.poll(), 50, 4, await r.gnss.utcNow())
        expect((await r.gnss.state()).outNmea).toBe(true)
        await r.drv.configure()
        expect((await r.gnss.state()).outNmea).toBe(false)
    })

    test("concurrent polls are serialized by the lock", async () => {
        const r = await rig({ latencyMs: 30 })
        await r.drv.configure()
        await r.gnss.inputs({ utcMs: BE_UTC, lat: 3, lon: 4, fix: true })
        r.spy.log = []
        let other: NavPvt = undefined
        setTimeout(async () => {
            other = await r.drv.poll()
        }, 0)
        const mine = await r.drv.poll()
        while (!other) await ds.sleep(5)
        expect(positionValid(mine) && positionValid(other)).toBe(true)
        // the second poll request is written only after the first answer was read
        let polls = 0
        let open = false
        for (const h of r.spy.log) {
            if (h === POLL_HEX + "/0") {
                expect(open).toBe(false)
                open = true
                polls++
            }
            if (h.indexOf("ff/") === 0) open = false
        }
        expect(polls).toBe(2)
    })

    test("replay: a recorded stream is served one NAV-PVT per poll", async () => {
        const r = await rig()
        await r.drv.configure()
        const capture = [
            [Buffer.from("$GNTXT,01,01,02,capture*00\r\n"), 1],
            [bytes(PVT_BE_HEX), 1],
            [junk(), 1],
            [bytes(ACK_HEX), 1],
            [bytes(PVT_SP_HEX), 1],
            [bytes("b562"), 1],
        ]
        await r.gnss.replay(capture)
        expect((await r.gnss.state()).replayDone).toBe(false)
        let v = await r.drv.poll()
        checkFix(v, 50.8467512, 4.3524862, BE_UTC)
        v = await r.drv.poll()
        checkFix(v, -23.5613456, -46.6565123, SP_UTC)
        expect((await r.gnss.state()).replayDone).toBe(true)
        expect(await r.drv.poll()).toBe(undefined) // the recording is over
        await r.gnss.replay(capture, true)
        expect(positionValid(await r.drv.poll())).toBe(true)
        expect(positionValid(await r.drv.poll())).toBe(true)
        expect((await r.drv.poll()).lat).toBe(508467512) // looped
        await r.gnss.replay(undefined)
        await r.gnss.inputs({ utcMs: 1, lat: 7, lon: 8, fix: true })
        expect((await r.drv.poll()).lat).toBe(70000000)
        expect((await r.gnss.state()).received.length <= 16).toBe(true)
    })

    test("replay: a capture with more before its NAV-PVT than the TX buffer holds", async () => {
        const r = await rig()
        await r.drv.configure()
        const nmea = Buffer.from("$GNTXT,01,01,02,a long preamble that fills the receiver buffer*00\r\n")
        await r.gnss.replay([
            [nmea, 100],
            [bytes(PVT_SP_HEX), 1],
        ])
        checkFix(await r.drv.poll(), -23.5613456, -46.6565123, SP_UTC)
        expect((await r.gnss.state()).dropped).toBe(1)
    })

    test("replay: more than the TX buffer holds AFTER the last NAV-PVT does not cost that NAV-PVT", async () => {
        const r = await rig()
        await r.drv.configure()
        const nmea = Buffer.from("$GNTXT,01,01,02,a long tail after the last solution of the capture*00\r\n")
        await r.gnss.replay([
            [bytes(PVT_BE_HEX), 1],
            [bytes(PVT_SP_HEX), 1],
            [nmea, 100], // ~7 KB: more than the 4 KB TX buffer
        ])
        checkFix(await r.drv.poll(), 50.8467512, 4.3524862, BE_UTC)
        checkFix(await r.drv.poll(), -23.5613456, -46.6565123, SP_UTC)
        expect((await r.gnss.state()).dropped).toBe(0)
        expect(await r.drv.poll()).toBe(undefined) // the tail holds no solution
        expect((await r.gnss.state()).replayDone).toBe(true)
    })
})
