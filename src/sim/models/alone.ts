import { ChipBus, BusRequest, BusReply, answerBus } from "./bus.js"
import { Rv3028Chip, RV3028_ADDR } from "./rv3028.js"
import { NotecardChip, NOTECARD_ADDR, type InboundNote, type Note, type NotecardCloud, type NotecardModelOptions } from "./notecard.js"
import { UbloxChip, UBLOX_ADDR, type UbloxModelOptions } from "./ublox.js"
import { Max31856Chip, MAX31856_SPI, modelConversionMs } from "./max31856.js"

/**
 * The chips a VM gets when it runs alone, with no world (the firmware's unit tests, devs/test): the
 * VM's clock (src/sim/vm/vm-clock.cjs) answers their bus transactions in its own process from
 * these models, the same ones the simulator's world runs. The tests steer them through a rig at
 * `RIG_ADDR` (no real chip has it): a write is a JSON command; the read in the same transaction
 * returns its JSON answer's length (u16 LE) and first bytes, read-only transactions the rest
 * (devs/test/rig.ts).
 *
 * Commands (`at`: the transaction's instant):
 * - `{"rtc": {base?, ppb?, status?, ee?}}` a clock chip in that state, its counter running from
 *   `base` at `at` (fields left out: as on a factory-new chip); `{"rtcPowerOn": lost}` the board
 *   powered again, with or without the clock's backup supply; `{"rtcLid": [ms, ...]}` the lid's
 *   edges on its event input, ms from now (closed before the first); `{"get": "rtc"}` its state.
 * - `{"nc": {replyDelayMs?, syncMs?, capacityBytes?, cloud?}}` a new Notecard, powered at `at`;
 *   `cloud` (an object, see AckingCloud) makes its syncs go to a stand-in for Notehub and the
 *   ingest server, else synced notes wait for `{"ncOutbound": 1}` and inbound notes are given
 *   with `{"ncInbound": note, "viaSync": bool}`. `{"ncInputs": {connected?, utcMs?, fault?}}`,
 *   `{"ncFailNext": [req, err]}`, `{"ncCloud": {...}}` (changes the stand-in's behaviour),
 *   `{"get": "nc"}` (the card's state: configuration, counters, violations, request lines, queued
 *   notes without their payloads, inbound notes, whether a sync is pending), `{"get": "ncUp"}`
 *   (the notes the stand-in received).
 * - `{"gnss": {latencyMs?, epochMs?, signedNano?, legacy?, noise?, txBufferSize?}}` a new u-blox
 *   receiver, powered at `at`; `{"gnssInputs": {utcMs?, lat?, lon?, fix?, ...}}` (`utcMs` null: it
 *   has no time); `{"gnssLatency": ms}`; `{"gnssInject": hex}` raw bytes into its output;
 *   `{"gnssReplay": [[hex, times], ...] | null, "loop": bool}` a recording, its pieces repeated as
 *   given; `{"gnssPowerOn": 1}` a power-on reset; `{"get": "gnss"}` its state.
 * - `{"tc": 1}` a new MAX31856 (SPI, bridge address 0x100), powered at `at`; `{"tcInputs": {probeC?,
 *   boardC?, fault?}}`; `{"tcSlow": factor}` (its conversions take that much longer; null: they
 *   never end); `{"tcPowerOn": 1}`; `{"tcRaw": hex}` an SPI transaction of the test's own, its bytes
 *   back; `{"tcConvMs": [cr0, cr1]}` the model's conversion time; `{"get": "tc"}` its registers and
 *   counters.
 *
 * Numbers with a fraction come as exact decimal text ("-785e-1"): the VM writes about 7 digits.
 */
export const RIG_ADDR = 0x7e

/** What the stand-in does with a sync (the ingest server behind it, as seen from the card). */
export interface AckingCloudOptions {
    /** answer each batch note with an ack note at the following sync (default true) */
    answer?: boolean
    /** the ack's status (200 or 409) */
    status?: number
    /** answer with this device id (hex) instead of the batch's */
    ackDevid?: string
    /** every exchange fails (the hub unreachable) */
    down?: boolean
}

/**
 * A stand-in for Notehub and the ingest server in the unit tests: each batch note that goes up
 * (`batch.qo`: the batch header's devid at 4, first seq at 24, count at 28) is answered with an
 * 84-byte ack note (magic "CTA3", devid, seq = its last record, the MAC left zero: the uplink does
 * not check it) that comes down at the following sync, its body echoing {first, n} with the status.
 */
export class AckingCloud implements NotecardCloud {
    o: Required<Omit<AckingCloudOptions, "ackDevid">> & { ackDevid?: string }
    up: Note[] = []
    exchanges = 0
    private later: InboundNote[] = []

    constructor(o: AckingCloudOptions = {}) {
        this.o = { answer: true, status: 200, down: false, ...o }
    }

    async exchange(_sn: string, notes: Note[]): Promise<InboundNote[]> {
        if (this.o.down) throw new Error("connection refused")
        this.exchanges++
        const out = this.later
        this.later = []
        for (const n of notes) {
            this.up.push(n)
            if (!this.o.answer || n.file !== "batch.qo") continue
            const b = Buffer.from(n.payload, "base64")
            const ack = Buffer.alloc(84)
            ack.write("CTA3", 0, "latin1")
            if (this.o.ackDevid) Buffer.from(this.o.ackDevid, "hex").copy(ack, 4)
            else b.copy(ack, 4, 4, 12)
            ack.writeUInt32LE((b.readUInt32LE(24) + b.readUInt16LE(28) - 1) >>> 0, 12)
            const body = n.body as { first?: number; n?: number }
            this.later.push({
                file: "ack.qi",
                body: { first: body?.first, n: body?.n, status: this.o.status },
                payload: ack.toString("base64"),
            })
        }
        return out
    }
}

/**
 * The VM writes numbers as text with about 7 digits: a number with a fraction comes as exact decimal
 * text ("508467512e-7", devs/test/rig.ts `exact`), turned back into a number as the command is parsed.
 */
const EXACT = /^-?\d+e-\d+$/
const exactNumbers = (_key: string, v: unknown) => (typeof v === "string" && EXACT.test(v) ? Number(v) : v)

class Rig {
    rtc?: Rv3028Chip
    nc?: NotecardChip
    gnss?: UbloxChip
    tc?: Max31856Chip
    private answer = Buffer.alloc(0)

    constructor(private readonly bus: ChipBus) {}

    async xfer(tx: Buffer, rxLen: number, utc: number): Promise<Buffer> {
        const rx = Buffer.alloc(rxLen)
        if (tx.length) {
            const text = JSON.stringify((await this.command(JSON.parse(tx.toString("utf8"), exactNumbers), utc)) ?? null)
            const b = Buffer.from(text, "utf8")
            this.answer = Buffer.concat([Buffer.from([b.length & 0xff, b.length >> 8]), b])
        }
        this.answer.copy(rx, 0, 0, rxLen)
        this.answer = this.answer.subarray(Math.min(rxLen, this.answer.length))
        return rx
    }

    private async command(c: Record<string, any>, utc: number): Promise<unknown> {
        if (c.rtc) {
            const chip = new Rv3028Chip(utc, { driftPpm: (c.rtc.ppb ?? 0) / 1000 })
            chip.base = c.rtc.base ?? 0
            chip.status = c.rtc.status ?? chip.status
            chip.ee = chip.mirror = c.rtc.ee ?? 0
            return this.attachRtc(chip)
        }
        if (c.rtcPowerOn !== undefined) return this.rtc?.powerOn(utc, !!c.rtcPowerOn)
        // the lid's edges on the clock's event input, ms from now (the lid closed before the first)
        if (c.rtcLid) return void (this.rtc!.lidEdges = (c.rtcLid as number[]).map(ms => utc + ms))
        if (c.nc) {
            const o = c.nc as NotecardModelOptions & { cloud?: AckingCloudOptions }
            this.nc = new NotecardChip(utc, o)
            if (o.cloud) this.nc.cloud = new AckingCloud(o.cloud)
            this.bus.attach(NOTECARD_ADDR, this.nc)
            return
        }
        if (c.gnss) {
            this.gnss = new UbloxChip(utc, c.gnss as UbloxModelOptions)
            this.bus.attach(UBLOX_ADDR, this.gnss)
            return
        }
        if (c.tc) {
            this.tc = new Max31856Chip(utc)
            this.bus.attach(MAX31856_SPI, this.tc)
            return
        }
        const tc = this.tc
        if (c.tcInputs) return tc!.setInputs(c.tcInputs)
        if (c.tcSlow !== undefined) return void (tc!.slowFactor = c.tcSlow === null ? Infinity : c.tcSlow)
        if (c.tcPowerOn) return tc!.powerOn(utc)
        if (c.tcRaw) return tc!.transfer(Buffer.from(c.tcRaw, "hex"), utc).toString("hex")
        if (c.tcConvMs) return modelConversionMs(c.tcConvMs[0], c.tcConvMs[1])
        if (c.get === "tc")
            return {
                regs: tc!.regs.toString("hex"),
                violations: tc!.violations,
                conversions: tc!.conversions,
                transactions: tc!.transactions,
            }
        const g = this.gnss
        if (c.gnssInputs) return g!.setInputs(c.gnssInputs, utc)
        if (c.gnssLatency !== undefined) return void (g!.latencyMs = c.gnssLatency)
        if (c.gnssInject) return g!.inject(Buffer.from(c.gnssInject, "hex"))
        if (c.gnssReplay !== undefined) {
            const parts = (c.gnssReplay as [string, number][] | null)?.flatMap(([hex, n]) => Array<Buffer>(n).fill(Buffer.from(hex, "hex")))
            return g!.replay(parts && Buffer.concat(parts), !!c.loop)
        }
        if (c.gnssPowerOn) return g!.powerOn(utc)
        if (c.get === "gnss")
            return {
                outNmea: g!.outNmea,
                valsets: g!.valsets,
                received: g!.received,
                dropped: g!.dropped,
                utcNow: g!.utcNow(),
                replayDone: g!.replayDone(),
                standbys: g!.standbys,
                refusedAsleep: g!.refusedAsleep,
            }
        const nc = this.nc
        if (c.ncInputs) return nc!.setInputs({ ...c.ncInputs, utcMs: c.ncInputs.utcMs === null ? NaN : c.ncInputs.utcMs }, utc)
        if (c.ncFailNext) return nc!.failNext(c.ncFailNext[0], c.ncFailNext[1])
        if (c.ncInbound) return nc!.addInbound(c.ncInbound, !!c.viaSync)
        if (c.ncOutbound) return nc!.takeOutbound(utc)
        if (c.ncCloud) return Object.assign((nc!.cloud as AckingCloud).o, c.ncCloud)
        if (c.get === "rtc") return this.rtcState(utc)
        if (c.get === "nc") return this.cardState(nc!, utc)
        if (c.get === "ncUp") return (nc!.cloud as AckingCloud).up
        throw new Error(`rig: unknown command ${JSON.stringify(c)}`)
    }

    private rtcState(utc: number) {
        const r = this.rtc
        return (
            r && {
                base: r.base,
                ppb: r.ppb,
                status: r.status,
                ram: r.ram,
                mirror: r.mirror,
                ee: r.ee,
                eeUpdates: r.eeUpdates,
                counter: r.counterAt(utc),
            }
        )
    }

    private cardState(nc: NotecardChip, utc: number) {
        const cloud = nc.cloud as AckingCloud | undefined
        return {
            product: nc.product,
            sn: nc.sn,
            mode: nc.mode,
            outbound: nc.outbound,
            syncMs: nc.syncMs,
            syncs: nc.syncs,
            xfers: nc.xfers,
            syncRequested: nc.syncRequested(utc),
            violations: nc.violations,
            lines: nc.lines,
            queued: nc.queued.map(n => ({ file: n.file, body: n.body, chars: n.payload.length })),
            inbound: nc.inboundNotes.length,
            exchanges: cloud?.exchanges,
        }
    }

    attachRtc(chip: Rv3028Chip) {
        this.rtc = chip
        this.bus.attach(RV3028_ADDR, chip)
    }
}

export function aloneChips(): { answer(m: BusRequest): Promise<BusReply> } {
    const bus = new ChipBus()
    const rig = new Rig(bus)
    bus.attach(RIG_ADDR, rig)
    return {
        answer(m: BusRequest): Promise<BusReply> {
            // a factory-new clock chip on the board from the first transaction on
            if (!rig.rtc) rig.attachRtc(new Rv3028Chip(m.at))
            return answerBus(bus, m)
        },
    }
}
