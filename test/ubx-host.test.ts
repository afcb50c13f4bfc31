// Host UBX framing (src/gnss/ubx.ts) against the byte vectors the firmware test uses
// (devs/test/ublox.test.ts). The vectors are written out in both files; the first test checks
// that the two copies are still identical.
import { readFileSync } from "node:fs"
import { describe, expect, test } from "vitest"
import {
    CLS_RXM,
    GPS_EPOCH_MS,
    ID_RXM_PMREQ,
    UBX_MAX_FRAME,
    gpsTimeOfWeekMs,
    navPvtFrame,
    navPvtPayload,
    navPvtPoll,
    navPvtTime,
    parseUbxStream,
    ubxChecksum,
    ubxFrame,
    type NavPvtFields,
} from "../src/gnss/ubx.js"

// ---- shared vectors (identical in devs/test/ublox.test.ts) ---------------------------------------

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
/** RXM-PMREQ version 0: software standby (flags backup | force) for 295 s, no wake-up pin */
const PMREQ_HEX = "b56202411000000000005880040006000000000000003513"
/** NAV-PVT, Brussels, 2024-02-29 (leap day) 13:45:30.250 UTC, 3D fix (fields: BE below) */
const PVT_BE_HEX =
    "b56201075c00da7b8d17e807021d0d2d1e071500000080b2e60e0301e00efe22980238994e1ed9b601008e0001009805" +
    "0000a208000078000000acfeffff0f00000068010000cbaeb901d200000087d6120086000000000000000000000000000000e6ef"
/** NAV-PVT, Sao Paulo, 2024-01-01 00:00:00 with nano -1500000 (= 2023-12-31 23:59:59.9985 UTC), 2D fix */
const PVT_SP_HEX =
    "b56201075c004ea22605e80701010000000730000000a01ce9ff0201e006fdc730e4f0d2f4f1ba990b00ccaf0b00d61f" +
    "0000983a000030f8ffff0000000000000000d007000080a8120120030000a02526001f010000000000000000000000000000c4a6"

const BE_UTC = 1709214330250
const SP_UTC = 1704067199998

const BE: Partial<NavPvtFields> = {
    iTOW: 395148250,
    year: 2024,
    month: 2,
    day: 29,
    hour: 13,
    min: 45,
    sec: 30,
    validDate: true,
    validTime: true,
    fullyResolved: true,
    tAccNs: 21,
    nano: 250000000,
    fixType: 3,
    gnssFixOK: true,
    flags2: 0xe0,
    numSV: 14,
    lon: 43524862,
    lat: 508467512,
    heightMm: 112345,
    hMslMm: 65678,
    hAccMm: 1432,
    vAccMm: 2210,
    velNMmS: 120,
    velEMmS: -340,
    velDMmS: 15,
    gSpeedMmS: 360,
    headMot: 28946123,
    sAccMmS: 210,
    headAcc: 1234567,
    pDOP: 134,
}
const SP: Partial<NavPvtFields> = {
    iTOW: 86417998,
    year: 2024,
    month: 1,
    day: 1,
    hour: 0,
    min: 0,
    sec: 0,
    validDate: true,
    validTime: true,
    fullyResolved: true,
    tAccNs: 48,
    nano: -1500000,
    fixType: 2,
    gnssFixOK: true,
    flags2: 0xe0,
    numSV: 6,
    lon: -466565123,
    lat: -235613456,
    heightMm: 760250,
    hMslMm: 765900,
    hAccMm: 8150,
    vAccMm: 15000,
    velNMmS: -2000,
    velEMmS: 0,
    velDMmS: 0,
    gSpeedMmS: 2000,
    headMot: 18000000,
    sAccMmS: 800,
    headAcc: 2500000,
    pDOP: 287,
}

const hex = (s: string) => Buffer.from(s, "hex")

/** garbage a real stream can hold between frames (the firmware test's junk()) */
const JUNK = Buffer.concat([
    Buffer.from("$GNRMC,134530.00,A,5050.80507,N,00421.14917,E,0.001,,290224,,,A,V*1C\r\n"),
    hex("ffffffff00b5"),
    hex("b562010700ff"),
    hex("b56201070400deadbeef0000"),
    hex("b5b5"),
])

/** string constants of a TypeScript source, `const NAME = "..." + "..."` */
function constants(src: string): Map<string, string> {
    const m = new Map<string, string>()
    for (const d of src.matchAll(/const (\w+_HEX) =((?:\s*"[0-9a-f]*"\s*\+?)+)/g)) {
        m.set(d[1], [...d[2].matchAll(/"([0-9a-f]*)"/g)].map(x => x[1]).join(""))
    }
    return m
}

describe("shared vectors", () => {
    test("devs/test/ublox.test.ts has the same byte vectors", () => {
        const fw = constants(readFileSync(new URL("../devs/test/ublox.test.ts", import.meta.url), "utf8"))
        const mine = { POLL_HEX, ACK_HEX, NAK_HEX, VALSET_HEX, PMREQ_HEX, PVT_BE_HEX, PVT_SP_HEX }
        for (const [k, v] of Object.entries(mine)) expect(fw.get(k), k).toBe(v)
        expect(fw.size).toBe(Object.keys(mine).length)
    })
})

describe("framing", () => {
    test("poll, ACK, NAK", () => {
        expect(navPvtPoll().toString("hex")).toBe(POLL_HEX)
        expect(ubxFrame(0x01, 0x07).toString("hex")).toBe(POLL_HEX)
        expect(ubxFrame(0x05, 0x01, hex("068a")).toString("hex")).toBe(ACK_HEX)
        expect(ubxFrame(0x05, 0x00, hex("068a")).toString("hex")).toBe(NAK_HEX)
        expect(ubxChecksum(hex(POLL_HEX), 2, 6)).toBe(0x1908)
    })

    test("the firmware's RXM-PMREQ, rebuilt from the interface description's fields", () => {
        const p = Buffer.alloc(16) // version 0, 3 reserved
        p.writeUInt32LE(295_000, 4) // duration, ms
        p.writeUInt32LE(0x02 | 0x04, 8) // flags: backup, force
        p.writeUInt32LE(0, 12) // wakeupSources: none (the duration ends it)
        expect(ubxFrame(CLS_RXM, ID_RXM_PMREQ, p).toString("hex")).toBe(PMREQ_HEX)
    })

    test("the firmware's CFG-VALSET, rebuilt from its documented keys", () => {
        const p = Buffer.alloc(4 + 4 * 5)
        p.writeUInt8(0, 0) // version 0: no transaction
        p.writeUInt8(0x01, 1) // layers: RAM
        const kv: [number, number][] = [
            [0x10710001, 1], // CFG-I2CINPROT-UBX
            [0x10720001, 1], // CFG-I2COUTPROT-UBX
            [0x10720002, 0], // CFG-I2COUTPROT-NMEA
            [0x20910006, 0], // CFG-MSGOUT-UBX_NAV_PVT_I2C
        ]
        kv.forEach(([k, v], i) => {
            p.writeUInt32LE(k, 4 + 5 * i)
            p.writeUInt8(v, 8 + 5 * i)
        })
        expect(ubxFrame(0x06, 0x8a, p).toString("hex")).toBe(VALSET_HEX)
    })

    test("NAV-PVT payloads from fields are the vector bytes", () => {
        expect(navPvtFrame(BE).toString("hex")).toBe(PVT_BE_HEX)
        expect(navPvtFrame(SP).toString("hex")).toBe(PVT_SP_HEX)
        const p = navPvtPayload(SP)
        expect(p.length).toBe(92)
        expect(p.readInt32LE(28)).toBe(-235613456) // lat
        expect(p.readInt32LE(24)).toBe(-466565123) // lon
        expect(p.readInt32LE(16)).toBe(-1500000) // nano
    })

    test("defaults are 'no fix, no time'", () => {
        const p = navPvtPayload()
        expect(p[11]).toBe(0) // valid
        expect(p[20]).toBe(0) // fixType
        expect(p[21]).toBe(0) // flags
        expect(p.readUInt16LE(4)).toBe(1980)
    })

    test("out-of-range values are refused", () => {
        expect(() => navPvtPayload({ lat: 2 ** 31 })).toThrow(RangeError)
        expect(() => navPvtPayload({ month: 256 })).toThrow(RangeError)
        expect(() => ubxFrame(1, 2, Buffer.alloc(70000))).toThrow(RangeError)
    })
})

describe("time fields", () => {
    test("navPvtTime gives the vectors' time fields", () => {
        const t = navPvtTime(BE_UTC)
        expect(t).toEqual({
            iTOW: 395148250,
            year: 2024,
            month: 2,
            day: 29,
            hour: 13,
            min: 45,
            sec: 30,
            nano: 250000000,
            validDate: true,
            validTime: true,
            fullyResolved: true,
        })
        expect(navPvtFrame({ ...BE, ...t }).toString("hex")).toBe(PVT_BE_HEX)
        expect(gpsTimeOfWeekMs(SP_UTC)).toBe(86417998)
    })

    test("signed nano near a second boundary, across the year end", () => {
        const t = navPvtTime(SP_UTC, { signedNano: true })
        expect([t.year, t.month, t.day, t.hour, t.min, t.sec, t.nano]).toEqual([2024, 1, 1, 0, 0, 0, -2000000])
        const u = navPvtTime(SP_UTC)
        expect([u.year, u.month, u.day, u.hour, u.min, u.sec, u.nano]).toEqual([2023, 12, 31, 23, 59, 59, 998000000])
        expect(navPvtTime(GPS_EPOCH_MS).iTOW).toBe(18000)
        expect(() => navPvtTime(1.5)).toThrow(RangeError)
    })
})

describe("parseUbxStream", () => {
    const stream = Buffer.concat([JUNK, hex(PVT_BE_HEX), JUNK, hex(ACK_HEX), JUNK, hex(PVT_SP_HEX), JUNK])

    test("frames with garbage between them, same counts as the firmware parser", () => {
        const r = parseUbxStream(stream)
        expect(r.frames.map(f => [f.cls, f.id])).toEqual([
            [1, 7],
            [5, 1],
            [1, 7],
        ])
        expect(r.frames[0].payload.toString("hex")).toBe(PVT_BE_HEX.slice(12, -4))
        expect(r.frames[2].payload.toString("hex")).toBe(PVT_SP_HEX.slice(12, -4))
        expect(r.frames[0].offset).toBe(JUNK.length)
        expect(r.oversize).toBe(4)
        expect(r.badChecksum).toBe(4)
        expect(r.rest.toString("hex")).toBe("b5")
        expect(r.skipped + r.rest.length + 210).toBe(stream.length)
        const f = parseUbxStream(stream, { final: true })
        expect(f.rest.length).toBe(0)
        expect(f.frames.length).toBe(3)
    })

    test("split at every byte boundary: rest carries the partial frame", () => {
        const s = Buffer.concat([hex(PVT_BE_HEX), JUNK, hex(ACK_HEX), hex(PVT_SP_HEX)])
        for (let k = 1; k < s.length; k++) {
            const a = parseUbxStream(s.subarray(0, k))
            const b = parseUbxStream(Buffer.concat([a.rest, s.subarray(k)]))
            const got = [...a.frames, ...b.frames].map(f => f.payload.length)
            expect(got, `split at ${k}`).toEqual([92, 2, 92])
            expect(b.rest.length).toBe(0)
        }
    })

    test("a bad checksum drops the frame; a frame inside a false candidate is found", () => {
        const bad = hex(PVT_BE_HEX)
        bad[30] ^= 1
        const r = parseUbxStream(Buffer.concat([bad, hex(PVT_SP_HEX)]))
        expect(r.frames.length).toBe(1)
        expect(r.frames[0].payload.readInt32LE(28)).toBe(-235613456)
        expect(r.badChecksum).toBe(1)
        // a false header claiming 768 bytes with a real frame inside, then enough bytes
        const lie = Buffer.concat([hex("b56201070003"), hex(PVT_BE_HEX), Buffer.alloc(700)])
        const l = parseUbxStream(lie)
        expect(l.frames.map(f => f.offset)).toEqual([6])
        expect(l.badChecksum).toBe(1)
    })

    test("a bogus huge length does not hold anything back", () => {
        const r = parseUbxStream(Buffer.concat([hex("b5620107ffff"), hex(ACK_HEX)]))
        expect(r.frames.length).toBe(1)
        expect(r.oversize).toBe(1)
        expect(r.rest.length).toBe(0)
        const big = ubxFrame(0x0a, 0x04, Buffer.alloc(UBX_MAX_FRAME)) // over the limit: refused
        expect(parseUbxStream(big).frames.length).toBe(0)
        expect(parseUbxStream(big, { maxFrame: 2048 }).frames.length).toBe(1)
    })

    test("a capture written with the host framing round-trips", () => {
        const frames: Buffer[] = []
        for (let i = 0; i < 50; i++) {
            const utc = BE_UTC + i * 1000
            frames.push(Buffer.from(`$GNTXT,01,01,02,epoch ${i}*00\r\n`))
            frames.push(navPvtFrame({ ...navPvtTime(utc), fixType: 3, gnssFixOK: true, lat: 508467512 - i, lon: 43524862 + i }))
        }
        const r = parseUbxStream(Buffer.concat(frames), { final: true })
        expect(r.frames.length).toBe(50)
        expect(r.frames[49].payload.readInt32LE(24)).toBe(43524862 + 49)
        expect(r.badChecksum + r.oversize).toBe(0)
    })
})
