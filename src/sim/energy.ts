// Energy accounting for the simulator (issue 10, item 6): the charge the logger draws from its cell,
// integrated over world time from what the firmware does, over the power model of hardware/power.json
// (src/hardware/power.ts) and the cell model (src/hardware/battery.ts). Pure and deterministic: the
// same calls give the same figures on any machine; the simulator's driver feeds it (docs/simulator.md,
// "Energy").
//
// What it charges:
// - a BASE current for as long as the logger is powered (nothing while it is off: a power cut is the
//   cell disconnected). Two modes:
//   - "always-on" (a firmware that does not sleep: before its first sleep, or on USB power): the
//     ESP32 awake the whole time plus every other part in its idle state, the GNSS receiver tracking
//     continuously when fitted (ALWAYS_ON below);
//   - "duty-cycled" (a firmware that sleeps between wakes): the board's sleep floor as power.json
//     lists it (`boards.<id>.sleep`), plus the awake intervals. The firmware's first `ct:sleep`
//     switches to it with measured wakes (`sleep`): each wake's VM time is charged, the activities
//     without the ESP32's budgeted share, the receiver tracking except while the receiver model says
//     it is in software standby (`gnssStandby`: the firmware's UBX-RXM-PMREQ between fixes).
// - ACTIVITIES on top, at the instant they are reported: a sample (thermocouple conversion), an
//   upload (Wi-Fi exchange or Notecard sync), a GNSS fix. Each activity's loads come from power.json
//   (`boards.<id>.activities`), and each load is charged only for what it draws above what the base
//   already charges for the same part: awake all the time, the ESP32's 44 mA is in the base, so a
//   Wi-Fi upload adds 140 - 44 mA for its 5 s, a sample only the MAX31856's conversion. In duty-cycled
//   mode the base holds the parts' sleep states, so an activity costs what power.md's budget says
//   (test/energy.test.ts: a day of case v2-A reproduces power.md's mAh a day).
//
// Currents are converted to the cell as power.ts does (a 3.3 V-rail load through the board's
// converter). The always-on base draws tens of mA, so its rail loads use the converter's active
// efficiency; the duty-cycled floor uses its sleep efficiency. Times are world UTC ms and never go
// back.
import { adcPinVoltage, cellVoltage } from "../hardware/battery.js"
import { boardOf, stateOf, usableMah, type PowerModel } from "../hardware/power.js"

export type BoardId = "v1" | "v2"
export type EnergyMode = "always-on" | "duty-cycled"
/** how the firmware uploads: HTTPS over Wi-Fi (its `wifi` uplink) or a Notecard sync (`cellular`) */
export type UploadVia = "https" | "cellular"
/** where the charge went (summary.json `energy.byUse`) */
export type EnergyUse = "awake" | "sleep" | "sampling" | "wifi" | "cellular" | "gnss"

export const ENERGY_USES: readonly EnergyUse[] = ["awake", "sleep", "sampling", "wifi", "cellular", "gnss"]

export interface EnergyOptions {
    board: BoardId
    /** a GNSS receiver is fitted (the scenario has a route or a capture) */
    gnss: boolean
    /** a Notecard is fitted (the scenario is cellular) */
    notecard: boolean
    /** default "always-on": a firmware awake until it first sleeps */
    mode?: EnergyMode
    /** charge already drawn from the cell before the run (mAh, default 0): a short run can start near empty */
    startMah?: number
}

/**
 * The ESP32 awake with Wi-Fi idle. power.json's "active_160mhz" (44 mA, ESP32 Series Datasheet,
 * "Power Consumption by Power Modes": Modem-sleep, CPU on and radio off, 160 MHz, upper value) is the
 * state for it: 160 MHz is ESP-IDF's default CPU clock, and between exchanges ESP-IDF's default Wi-Fi
 * power save is modem sleep (the radio off between the access point's beacons). The beacon wake-ups
 * are not in power.json, so this is a floor for an associated station; power.json's cross-check (a
 * whole DevKitC awake without Wi-Fi measured 43 mA) agrees with it.
 */
export const ESP32_AWAKE = "esp32.active_160mhz"

/** What a fitted receiver draws while it runs between fixes. */
const GNSS_TRACKING = "gnss.tracking"
/** ... and while it sleeps in software standby (UBX-RXM-PMREQ) */
const GNSS_STANDBY = "gnss.software_standby"

/**
 * Loads drawn while the always-on firmware runs, per board ("part.state" refs into power.json). Each
 * board's part list is its sleep floor's (boards.<id>.sleep) with the ESP32 awake, the GNSS receiver
 * tracking and, on v2, the GNSS load switch on (test/energy.test.ts checks no floor part is missing).
 * v1: the devkit's measured whole-board floor stays as the devkit's overhead (USB bridge, LED,
 * regulator leakage), and its divider is always connected. v2: the battery divider's switch stays off
 * (this firmware does not read the cell).
 */
const ALWAYS_ON: Record<BoardId, { board: string[]; gnss: string[]; notecard: string[] }> = {
    v1: {
        board: [
            ESP32_AWAKE,
            "devkit.board_deep_sleep",
            "max31856.standby",
            "tc_breakout.overhead",
            "vbat_divider.connected",
            "s7v8f3.quiescent",
        ],
        gnss: [GNSS_TRACKING],
        notecard: ["notecard.idle"],
    },
    v2: {
        board: [
            ESP32_AWAKE,
            "max31856.standby",
            "rtc.timekeeping_lsm",
            "lid_sensor.sampling",
            "load_switch.off", // the battery divider's switch
            "charger.battery_leakage",
            "board_misc.leakage",
            "tps62840.quiescent",
        ],
        gnss: [GNSS_TRACKING, "gnss.vbckp_in_operation", "load_switch.on"],
        notecard: ["notecard.idle"],
    },
}

export const MS_PER_HOUR = 3_600_000
const MS_PER_DAY = 24 * MS_PER_HOUR
/** the cell temperature life is projected at (power.md's documented lives are at 25 C) */
export const LIFE_TEMPERATURE_C = 25

export interface EnergySummary {
    board: BoardId
    mode: EnergyMode
    gnss: boolean
    notecard: boolean
    /** world hours from the first power-on to the end, and of them powered */
    hours: number
    poweredHours: number
    /** charge drawn in this run (mAh at the cell), and where it went */
    mAhUsed: number
    byUse: Record<EnergyUse, number>
    counts: { samples: number; uploadsHttps: number; uploadsCellular: number; fixes: number; awakeIntervals: number; gnssStandbys: number }
    /** average drain while powered and logging (a standby after the cut-off excluded), mAh a day */
    mAhPerDay: number
    /** hours from the battery cut-off's standby to the end (0: none) */
    standbyHours: number
    /** a full cell's usable charge at 25 C over that drain, days (null: nothing drawn) */
    projectedLifeDays: number | null
    /** usable charge of a full cell at 25 C, mAh */
    usableMah: number
    /** charge drawn before the run; the end voltage counts both */
    startMah: number
    temperatureC: number
    cellVoltsEnd: number
    /** what the ESP32's ADC pin (GPIO35, divider 1/2) reads at the end, mV */
    adcPinMvEnd: number
    /** reports that arrived while the logger was off (not charged) */
    ignoredWhileOff: number
}

/** A base load resolved: its category and its current at the cell. */
interface BaseLoad {
    ref: string
    use: EnergyUse
    mA: number
    /** the receiver's tracking load: what it draws instead while in software standby (mA at the cell) */
    standbyMa?: number
}

const round = (v: number, digits: number) => {
    const k = 10 ** digits
    const r = Math.round(v * k) / k
    return Object.is(r, -0) ? 0 : r
}

/** mA x ms -> mAh */
const mAh = (mA: number, ms: number) => (mA * ms) / MS_PER_HOUR

export class EnergyLedger {
    readonly board: BoardId
    readonly gnss: boolean
    readonly notecard: boolean
    readonly startMah: number
    private modeNow: EnergyMode
    /**
     * The firmware sleeps and says how long each wake was (`ct:sleep ... awake=`): the ESP32's awake
     * time is then what it measured, not the activities' budgeted durations, and the receiver is
     * charged as the receiver model ran: tracking, or in software standby (`gnssStandby`).
     */
    private measured = false
    /** the board powered down at the battery cut-off (world ms), or null */
    private standbySince: number | null = null
    /** charge drawn and time powered before the standby: the logging drain the life is projected from */
    private loggingMah: number | null = null
    private loggingMs = 0
    private base: BaseLoad[]
    /** charge settled up to `settledAt`, by use (mAh) */
    private readonly used: Record<EnergyUse, number> = emptyUses()
    private settledAt: number | null = null
    private poweredSince: number | null = null
    private firstOn: number | null = null
    private poweredMs = 0
    private readonly counts = { samples: 0, uploadsHttps: 0, uploadsCellular: 0, fixes: 0, awakeIntervals: 0, gnssStandbys: 0 }
    /** the receiver's current or last software standby (world ms; `until` Infinity: until a power-on) */
    private gnssOff: { from: number; until: number } | null = null
    private ignored = 0

    constructor(
        readonly model: PowerModel,
        opts: EnergyOptions,
    ) {
        boardOf(model, opts.board) // throws on an unknown board
        this.board = opts.board
        this.gnss = opts.gnss
        this.notecard = opts.notecard
        this.startMah = opts.startMah ?? 0
        this.modeNow = opts.mode ?? "always-on"
        this.base = this.baseLoads(this.modeNow)
    }

    get mode(): EnergyMode {
        return this.modeNow
    }

    get powered(): boolean {
        return this.poweredSince !== null
    }

    /** The base current at the cell (mA) while powered, in the current mode. */
    baseMa(): number {
        return this.base.reduce((s, l) => s + l.mA, 0)
    }

    /** The logger's VM starts: the cell is connected and the base current flows from here. */
    powerOn(atMs: number): void {
        this.settle(atMs)
        if (this.powered) return
        this.poweredSince = atMs
        this.firstOn ??= atMs
    }

    /** The cell is disconnected (a power cut, the VM killed): nothing is drawn until powerOn. */
    powerOff(atMs: number): void {
        this.settle(atMs)
        if (this.poweredSince === null) return
        this.poweredMs += atMs - this.poweredSince
        this.poweredSince = null
    }

    /** Switch between an always-on firmware and a duty-cycled one, from `atMs` on. */
    setMode(atMs: number, mode: EnergyMode): void {
        this.settle(atMs)
        this.modeNow = mode
        this.base = this.baseLoads(mode)
    }

    /**
     * The board powers down at the battery cut-off (`ct:standby`): from `atMs` on it draws its sleep
     * floor. The life is projected from the drain before it (the logger was logging), not after.
     */
    standby(atMs: number): void {
        if (this.standbySince !== null) return
        this.settle(atMs)
        this.loggingMah = this.usedMah(atMs)
        this.loggingMs = this.poweredMs + (this.poweredSince !== null ? atMs - this.poweredSince : 0)
        this.standbySince = atMs
        this.base = this.baseLoads("duty-cycled")
    }

    /**
     * The firmware went into a deep sleep at `atMs` (`ct:sleep`) after `awakeMs` of VM time awake.
     * The first switches the ledger to duty-cycled with measured wakes (the always-on base paid for
     * everything before it); each later one charges its wake: the VM's awake time plus the restart
     * before the program runs (power.json `wake_restore`: boot ROM, runtime, bytecode), ESP32 awake.
     */
    sleep(atMs: number, awakeMs: number): void {
        if (this.modeNow === "always-on") {
            this.measured = true
            this.setMode(atMs, "duty-cycled")
            return
        }
        this.awake(atMs - awakeMs - this.model.durations.wake_restore.s * 1000, atMs)
    }

    /**
     * The ESP32 was awake from `fromMs` to `toMs` (a duty-cycled firmware's wake, outside the
     * activities it reports). Always-on, the base already charges it: nothing is added.
     */
    awake(fromMs: number, toMs: number): void {
        if (toMs < fromMs) throw new Error(`awake: ${toMs} before ${fromMs}`)
        this.settle(toMs)
        if (!this.chargeable()) return
        this.counts.awakeIntervals++
        if (this.modeNow === "always-on") return
        this.used.awake += mAh(this.excessMa(ESP32_AWAKE), toMs - fromMs)
    }

    /** One stored sample (`ct:sample`): the thermocouple conversion (and, duty-cycled, the wake around it). */
    sample(atMs: number): void {
        this.settle(atMs)
        if (!this.chargeable()) return
        this.counts.samples++
        this.used.sampling += this.activityMah("sample")
    }

    /** One upload exchange (`ct:upload` or `ct:upload-error`: a failed attempt used the radio too). */
    upload(atMs: number, via: UploadVia): void {
        this.settle(atMs)
        if (!this.chargeable()) return
        if (via === "https") {
            this.counts.uploadsHttps++
            this.used.wifi += this.activityMah("wifi_upload")
        } else {
            this.counts.uploadsCellular++
            this.used.cellular += this.activityMah("cellular_upload")
        }
    }

    /**
     * One GNSS fix (`ct:fix`). Always-on with a receiver fitted, it tracks continuously and the base
     * charges it: the fix is counted, not charged. Duty-cycled, it is power.json's hot fix (the
     * receiver acquiring for 5 s after its standby, the ESP32 asleep).
     */
    fix(atMs: number): void {
        this.settle(atMs)
        if (!this.chargeable()) return
        this.counts.fixes++
        if (this.modeNow === "duty-cycled" || !this.gnss) this.used.gnss += this.activityMah("gnss_hot_fix")
    }

    /**
     * The receiver sleeps in software standby from `fromMs` to `untilMs` (the receiver model's own
     * account of a PMREQ it obeyed; a window cut short by a power-on ends there): its base current
     * is the standby's, not tracking, inside the window.
     */
    gnssStandby(fromMs: number, untilMs: number): void {
        this.settle(fromMs)
        if (untilMs > fromMs) this.counts.gnssStandbys++
        this.gnssOff = { from: fromMs, until: Math.max(fromMs, untilMs) }
    }

    /** Charge drawn in this run up to `atMs` (mAh), without `startMah`. */
    usedMah(atMs: number): number {
        return Object.values(this.byUse(atMs)).reduce((a, b) => a + b, 0)
    }

    /** Charge drawn up to `atMs` by use (mAh, unrounded). */
    byUse(atMs: number): Record<EnergyUse, number> {
        this.checkTime(atMs)
        const out = { ...this.used }
        if (this.powered && this.settledAt !== null) for (const l of this.base) out[l.use] += this.baseMah(l, this.settledAt, atMs)
        return out
    }

    /** The cell's rest voltage at `atMs` (V): `startMah` plus what this run drew, at the cell's temperature. */
    cellVolts(atMs: number, temperatureC: number): number {
        return cellVoltage(this.model.battery, this.startMah + this.usedMah(atMs), temperatureC)
    }

    /** What the ESP32's ADC pin (GPIO35, battery divider) reads at `atMs`, mV. */
    adcPinMv(atMs: number, temperatureC: number): number {
        return Math.round(adcPinVoltage(this.model.battery, this.board, this.cellVolts(atMs, temperatureC)) * 1000)
    }

    /** The run's figures for summary.json (`energy`), rounded. */
    summary(endMs: number, temperatureC = LIFE_TEMPERATURE_C): EnergySummary {
        const uses = this.byUse(endMs)
        const used = Object.values(uses).reduce((a, b) => a + b, 0)
        const poweredMs = this.poweredMs + (this.poweredSince !== null ? endMs - this.poweredSince : 0)
        // the drain while logging: a standby after the battery cut-off is not what the life is made of
        const standing = this.standbySince !== null
        const drainMah = standing ? this.loggingMah! : used
        const drainMs = standing ? this.loggingMs : poweredMs
        const perDay = drainMs > 0 ? (drainMah * MS_PER_DAY) / drainMs : 0
        const usable = usableMah(this.model, LIFE_TEMPERATURE_C)
        const byUse = emptyUses()
        for (const u of ENERGY_USES) byUse[u] = round(uses[u], 4)
        return {
            board: this.board,
            mode: this.modeNow,
            gnss: this.gnss,
            notecard: this.notecard,
            hours: round(this.firstOn === null ? 0 : (endMs - this.firstOn) / MS_PER_HOUR, 3),
            poweredHours: round(poweredMs / MS_PER_HOUR, 3),
            mAhUsed: round(used, 4),
            byUse,
            counts: { ...this.counts },
            mAhPerDay: round(perDay, 2),
            standbyHours: standing ? round((endMs - this.standbySince!) / MS_PER_HOUR, 3) : 0,
            projectedLifeDays: perDay > 0 ? round(usable / perDay, 2) : null,
            usableMah: round(usable, 1),
            startMah: this.startMah,
            temperatureC,
            cellVoltsEnd: round(this.cellVolts(endMs, temperatureC), 3),
            adcPinMvEnd: this.adcPinMv(endMs, temperatureC),
            ignoredWhileOff: this.ignored,
        }
    }

    // -----------------------------------------------------------------------------------------------

    /** A base load's charge from `fromMs` to `toMs`: a tracking receiver draws its standby current inside a standby window. */
    private baseMah(l: BaseLoad, fromMs: number, toMs: number): number {
        const all = mAh(l.mA, toMs - fromMs)
        const off = this.gnssOff
        if (l.ref !== GNSS_TRACKING || !off) return all
        const overlap = Math.max(0, Math.min(toMs, off.until) - Math.max(fromMs, off.from))
        return all - mAh(l.mA - l.standbyMa!, overlap)
    }

    /** Bring the base current's charge up to `atMs`. */
    private settle(atMs: number): void {
        const now = this.byUse(atMs)
        Object.assign(this.used, now)
        this.settledAt = atMs
    }

    private checkTime(atMs: number): void {
        if (!Number.isFinite(atMs)) throw new Error(`energy: time ${atMs}`)
        if (this.settledAt !== null && atMs < this.settledAt) throw new Error(`energy: time went back from ${this.settledAt} to ${atMs}`)
    }

    /** A report counts only while powered (a line from a VM being killed may arrive after the cut). */
    private chargeable(): boolean {
        if (this.powered) return true
        this.ignored++
        return false
    }

    /** The base loads of a mode with the fitted parts, each with its use and its current at the cell. */
    private baseLoads(mode: EnergyMode): BaseLoad[] {
        const refs = mode === "always-on" ? this.alwaysOnRefs() : this.sleepRefs()
        const regime = mode === "always-on" ? "active" : "sleep"
        const baseUse: EnergyUse = mode === "always-on" ? "awake" : "sleep"
        const cell = (ref: string) => this.cellMa(ref, stateOf(this.model, ref).state.mA, regime)
        return refs.map(ref => ({
            ref,
            use: useOfPart(ref, baseUse),
            mA: cell(ref),
            standbyMa: ref === GNSS_TRACKING ? cell(GNSS_STANDBY) : undefined,
        }))
    }

    private alwaysOnRefs(): string[] {
        const a = ALWAYS_ON[this.board]
        return [...a.board, ...(this.gnss ? a.gnss : []), ...(this.notecard ? a.notecard : [])]
    }

    /**
     * The board's sleep floor from power.json, without the receiver or the Notecard when not fitted.
     * With measured wakes the receiver is charged as it ran (tracking, standby windows), not as
     * power.json's v2 floor has it (hardware backup behind a load switch the firmware does not drive).
     */
    private sleepRefs(): string[] {
        const refs = boardOf(this.model, this.board).sleep.filter(ref => this.fitted(ref))
        if (!this.measured || !this.gnss) return refs
        return [...refs.filter(ref => !ref.startsWith("gnss.")), GNSS_TRACKING]
    }

    private fitted(ref: string): boolean {
        const part = ref.split(".")[0]
        return (part !== "gnss" || this.gnss) && (part !== "notecard" || this.notecard)
    }

    /** A part current (mA, on its own rail) at the cell, through the board's converter for a 3.3 V load. */
    private cellMa(ref: string, railMa: number, regime: "sleep" | "active"): number {
        const { part } = stateOf(this.model, ref)
        if (part.rail === "vbat") return railMa
        const c = boardOf(this.model, this.board).converter
        return (railMa * c.vOut) / (c.vBatNominal * (regime === "sleep" ? c.efficiencySleep : c.efficiencyActive))
    }

    /** What a load draws at the cell above what the base already charges for the same part (mA, >= 0). */
    private excessMa(ref: string): number {
        const partId = ref.split(".")[0]
        const inBase = this.base.filter(l => l.ref.split(".")[0] === partId).reduce((s, l) => s + stateOf(this.model, l.ref).state.mA, 0)
        return this.cellMa(ref, Math.max(0, stateOf(this.model, ref).state.mA - inBase), "active")
    }

    /** One run of a board activity (power.json), each load charged above the base (mAh). */
    private activityMah(activity: string): number {
        const segments = boardOf(this.model, this.board).activities[activity]
        if (!segments) throw new Error(`board ${this.board} has no activity ${activity}`)
        let total = 0
        for (const seg of segments) {
            const seconds = this.model.durations[seg.duration].s
            for (const ref of seg.loads) if (!this.measured || ref !== ESP32_AWAKE) total += mAh(this.excessMa(ref), seconds * 1000)
        }
        return total
    }
}

function emptyUses(): Record<EnergyUse, number> {
    return { awake: 0, sleep: 0, sampling: 0, wifi: 0, cellular: 0, gnss: 0 }
}

/** A base load's use: the receiver and the Notecard are their radios' costs; the rest is the board's. */
function useOfPart(ref: string, boardUse: EnergyUse): EnergyUse {
    const part = ref.split(".")[0]
    if (part === "gnss") return "gnss"
    if (part === "notecard") return "cellular"
    return boardUse
}

/** The console's `via=` (the firmware's uplink name: "wifi" or "cellular") as an upload kind. */
export function uploadViaOf(consoleVia: string | undefined): UploadVia | null {
    if (consoleVia === "wifi" || consoleVia === "https") return "https"
    if (consoleVia === "cellular") return "cellular"
    return null
}
