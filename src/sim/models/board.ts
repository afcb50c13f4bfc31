import { Scenario, lidOpenings, worldAt } from "../scenario.js"
import type { ChipBus } from "./bus.js"
import { Max31856Chip, MAX31856_SPI } from "./max31856.js"
import { NotecardChip, NOTECARD_ADDR, type NotecardCloud } from "./notecard.js"
import { Rv3028Chip, RV3028_ADDR } from "./rv3028.js"
import { UbloxChip, UBLOX_ADDR } from "./ublox.js"

const H = 3_600_000

/**
 * The logger's chips as the simulated world holds them (docs/simulator.md, "The bus bridge"): the
 * thermocouple converter and the real-time clock always, the Notecard when the scenario has a
 * modem, the u-blox receiver when it has a route or a recording. They outlive the VM: the world
 * feeds them its physical inputs at every jump and tells them when the board's power comes back.
 */
export class BoardChips {
    readonly thermocouple: Max31856Chip
    readonly rtc: Rv3028Chip
    readonly notecard?: NotecardChip
    readonly receiver?: UbloxChip
    private readonly startUtc: number

    /** powered at `poweredUtc` (the logger on the shelf), on `bus`; the modem's syncs go to `cloud` */
    constructor(
        readonly s: Scenario,
        bus: ChipBus,
        poweredUtc: number,
        cloud?: NotecardCloud,
    ) {
        this.startUtc = Date.parse(s.start)
        this.thermocouple = new Max31856Chip(poweredUtc)
        bus.attach(MAX31856_SPI, this.thermocouple)
        this.rtc = new Rv3028Chip(poweredUtc, { driftPpm: s.rtc?.driftPpm })
        bus.attach(RV3028_ADDR, this.rtc)
        // the lid's Hall switch drives the clock's event input (hardware/README.md, v2)
        this.rtc.lidEdges = lidOpenings(s)
            .flat()
            .map(ms => this.startUtc + ms)
        if (cloud) {
            this.notecard = new NotecardChip(poweredUtc)
            this.notecard.cloud = cloud
            bus.attach(NOTECARD_ADDR, this.notecard)
        }
        if (s.route || s.gnss) {
            this.receiver = new UbloxChip(poweredUtc)
            bus.attach(UBLOX_ADDR, this.receiver)
            this.replay()
        }
        this.feed(0)
    }

    /** the world at `worldMs` (since the scenario's start), as each chip senses it */
    feed(worldMs: number) {
        const w = worldAt(this.s, worldMs / H)
        const utc = this.startUtc + worldMs
        const milli = (c: number) => Math.round(c * 1000) / 1000
        this.thermocouple.setInputs({ probeC: milli(w.probeC), boardC: milli(w.boardC), fault: w.fault ?? "none" })
        // cellular coverage is the world's network (outages cut it too); none while the radio must be off
        this.notecard?.setInputs({ connected: w.networkUp && !w.radioOff, utcMs: utc }, utc)
        // the receiver's sky: position (to 1e-7 degree) and how it moves, the fix, UTC
        const e7 = (deg: number) => Math.round(deg * 1e7) / 1e7
        this.receiver?.setInputs(
            {
                utcMs: utc,
                lat: e7(w.lat),
                lon: e7(w.lon),
                latRate: e7(w.latRate),
                lonRate: e7(w.lonRate),
                speedMps: Math.min(65535, Math.round(w.speed * 100)) / 100,
                fix: w.gpsFix,
                numSV: w.gpsFix ? 9 : 0,
            },
            utc,
        )
    }

    /**
     * The board's power is back at `utc` after a cut: the clock ran on its backup supply unless
     * `rtcLost`; the converter and the receiver start from their power-on defaults (the receiver's
     * recording from its start); the modem's notes and configuration are in its flash.
     */
    powerOn(utc: number, rtcLost: boolean) {
        this.rtc.powerOn(utc, rtcLost)
        this.thermocouple.powerOn(utc)
        this.notecard?.powerOn(utc)
        this.receiver?.powerOn(utc)
        this.replay()
    }

    /** The board's power goes at `utc` (a cut): the clock runs on from its backup cell. */
    powerOff(utc: number) {
        this.rtc.powerOff(utc)
    }

    /**
     * The first instant in `[fromUtc, toUtc]` at which a chip ends the ESP32's deep sleep (the clock's
     * INT at a lid edge, through EN), or null: the sleep ends at its timer.
     */
    wakeBefore(fromUtc: number, toUtc: number): number | null {
        return this.rtc.nextInterrupt(fromUtc, toUtc)
    }

    /** the scenario's recorded receiver stream, from its start */
    private replay() {
        const g = this.s.gnss
        if (g?.bytes) this.receiver?.replay(g.bytes, !!g.loop)
    }
}
