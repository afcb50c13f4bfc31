import { loadPowerModel } from "../hardware/power.js"
import { parseConsoleLine } from "./console.js"
import { EnergyLedger, uploadViaOf, type EnergySummary } from "./energy.js"
import { interpolate, type Scenario } from "./scenario.js"

/**
 * The world's side of the energy ledger (docs/simulator.md, "Energy"): the driver tells it when the
 * cell is connected (VM powered) and hands it the firmware's energy lines (`ct:sample`, `ct:upload`,
 * `ct:upload-error`, `ct:fix`, `ct:standby`, forwarded by the VM's clock before its next `need`, so they are booked
 * before the next jump on any machine); the battery sense reads the cell it computes, at the
 * board's temperature (the cell sits with the electronics, outside the cold space).
 */
export class EnergyFeed {
    readonly ledger: EnergyLedger
    /** the latest instant booked: the VM's clock may have run ahead of the last jump, never back */
    private at = -Infinity
    private readonly startUtc: number

    constructor(readonly s: Scenario) {
        this.ledger = new EnergyLedger(loadPowerModel(), {
            board: s.battery?.board ?? "v1",
            gnss: !!(s.route || s.gnss),
            notecard: !!s.cellular,
            startMah: s.battery?.startMah,
        })
        this.startUtc = Date.parse(s.start)
    }

    powerOn(utcMs: number) {
        this.ledger.powerOn(this.clamp(utcMs))
    }

    powerOff(utcMs: number) {
        this.ledger.powerOff(this.clamp(utcMs))
    }

    /** the receiver model obeyed a standby request: asleep from `fromUtc` to `untilUtc` */
    gnssStandby(fromUtc: number, untilUtc: number) {
        const from = this.clamp(fromUtc)
        this.ledger.gnssStandby(from, Math.max(from, untilUtc))
    }

    /** one forwarded console line, printed at world `utcMs` */
    line(utcMs: number, text: string) {
        const c = parseConsoleLine(text.slice(text.indexOf("ct:")))
        if (!c) return
        const at = this.clamp(utcMs)
        if (c.tag === "standby") this.ledger.standby(at)
        else if (c.tag === "sleep") this.ledger.sleep(at, Number(c.fields.awake) || 0)
        else if (c.tag === "sample") this.ledger.sample(at)
        else if (c.tag === "fix") this.ledger.fix(at)
        else if (c.tag === "upload" || c.tag === "upload-error") {
            const via = uploadViaOf(c.fields.via)
            if (via) this.ledger.upload(at, via)
        }
    }

    /** what the battery-sense pin reads at world `utcMs`; 0 when the scenario has no cell */
    vbatPinMv(utcMs: number): number {
        return this.s.battery ? this.ledger.adcPinMv(this.clamp(utcMs), this.cellC(utcMs)) : 0
    }

    /** the ledger's figures at the end */
    summary(endUtcMs: number): EnergySummary {
        return this.ledger.summary(this.clamp(endUtcMs), this.cellC(endUtcMs))
    }

    /** the cell's temperature: the board's (the scenario's `board` keyframes) */
    private cellC(utcMs: number): number {
        return interpolate(this.s.board, (utcMs - this.startUtc) / 3_600_000)
    }

    private clamp(utcMs: number): number {
        this.at = Math.max(this.at, utcMs)
        return this.at
    }
}
