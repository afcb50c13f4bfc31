// The chip models that run on the host (src/sim/models), at the register level, and the bus
// they sit on. Host-only: no VM. The firmware's drivers are tested against the same models in the
// VM over the bus bridge (devs/test/rv3028.test.ts, notecard.test.ts, cellular.test.ts,
// ublox.test.ts, max31856.test.ts); this pins
// the models' own behaviour.
import { describe, expect, test } from "vitest"
import { ChipBus, answerBus } from "../src/sim/models/bus.js"
import {
    CONTROL2_EIE,
    CONTROL2_TSE,
    EVENT_EHL,
    Rv3028Chip,
    RV3028_ADDR,
    STATUS_BSF,
    STATUS_EVF,
    STATUS_PORF,
} from "../src/sim/models/rv3028.js"
import { aloneChips, RIG_ADDR } from "../src/sim/models/alone.js"
import { NotecardChip } from "../src/sim/models/notecard.js"
import { HOT_START_MS, UbloxChip } from "../src/sim/models/ublox.js"
import { DRDY_TAIL, Max31856Chip, encodeCj, encodeTc } from "../src/sim/models/max31856.js"
import { CLS_ACK, CLS_CFG, CLS_RXM, ID_ACK_ACK, ID_ACK_NAK, ID_CFG_VALSET, ID_RXM_PMREQ, navPvtPoll, ubxFrame } from "../src/gnss/ubx.js"

const T0 = Date.UTC(2026, 0, 1)
const REG_STATUS = 0x0e
const REG_UNIX = 0x1b
const REG_RAM = 0x1f
const REG_EECMD = 0x27
const REG_ID = 0x28
const REG_EE_BACKUP = 0x37
const u32le = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24]
const REG_CONTROL2 = 0x10
const REG_EVENT = 0x13
const REG_COUNT_TS = 0x14
const EVENT_TSR = 0x04
const EVENT_TSOW = 0x02

describe("RV-3028 model (Application Manual rev 1.4)", () => {
    test("a factory-new chip: PORF set, counting from 0, ID 0x30", () => {
        const c = new Rv3028Chip(T0)
        expect(c.xfer(Buffer.from([REG_STATUS]), 1, T0)[0] & STATUS_PORF).toBe(STATUS_PORF)
        expect(c.xfer(Buffer.from([REG_UNIX]), 4, T0 + 2500).readUInt32LE(0)).toBe(2)
        expect(c.xfer(Buffer.from([REG_ID]), 1, T0)[0]).toBe(0x30)
    })

    test("the UNIX counter loads when all four bytes are written, and runs ppb fast", () => {
        const c = new Rv3028Chip(T0, { driftPpm: 500 })
        c.xfer(Buffer.from([REG_UNIX, 0x10, 0x20]), 0, T0) // two bytes only: not loaded
        expect(c.base).toBe(0)
        c.xfer(Buffer.from([REG_UNIX, ...u32le(1_000_000)]), 0, T0)
        expect(c.counterAt(T0)).toBe(1_000_000)
        // an hour at +500 ppm: 3601.8 s
        expect(c.xfer(Buffer.from([REG_UNIX]), 4, T0 + 3_600_000).readUInt32LE(0)).toBe(1_003_601)
    })

    test("the register pointer auto-increments across a burst (status, control 1, then on)", () => {
        const c = new Rv3028Chip(T0)
        c.xfer(Buffer.from([REG_RAM, 0xef, 0xbe]), 0, T0)
        expect(c.ram).toBe(0xbeef)
        const rx = c.xfer(Buffer.from([REG_RAM]), 2, T0)
        expect([...rx]).toEqual([0xef, 0xbe])
    })

    test("status flags clear on 0 and keep on 1", () => {
        const c = new Rv3028Chip(T0)
        c.powerOn(T0, false)
        expect(c.status).toBe(STATUS_PORF | STATUS_BSF)
        c.xfer(Buffer.from([REG_STATUS, 0xff & ~STATUS_BSF]), 0, T0)
        expect(c.status).toBe(STATUS_PORF)
    })

    test("the EEPROM backup register: writes reach the mirror; the update command copies it, busy 10 ms", () => {
        const c = new Rv3028Chip(T0)
        c.xfer(Buffer.from([REG_EE_BACKUP, 0x3f]), 0, T0)
        expect([c.mirror, c.ee, c.eeUpdates]).toEqual([0x3f, 0, 0])
        c.xfer(Buffer.from([REG_EECMD, 0x11]), 0, T0)
        expect([c.ee, c.eeUpdates]).toEqual([0x3f, 1])
        expect(c.xfer(Buffer.from([REG_STATUS]), 1, T0 + 9)[0] & 0x80).toBe(0x80)
        expect(c.xfer(Buffer.from([REG_STATUS]), 1, T0 + 10)[0] & 0x80).toBe(0)
    })

    test("power back without the backup supply: the chip starts over, its EEPROM reloaded", () => {
        const c = new Rv3028Chip(T0)
        c.xfer(Buffer.from([REG_UNIX, ...u32le(5000)]), 0, T0)
        c.xfer(Buffer.from([REG_EE_BACKUP, 0x3f]), 0, T0)
        c.xfer(Buffer.from([REG_EECMD, 0x11]), 0, T0)
        c.xfer(Buffer.from([REG_EE_BACKUP, 0x00, 0]), 0, T0) // the mirror changed, EEPROM not
        c.powerOn(T0 + 60_000, true)
        expect(c.status).toBe(STATUS_PORF)
        expect(c.counterAt(T0 + 60_000)).toBe(0)
        expect(c.mirror).toBe(0x3f)
    })
})

describe("RV-3028 model: calendar and the event input's time stamp (the lid)", () => {
    const bcd = (v: number) => (v >> 4) * 10 + (v & 15)
    /** a chip whose event input sees the lid open at +10 s and close at +40 s, and again +100..+101 s */
    function lidChip(): Rv3028Chip {
        const c = new Rv3028Chip(T0)
        c.lidEdges = [10_000, 40_000, 100_000, 101_000].map(ms => T0 + ms)
        return c
    }
    const stamp = (c: Rv3028Chip, utc: number) => {
        const b = c.xfer(Buffer.from([REG_COUNT_TS]), 7, utc)
        return { count: b[0], s: bcd(b[1]), m: bcd(b[2]), h: bcd(b[3]), date: bcd(b[4]), month: bcd(b[5]), year: bcd(b[6]) }
    }

    test("the calendar starts at 2000-01-01 00:00:00 (a Saturday) at a power-on reset and ticks with the UNIX counter", () => {
        const c = new Rv3028Chip(T0)
        // seconds, minutes, hours, weekday, date, month, year (BCD)
        expect([...c.xfer(Buffer.from([0x00]), 7, T0)]).toEqual([0, 0, 0, 6, 1, 1, 0])
        // 59 days, 1 h, 2 min, 3 s later: 2000-02-29 (a leap year), a Tuesday
        const later = T0 + ((59 * 24 + 1) * 3600 + 2 * 60 + 3) * 1000
        expect([...c.xfer(Buffer.from([0x00]), 7, later)].map(bcd)).toEqual([3, 2, 1, 2, 29, 2, 0])
        // writing the UNIX counter leaves the calendar running
        c.xfer(Buffer.from([REG_UNIX, ...u32le(1_767_225_600)]), 0, later)
        expect(c.calendarAt(later + 5000) - c.calendarAt(later)).toBe(5)
        expect([...c.xfer(Buffer.from([0x00]), 7, later)].map(bcd)).toEqual([3, 2, 1, 2, 29, 2, 0])
    })

    test("nothing is stamped until the time stamp is enabled (TSE)", () => {
        const c = lidChip()
        expect(stamp(c, T0 + 60_000).count).toBe(0)
        expect(c.status & STATUS_EVF).toBe(0)
    })

    test("armed for the rising edge (EHL): openings counted, the first one stamped, EVF set; TSR resets", () => {
        const c = lidChip()
        c.xfer(Buffer.from([REG_EVENT, EVENT_EHL | EVENT_TSR]), 0, T0)
        c.xfer(Buffer.from([REG_CONTROL2, CONTROL2_TSE]), 0, T0)
        expect(stamp(c, T0 + 200_000)).toEqual({ count: 2, s: 10, m: 0, h: 0, date: 1, month: 1, year: 0 })
        expect(c.status & STATUS_EVF).toBe(STATUS_EVF)
        // TSOW: the last one overwrites
        const d = lidChip()
        d.xfer(Buffer.from([REG_EVENT, EVENT_EHL | EVENT_TSOW]), 0, T0)
        d.xfer(Buffer.from([REG_CONTROL2, CONTROL2_TSE]), 0, T0)
        expect(stamp(d, T0 + 200_000)).toMatchObject({ count: 2, s: 40, m: 1 })
        // reset: count and stamp 0; TSR reads back 0
        c.xfer(Buffer.from([REG_EVENT, EVENT_EHL | EVENT_TSR]), 0, T0 + 200_000)
        expect(stamp(c, T0 + 200_000).count).toBe(0)
        expect(c.xfer(Buffer.from([REG_EVENT]), 1, T0 + 200_000)[0]).toBe(EVENT_EHL)
    })

    test("armed for the falling edge: closings", () => {
        const c = lidChip()
        c.xfer(Buffer.from([REG_EVENT, 0]), 0, T0)
        c.xfer(Buffer.from([REG_CONTROL2, CONTROL2_TSE]), 0, T0)
        expect(stamp(c, T0 + 60_000)).toMatchObject({ count: 1, s: 40 })
    })

    test("INT (EIE) ends a sleep at the next armed edge, or at once with EVF already set; without EIE never", () => {
        const c = lidChip()
        c.xfer(Buffer.from([REG_EVENT, EVENT_EHL | EVENT_TSR]), 0, T0)
        c.xfer(Buffer.from([REG_CONTROL2, CONTROL2_TSE]), 0, T0)
        expect(c.nextInterrupt(T0, T0 + 300_000)).toBeNull()
        c.xfer(Buffer.from([REG_CONTROL2, CONTROL2_TSE | CONTROL2_EIE]), 0, T0)
        expect(c.nextInterrupt(T0, T0 + 300_000)).toBe(T0 + 10_000)
        expect(c.nextInterrupt(T0, T0 + 5_000)).toBeNull()
        // the look-ahead changed nothing: the edge is counted when time gets there
        expect(stamp(c, T0 + 5_000).count).toBe(0)
        expect(stamp(c, T0 + 20_000).count).toBe(1)
        expect(c.nextInterrupt(T0 + 20_000, T0 + 300_000)).toBe(T0 + 20_000)
    })

    test("a power cut unpowers the Hall switch: an open lid falls at the cut and rises at the power-on", () => {
        const c = lidChip()
        c.xfer(Buffer.from([REG_EVENT, 0]), 0, T0) // closings
        c.xfer(Buffer.from([REG_CONTROL2, CONTROL2_TSE]), 0, T0)
        c.powerOff(T0 + 20_000) // open since +10 s
        expect(stamp(c, T0 + 20_000)).toMatchObject({ count: 1, s: 20 })
        c.xfer(Buffer.from([REG_EVENT, EVENT_EHL | EVENT_TSR]), 0, T0 + 20_000) // openings
        // the lid closes at +40 s and opens at +100 s while the power is off: not seen
        c.powerOn(T0 + 100_500, false)
        // open at the power-on: a rising edge then
        expect(stamp(c, T0 + 100_500)).toMatchObject({ count: 1, s: 40, m: 1 })
        // the RTC lost its backup too: everything reset, nothing armed
        const d = lidChip()
        d.xfer(Buffer.from([REG_CONTROL2, CONTROL2_TSE]), 0, T0)
        d.powerOff(T0 + 1000)
        d.powerOn(T0 + 20_000, true)
        expect(d.xfer(Buffer.from([REG_CONTROL2]), 1, T0 + 20_000)[0]).toBe(0)
        expect(stamp(d, T0 + 200_000).count).toBe(0)
    })
})

describe("the host's chip bus", () => {
    test("routes by address; nobody at an address is a NACK", async () => {
        const bus = new ChipBus()
        bus.attach(RV3028_ADDR, new Rv3028Chip(T0))
        expect(await answerBus(bus, { seq: 7, addr: RV3028_ADDR, rx: 1, tx: "28", at: T0 })).toEqual({ seq: 7, status: 0, data: "30" })
        expect(await answerBus(bus, { seq: 8, addr: 0x53, rx: 1, tx: "28", at: T0 })).toEqual({ seq: 8, status: 1, data: "" })
    })

    test("a model that answers the wrong length is a harness bug, reported; the bus goes on", async () => {
        const bus = new ChipBus()
        bus.attach(0x10, { xfer: () => Buffer.alloc(1) })
        await expect(bus.transfer(0x10, Buffer.alloc(0), 2, T0)).rejects.toThrow(/answered 1 bytes, not 2/)
        expect(await bus.transfer(0x10, Buffer.alloc(0), 1, T0)).toHaveLength(1)
    })

    test("transactions run one at a time, in the order they came", async () => {
        const bus = new ChipBus()
        const seen: string[] = []
        bus.attach(0x10, {
            xfer: async tx => {
                seen.push(`start ${tx[0]}`)
                await new Promise(r => setTimeout(r, tx[0] === 1 ? 20 : 0))
                seen.push(`end ${tx[0]}`)
                return Buffer.alloc(0)
            },
        })
        await Promise.all([bus.transfer(0x10, Buffer.from([1]), 0, T0), bus.transfer(0x10, Buffer.from([2]), 0, T0)])
        expect(seen).toEqual(["start 1", "end 1", "start 2", "end 2"])
    })

    test("alone (unit tests): a factory-new clock, steered and read through the rig", async () => {
        const chips = aloneChips()
        const rig = async (c: unknown, at = T0) => {
            const tx = Buffer.from(JSON.stringify(c)).toString("hex")
            const r = await chips.answer({ seq: 1, addr: RIG_ADDR, rx: 200, tx, at })
            const b = Buffer.from(r.data, "hex")
            return JSON.parse(b.subarray(2, 2 + b.readUInt16LE(0)).toString())
        }
        expect((await rig({ get: "rtc" })).status & STATUS_PORF).toBe(STATUS_PORF)
        await rig({ rtc: { base: 100, status: 0 } })
        expect(await rig({ get: "rtc" }, T0 + 3000)).toMatchObject({ base: 100, status: 0, counter: 103 })
        await rig({ rtcPowerOn: true }, T0 + 4000)
        expect(await rig({ get: "rtc" }, T0 + 4000)).toMatchObject({ status: STATUS_PORF, counter: 0 })
        await expect(rig({ nonsense: 1 })).rejects.toThrow(/unknown command/)
    })
})

/** a request line written as the driver does: [len][bytes] chunks, "\n" at the end */
function writeLine(card: NotecardChip, text: string, at: number) {
    const line = Buffer.from(text + "\n")
    const out: Promise<unknown>[] = []
    for (let off = 0; off < line.length; off += 30) {
        const part = line.subarray(off, off + 30)
        out.push(card.xfer(Buffer.concat([Buffer.from([part.length]), part]), 0, at))
    }
    return Promise.all(out)
}

/** the whole reply readable at `at`, as the driver reads it: ask, then read what is there */
async function readReply(card: NotecardChip, at: number): Promise<string> {
    const n = (await card.xfer(Buffer.from([0, 0]), 2, at))![0]
    const rx = (await card.xfer(Buffer.from([0, n]), n + 2, at))!
    return rx.subarray(2, 2 + rx[1]).toString()
}

describe("Notecard model (serial-over-I2C, Notecard API)", () => {
    test("read format: [available][n][data], n bounded by the request and what is there", async () => {
        const card = new NotecardChip(T0, { replyDelayMs: 0 })
        await card.xfer(Buffer.from("010a", "hex"), 0, T0) // a bare "\n": note-c's resync
        expect((await card.xfer(Buffer.from("0000", "hex"), 2, T0))!.toString("hex")).toBe("0200")
        // asks for 5, 2 there: zero-padded to the length read
        expect((await card.xfer(Buffer.from("0005", "hex"), 7, T0))!.toString("hex")).toBe("00020d0a000000")
        // a write-only [0][n], then a read-only xfer
        await card.xfer(Buffer.from("010a", "hex"), 0, T0)
        await card.xfer(Buffer.from("0001", "hex"), 0, T0)
        expect((await card.xfer(Buffer.alloc(0), 3, T0))!.toString("hex")).toBe("01010d")
        expect(card.violations).toEqual([])
    })

    test("a reply is readable replyDelayMs after its line ended", async () => {
        const card = new NotecardChip(T0, { replyDelayMs: 600 })
        card.setInputs({ utcMs: T0 }, T0)
        await writeLine(card, '{"req":"card.time"}', T0)
        expect((await card.xfer(Buffer.from([0, 0]), 2, T0 + 599))![0]).toBe(0)
        expect(JSON.parse(await readReply(card, T0 + 600))).toMatchObject({ time: T0 / 1000 + 0 })
    })

    test("protocol violations are recorded: a host that does not pause, a chunk header that lies", async () => {
        const card = new NotecardChip(T0)
        const chunk = Buffer.concat([Buffer.from([30]), Buffer.alloc(30, 0x20)])
        for (let i = 0; i < 20; i++) await card.xfer(chunk, 0, T0)
        expect(card.violations).toHaveLength(1)
        expect(card.violations[0]).toMatch(/segment overrun/)
        await card.xfer(Buffer.from("0561", "hex"), 0, T0 + 1000)
        expect(card.violations[1]).toMatch(/header says 5/)
        await card.xfer(Buffer.alloc(0), 2, T0 + 2000)
        expect(card.violations[2]).toMatch(/read without/)
    })

    test("faults: nack refuses, bus_ff reads 0xFF, hang never answers", async () => {
        const card = new NotecardChip(T0, { replyDelayMs: 0 })
        card.setInputs({ fault: "nack" }, T0)
        expect(await card.xfer(Buffer.from([0, 0]), 2, T0)).toBeUndefined()
        card.setInputs({ fault: "bus_ff" }, T0)
        expect((await card.xfer(Buffer.from([0, 0]), 2, T0))!.toString("hex")).toBe("ffff")
        card.setInputs({ fault: "hang" }, T0)
        await writeLine(card, '{"req":"card.status"}', T0)
        expect((await card.xfer(Buffer.from([0, 0]), 2, T0 + 5000))!.toString("hex")).toBe("0000")
    })

    test("requests: malformed lines, unknown requests, a body with a `payload` key of its own", async () => {
        const card = new NotecardChip(T0, { replyDelayMs: 0 })
        await writeLine(card, '{"req":"card.time"', T0)
        expect(JSON.parse(await readReply(card, T0)).err).toMatch(/malformed/)
        await writeLine(card, '{"req":"card.nothing"}', T0)
        expect(JSON.parse(await readReply(card, T0)).err).toBe("unknown request")
        const pad = "x".repeat(1200)
        await writeLine(card, JSON.stringify({ req: "note.add", file: "x.qo", body: { payload: "QUJD", pad }, payload: "aGVsbG8=" }), T0)
        expect(JSON.parse(await readReply(card, T0))).toEqual({ total: 1 })
        expect(card.queued[0]).toMatchObject({ body: { payload: "QUJD", pad }, payload: "aGVsbG8=" })
        await writeLine(card, JSON.stringify({ req: "note.add", file: "x.qo", payload: "not base64!" }), T0)
        expect(JSON.parse(await readReply(card, T0)).err).toMatch(/base64/)
    })

    test("a sync with the cloud: notes up, inbound down; a failed one puts the notes back and says why", async () => {
        const card = new NotecardChip(T0, { replyDelayMs: 0, syncMs: 1000 })
        let fail = true
        const up: string[] = []
        card.cloud = {
            exchange: async (_sn, notes) => {
                if (fail) throw new Error("hub down")
                up.push(...notes.map(n => n.payload))
                return [{ file: "ack.qi", payload: "QUJD" }]
            },
        }
        card.setInputs({ connected: true, utcMs: T0 }, T0)
        await writeLine(card, JSON.stringify({ req: "hub.set", product: "p" }), T0)
        await writeLine(card, JSON.stringify({ req: "note.add", file: "b.qo", payload: "aGVsbG8=", sync: true }), T0)
        await card.xfer(Buffer.from([0, 0]), 2, T0 + 1000) // the exchange runs inside a transaction
        expect(card.syncErr).toMatch(/hub down/)
        expect(card.queued).toHaveLength(1)
        fail = false
        await writeLine(card, JSON.stringify({ req: "hub.sync" }), T0 + 2000)
        await card.xfer(Buffer.from([0, 0]), 2, T0 + 3000)
        expect(up).toEqual(["aGVsbG8="])
        expect(card.queued).toHaveLength(0)
        expect(card.inboundNotes).toEqual([{ file: "ack.qi", payload: "QUJD" }])
        expect(card.syncErr).toBe("")
    })
})

describe("u-blox receiver model (DDC port)", () => {
    const ACK_VALSET = ubxFrame(CLS_ACK, ID_ACK_ACK, Buffer.from([CLS_CFG, ID_CFG_VALSET]))
    const NAK_VALSET = ubxFrame(CLS_ACK, ID_ACK_NAK, Buffer.from([CLS_CFG, ID_CFG_VALSET]))
    /** CFG-VALSET, RAM: I2C in UBX on, out UBX on, out NMEA off, periodic NAV-PVT off */
    const valset = (keys: [number, number, number][]) => {
        const parts = [Buffer.from([0, 1, 0, 0])]
        for (const [key, size, v] of keys) {
            const b = Buffer.alloc(4 + size)
            b.writeUInt32LE(key, 0)
            b.writeUIntLE(v, 4, size)
            parts.push(b)
        }
        return ubxFrame(CLS_CFG, ID_CFG_VALSET, Buffer.concat(parts))
    }
    const CONFIGURE = valset([
        [0x10710001, 1, 1],
        [0x10720001, 1, 1],
        [0x10720002, 1, 0],
        [0x20910006, 1, 0],
    ])

    test("byte count big-endian, pointer auto-increment, the stream reads 0xFF when empty", () => {
        const g = new UbloxChip(T0)
        g.xfer(Buffer.from([0xff]), g.waiting(T0), T0) // drain the boot TXT lines
        g.inject(Buffer.alloc(300))
        expect(g.xfer(Buffer.from([0xfd]), 2, T0)!.toString("hex")).toBe("012c")
        g.inject(ACK_VALSET)
        // one read from 0xFD: count (310 = 0x0136), then the stream; the pointer stays at 0xFF
        expect(g.xfer(Buffer.from([0xfd]), 4, T0)!.toString("hex")).toBe("01360000")
        expect(g.xfer(Buffer.alloc(0), 298, T0)![297]).toBe(0)
        expect(g.xfer(Buffer.alloc(0), 12, T0)!.toString("hex")).toBe(ACK_VALSET.toString("hex") + "ffff")
        expect(g.xfer(Buffer.from([0xfe]), 3, T0)!.toString("hex")).toBe("00ffff")
    })

    test("NMEA after power-on until configured; VALSET ACK; poll answered; an unknown key NAK", () => {
        const g = new UbloxChip(T0)
        const n = g.waiting(T0 + 3000)
        expect(n).toBeGreaterThan(100)
        expect(g.xfer(Buffer.from([0xff]), n, T0 + 3000)!.toString()).toContain("$GNRMC")
        g.xfer(CONFIGURE, 0, T0 + 3000)
        expect(g.xfer(Buffer.from([0xff]), g.waiting(T0 + 3000), T0 + 3000)).toEqual(ACK_VALSET)
        expect(g.outNmea).toBe(false)
        expect(g.waiting(T0 + 10_000)).toBe(0)
        g.xfer(navPvtPoll(), 0, T0 + 10_000)
        expect(g.waiting(T0 + 10_000)).toBe(100)
        g.xfer(Buffer.from([0xff]), 100, T0 + 10_000)
        g.xfer(valset([[0x40520001, 4, 9600]]), 0, T0 + 10_000) // UART1 baud rate: not modelled
        expect(g.xfer(Buffer.from([0xff]), g.waiting(T0 + 10_000), T0 + 10_000)).toEqual(NAK_VALSET)
        expect(g.received.join(",")).toBe("068a,0107,068a")
    })

    test("NAV-PVT from inputs: units, velocity from heading, the position moving on, no leak before a fix", () => {
        const g = new UbloxChip(T0)
        g.setInputs({ lat: -12.5, lon: 130.8, fix: false, numSV: 1 }, T0)
        let p = g.navPvt()
        expect([p.readInt32LE(28), p.readInt32LE(24)]).toEqual([0, 0]) // never had a fix: nothing to repeat
        const BE_UTC = 1709214330250
        g.setInputs({ utcMs: BE_UTC, fix: true, numSV: 11, heightM: -12.3456, speedMps: 10, headingDeg: 90, latRate: 0.001 }, T0)
        p = g.navPvt()
        expect(p.readInt32LE(28)).toBe(-125000000) // lat
        expect(p.readInt32LE(24)).toBe(1308000000) // lon
        expect(p.readInt32LE(32)).toBe(-12346) // height, mm
        expect(p.readInt32LE(48)).toBe(0) // velN
        expect(p.readInt32LE(52)).toBe(10000) // velE
        expect(p.readInt32LE(60)).toBe(10000) // gSpeed
        expect(p.readInt32LE(64)).toBe(9000000) // headMot
        expect(p.readUInt32LE(0)).toBe(395148250) // iTOW
        expect([p.readUInt16LE(4), p[6], p[7], p[8], p[9], p[10], p.readInt32LE(16)]).toEqual([2024, 2, 29, 13, 45, 30, 250_000_000])
        g.xfer(Buffer.alloc(0), 0, T0 + 2000) // two seconds later, at 0.001 deg/s
        p = g.navPvt()
        expect(p.readInt32LE(28)).toBe(-124980000)
        expect(p.readUInt32LE(0)).toBe(395150250)
    })

    test("the TX buffer is bounded: whole messages are dropped", () => {
        const g = new UbloxChip(T0)
        for (let i = 1; i <= 100; i++) g.waiting(T0 + i * 1000)
        expect(g.waiting(T0 + 100_000)).toBeLessThanOrEqual(4096)
        expect(g.dropped).toBeGreaterThan(0)
    })

    test("software standby (RXM-PMREQ): refuses its address, wakes after the duration at its defaults, fix after the hot start", () => {
        const pmreq = (ms: number, flags: number, legacy = false) => {
            const p = Buffer.alloc(legacy ? 8 : 16)
            p.writeUInt32LE(ms, legacy ? 0 : 4)
            p.writeUInt32LE(flags, legacy ? 4 : 8)
            return ubxFrame(CLS_RXM, ID_RXM_PMREQ, p)
        }
        const g = new UbloxChip(T0)
        const windows: [number, number][] = []
        g.onStandby = (from, until) => windows.push([from, until])
        g.setInputs({ utcMs: T0, lat: 10, lon: 20, fix: true, numSV: 9 }, T0)
        g.xfer(CONFIGURE, 0, T0)
        g.xfer(pmreq(60_000, 0x04), 0, T0) // force without backup: not a standby request
        expect(g.standbyUntil).toBeNull()
        g.xfer(pmreq(60_000, 0x06), 0, T0 + 1000)
        expect(windows).toEqual([[T0 + 1000, T0 + 61_000]])
        expect(g.xfer(Buffer.from([0xfd]), 2, T0 + 60_999)).toBeUndefined()
        expect(g.refusedAsleep).toBe(1)
        // awake again: NMEA is on (RAM configuration lost), the time is known, the fix a second later
        expect(g.xfer(Buffer.from([0xfd]), 2, T0 + 61_000)).toBeDefined()
        expect(g.outNmea).toBe(true)
        let p = g.navPvt()
        expect([p[20], p[11] & 0x03]).toEqual([0, 0x03]) // fixType 0, date and time valid
        g.xfer(Buffer.alloc(0), 0, T0 + 61_000 + HOT_START_MS)
        p = g.navPvt()
        expect([p[20], p.readInt32LE(28)]).toEqual([3, 100_000_000])
        // the legacy 8-byte form, and a power-on cutting a standby short (the ledger hears where it ended)
        g.xfer(pmreq(3_600_000, 0x02, true), 0, T0 + 70_000)
        expect(g.standbyUntil).toBe(T0 + 70_000 + 3_600_000)
        g.powerOn(T0 + 80_000)
        expect(windows.at(-1)).toEqual([T0 + 80_000, T0 + 80_000])
        expect(g.xfer(Buffer.from([0xfd]), 2, T0 + 80_000)).toBeDefined()
        // duration 0: until a wake-up pin the DDC port does not have, i.e. until the next power-on
        g.xfer(pmreq(0, 0x06), 0, T0 + 90_000)
        expect(g.xfer(Buffer.from([0xfd]), 2, T0 + 90_000 + 30 * 86_400_000)).toBeUndefined()
        expect(g.standbys).toBe(3)
    })

    test("faults: nack refuses, ff reads 0xFF, silent acknowledges and says nothing", () => {
        const g = new UbloxChip(T0)
        g.setInputs({ fault: "nack" }, T0)
        expect(g.xfer(Buffer.from([0xfd]), 2, T0)).toBeUndefined()
        g.setInputs({ fault: "ff" }, T0)
        expect(g.xfer(Buffer.from([0xfd]), 2, T0)!.toString("hex")).toBe("ffff")
        g.setInputs({ fault: "silent" }, T0)
        g.xfer(navPvtPoll(), 0, T0)
        expect(g.xfer(Buffer.from([0xfd]), 3, T0)!.toString("hex")).toBe("0000ff")
    })
})

describe("MAX31856 model (SPI)", () => {
    test("encoders: the vectors the driver's decoders are tested with (devs/test/max31856.test.ts)", () => {
        expect([25.0, 8.0, 5.1171875, -0.0078125, -20.0].map(c => encodeTc(c).toString("hex"))).toEqual([
            "019000",
            "008000",
            "0051e0",
            "ffffe0",
            "fec000",
        ])
        expect([25.0, 21.5, -0.015625, -10].map(c => encodeCj(c).toString("hex"))).toEqual(["1900", "1580", "fffc", "f600"])
        // the nearest LSB
        expect([0.004, 0.0038, -0.004].map(c => encodeTc(c).toString("hex"))).toEqual(["000020", "000000", "ffffe0"])
        expect(encodeCj(0.008).toString("hex")).toBe("0004")
    })

    test("1SHOT timing, DRDY, and CJ disable with a host-written cold junction", () => {
        const m = new Max31856Chip(T0)
        m.setInputs({ probeC: 10, boardC: 20 })
        m.transfer(Buffer.from("8041", "hex"), T0) // one-shot, 50 Hz, 1 sample: 169 ms
        expect(m.transfer(Buffer.from("0000", "hex"), T0 + 168)[1]).toBe(0x41)
        expect(m.isReady(T0 + 168)).toBe(false)
        expect(m.transfer(Buffer.from("0000", "hex"), T0 + 169)[1]).toBe(0x01)
        expect(m.isReady(T0 + 169)).toBe(true)
        m.transfer(Buffer.from("0c000000", "hex"), T0 + 169) // reading LTCB releases DRDY
        expect(m.isReady(T0 + 169)).toBe(false)
        m.transfer(Buffer.from("8008", "hex"), T0 + 200) // CR0: CJ disable, 60 Hz
        m.transfer(Buffer.from("8a1900", "hex"), T0 + 200) // CJTH/CJTL = 25.0 C (5 C too warm)
        m.transfer(Buffer.from("8048", "hex"), T0 + 1000)
        expect(m.isReady(T0 + 1117)).toBe(false)
        expect(m.isReady(T0 + 1118)).toBe(true) // 143 - 25 ms without the CJ sensor
        const rx = m.transfer(Buffer.from("0a000000000000", "hex"), T0 + 1118)
        expect(rx.subarray(1, 7).toString("hex")).toBe("190000f00000") // tc 15.0 C, sr 0
        // auto-increment wraps from SR (0x0F) to CR0
        expect(m.transfer(Buffer.from("0f0000", "hex"), T0 + 1118)[2]).toBe(0x08)
    })

    test("on the bridge, an answer ends with DRDY now and the ms until it asserts", () => {
        const m = new Max31856Chip(T0)
        const tail = (rx: Buffer, n: number) => [rx[n], rx.readUInt32LE(n + 1)]
        let rx = m.xfer(Buffer.from("8041", "hex"), 2 + DRDY_TAIL, T0) // a 169 ms one-shot starts
        expect(tail(rx, 2)).toEqual([0, 169])
        rx = m.xfer(Buffer.from("0000", "hex"), 2 + DRDY_TAIL, T0 + 100)
        expect(tail(rx, 2)).toEqual([0, 69])
        rx = m.xfer(Buffer.from("0000", "hex"), 2 + DRDY_TAIL, T0 + 169)
        expect(tail(rx, 2)).toEqual([1, 0])
        rx = m.xfer(Buffer.from("0c000000", "hex"), 4 + DRDY_TAIL, T0 + 170) // read: released, nothing pending
        expect(tail(rx, 4)).toEqual([0, 0xffffffff])
        m.setInputs({ fault: "dead" })
        rx = m.xfer(Buffer.from("0000", "hex"), 2 + DRDY_TAIL, T0 + 200)
        expect([rx[0], rx[1], ...tail(rx, 2)]).toEqual([0xff, 0xff, 0, 0xffffffff])
    })

    test("datasheet rules a host breaks are recorded: notch or type changed during a conversion", () => {
        const m = new Max31856Chip(T0)
        m.slowFactor = 1.5
        m.transfer(Buffer.from("8040", "hex"), T0) // one-shot at 60 Hz
        m.transfer(Buffer.from("8001", "hex"), T0 + 10) // 50 Hz during it
        expect(m.violations).toEqual(["CR0 notch changed during a conversion"])
    })
})
