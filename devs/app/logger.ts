import * as ds from "@devicescript/core"
import { Clock } from "../hal/clock"
import { LogStore, NONE } from "../flash/logstore"
import { EpochKeys } from "../chain/keys"
import { Provisioning } from "./config"
import {
    sampleRecord,
    bootRecord,
    configRecord,
    timeRecord,
    alarmRecord,
    sealRecord,
    batteryRecord,
    recordKind,
    recordSeq,
    recordTime,
    sealEpoch,
    KIND_SEAL,
    SFLAG_NO_READING,
    TIME_SOURCE_GPS,
    TIME_FLAG_SET,
    BOOT_POWER_ON,
    BOOT_INTERRUPTED,
    BOOT_WATCHDOG,
    BATTERY_CRITICAL,
    BATTERY_FINAL,
    BATTERY_CUTOFF,
} from "../record/record"
import { Uplink, HttpsUplink } from "../uplink/uplink"
import { Mutex } from "../hal/mutex"
import { Rv3028 } from "../sensor/rv3028"
import { GnssTracker } from "./gnss"
import { DeviceTime } from "./devtime"
import { WakeState, ST_RTC_SET, ST_WATCHDOG, STEP_MAX } from "./state"
import { BatterySense, BatteryMonitor } from "./battery"
import { Uploader } from "./uploader"
import { Evictions } from "./evictions"

/** What the logger needs from a temperature front end (the MAX31856 driver). Never throws from read(). */
export interface Thermometer {
    read(): Promise<ThermoReading>
}

export interface ThermoReading {
    tc: number
    cj: number
    sr: number
    sflags: number
}

export interface Board {
    clock: Clock
    thermo: Thermometer
    /** UTC in ms now, when a trustworthy source has it (network, simulator world) */
    utcNow?: () => number
    utcSource?: number
    /** the GNSS receiver: position, stops, and UTC (preferred over utcNow) */
    gnss?: GnssTracker
    /** uplinks in order of preference (default: HTTPS to the endpoint); the next is tried on failure */
    uplinks?: Uplink[]
    /** false inside radio-off windows (flights): nothing transmits, logging goes on */
    radioAllowed?: () => boolean
    /** the real-time clock (RV-3028) that `t` is read from; without it `t` counts from each boot */
    rtc?: Rv3028
    /** live blocks in flash before the oldest unsent one is evicted */
    maxBlocks: number
    /** the cell's voltage (battery-sense divider), when fitted */
    battery?: BatterySense
    /** the board's power-down at the battery cut-off (standby until USB or a charger wakes it) */
    powerOff?: () => Promise<void>
}

/**
 * Which program made the records (the boot record's `fw`, 8 bytes): a build id compiled in, since the
 * runtime does not expose its program hash to the program (docs/security.md).
 */
export const FIRMWARE_ID = Buffer.from("ct-fw-03")

// 12 h: the RV-3028 drifts < 1 s in that time, and every anchor costs flash (docs/timebase.md)
const TIME_ANCHOR_EVERY = 12 * 3_600_000
// the clock is set again when it is this far from the time source
const RTC_SET_ERROR_MS = 2000
const ALARM_HYSTERESIS_C = 0.5
const HOUR = 3_600_000
const DAY = 24 * HOUR

/**
 * The logger: sample on an absolute schedule, append every record to flash before it counts as
 * taken, seal every epoch with a forward-secure key, and upload in batches, freeing flash only on
 * an authenticated acknowledgement.
 */
export class Logger {
    readonly store: LogStore
    readonly keys = new EpochKeys()
    readonly st = new WakeState()
    readonly time: DeviceTime
    readonly battery = new BatteryMonitor()
    /** batches to the server: schedule, fail-over, back-off (devs/app/uploader.ts) */
    readonly uploads: Uploader
    /** a full store's oldest block summarized, sealed and freed (devs/app/evictions.ts) */
    readonly evictions: Evictions
    /** CPU ms of the last time record */
    private lastAnchor = -1
    /** UTC ms minus t*1000 at the last time record, and the first seq it applies to */
    private anchorOffset = 0
    private anchorFrom = -1
    /** device time of the last boot or clock set: instants measured before it (a GNSS solution
     * requested just before the clock was set) are stamped no earlier, so `t` never steps back */
    minT = 0
    private inBand = true
    // several fibers record (sampling, GNSS): each record is built and appended under this lock,
    // so its seq and the head it may state are the ones it really gets
    private appending = new Mutex()

    /**
     * The watchdog's view of the fibers (sampling, uploads, GNSS): device ms by which each must be back
     * from what it is doing now, sleeping included (0: not running).
     */
    due = [0, 0, 0]

    constructor(
        readonly board: Board,
        readonly prov: Provisioning,
    ) {
        this.store = new LogStore(prov.devid, board.maxBlocks)
        this.time = new DeviceTime(board.clock, board.rtc)
        this.uploads = new Uploader(this, board.uplinks || [new HttpsUplink(prov.endpoint)])
        this.evictions = new Evictions(this)
    }

    async start(): Promise<void> {
        const clock = this.board.clock
        const store = this.store
        const st = this.st
        const hadState = await st.load()
        await this.time.start(hadState && st.has(ST_RTC_SET))
        st.set(ST_RTC_SET, this.time.trusted)
        const problem = await store.open()
        if (problem) console.log("ct:store-problem " + problem)
        const t = this.time.now()
        if (!(await this.keys.load(t))) throw new Error("no epoch key: provisioning incomplete")
        // the epoch left open by the previous boot: finish an interrupted evolution, or seal it now
        const last = await store.lastRecord()
        if (last && recordKind(last) === KIND_SEAL && sealEpoch(last) === this.keys.epoch) await this.keys.evolve(recordSeq(last), t)
        else if (store.nextSeq > 0) await this.seal()
        // a boot that follows a run of this logger was an interruption (power cut, reset): the
        // always-on firmware never stops on its own
        const reason = st.has(ST_WATCHDOG) ? BOOT_WATCHDOG : hadState ? BOOT_INTERRUPTED : BOOT_POWER_ON
        // uploads and GNSS go on at the last level until the cell is read again
        this.battery.level = st.battery
        st.set(ST_WATCHDOG, false)
        st.boot++
        await st.save()
        const hash = this.prov.configHash
        const rtc = this.time.bootFlags
        await this.add(seq => bootRecord(seq, t, st.boot, reason, rtc, store.head, FIRMWARE_ID))
        // the configuration in force is part of the chain from every boot on
        await this.add(seq => configRecord(seq, t, hash))
        this.minT = t
        const ack = store.ackSeq === NONE ? -1 : store.ackSeq
        console.log(`ct:boot boot=${st.boot} next=${store.nextSeq} ack=${ack} epoch=${this.keys.epoch} rtc=${rtc} t=${t}`)
        clock.spawn(runSampling, this)
        this.uploads.start()
        // positions into the chain: the tracker's own fiber (a build without a receiver carries none of it)
        if (this.board.gnss) this.board.gnss.record(this)
        clock.spawn(runWatchdog, this)
    }

    /**
     * The watchdog (docs/platform.md): any await that never returns (a bus that never answers, a socket
     * that never completes, a timer that never fires) leaves a fiber past its `due`; then the reason
     * goes to `st` and the logger reboots, so the next boot record says watchdog. It looks at the
     * sampling schedule's own instants (no wake of its own): a hung sample is caught within two
     * sample intervals, a hung upload or GNSS step after STEP_MAX.
     */
    async watching() {
        const clock = this.board.clock
        const due = this.due
        for (;;) {
            // nothing scheduled (cut off): look again in a day, not every second
            await clock.sleep(due[0] ? Math.max(due[0] - clock.now(), 1000) : DAY)
            for (let i = 0; i < 3; i++) {
                const late = clock.now() - due[i]
                if (due[i] && late >= 0) {
                    console.log(`ct:watchdog fiber=${i} late=${late}`)
                    this.st.flags |= ST_WATCHDOG
                    await this.st.save()
                    ds.reboot()
                }
            }
        }
    }

    /** Build a record for the next seq and append it; resolves with its seq once it is in flash. */
    async add(make: (seq: number) => Buffer): Promise<number> {
        await this.appending.acquire()
        try {
            return await this.store.append(make(this.store.nextSeq))
        } finally {
            this.appending.release()
        }
    }

    /** Seal the current epoch (section 3.2), then evolve the key; the old key is overwritten. */
    async seal() {
        await this.appending.acquire()
        try {
            const store = this.store
            const seq = store.nextSeq
            const count = this.keys.countAt(seq)
            const mac = this.keys.seal(this.prov.devid, seq, store.head, count)
            const t = this.time.now()
            await store.append(sealRecord(seq, t, this.keys.epoch, count, mac))
            await this.keys.evolve(seq, t)
            console.log(`ct:seal epoch=${this.keys.epoch - 1} seq=${seq} count=${count}`)
        } finally {
            this.appending.release()
        }
    }

    private utcNow(): number {
        const b = this.board
        if (b.gnss) return b.gnss.utcNow()
        return b.utcNow ? b.utcNow() : 0
    }

    /**
     * Time records (docs/timebase.md): at the first valid UTC of a boot and every 12 hours after. When
     * the clock does not hold UTC (lost, never set) or is off by more than 2 s, the time record says
     * SET and the clock is set to floor(utc / 1000) right after it: the record's `t` is the old count,
     * the records after it count from the new one.
     */
    async appendTimeAnchor() {
        const b = this.board
        const utc = this.utcNow()
        if (!(utc > 0)) return
        const now = b.clock.now()
        const tm = this.time
        const t = tm.now()
        const off = utc - t * 1000
        const wrong = !tm.trusted || off > RTC_SET_ERROR_MS + 1000 || off < -RTC_SET_ERROR_MS
        if (!wrong && this.lastAnchor >= 0 && now - this.lastAnchor < TIME_ANCHOR_EVERY) return
        this.lastAnchor = now
        const source = b.gnss ? TIME_SOURCE_GPS : b.utcSource
        const set = wrong && tm.canSet()
        if (set) {
            await this.setClock(source)
            return
        }
        const seq = await this.add(s => timeRecord(s, t, utc, source, 0))
        if (this.anchorFrom < 0 || !wrong) {
            this.anchorOffset = off
            if (this.anchorFrom < 0) this.anchorFrom = seq
        }
    }

    /**
     * Set the clock at a UTC second boundary, so its count is whole UTC seconds (a record is then
     * placed at most 1 s early, never late): a SET time record with the old count and that UTC, then
     * the clock set to utc / 1000 (docs/timebase.md).
     */
    private async setClock(source: number) {
        const clock = this.board.clock
        const tm = this.time
        const early = this.utcNow()
        await clock.sleep(1000 - (early - Math.floor(early / 1000) * 1000))
        const utc = this.utcNow()
        const t = tm.now()
        const seq = await this.add(s => timeRecord(s, t, utc, source, TIME_FLAG_SET))
        // a failed set leaves the old count, which the SET record then misplaces by the step
        if (!(await tm.set(utc))) console.log(`ct:rtc-set-failed seq=${seq}`)
        this.st.set(ST_RTC_SET, tm.trusted)
        await this.st.save()
        this.anchorOffset = utc - Math.floor(utc / 1000) * 1000
        this.anchorFrom = seq + 1
        this.minT = tm.now()
        console.log(`ct:rtc-set t=${this.minT} was=${t} seq=${seq}`)
    }

    async sampling() {
        const clock = this.board.clock
        const interval = this.prov.config.interval * 1000
        const epochLen = this.prov.config.epoch
        let next = clock.now()
        for (;;) {
            // the cycle at `next` must be over before the one after it is due
            this.due[0] = next + 2 * interval
            const wait = next - clock.now()
            if (wait > 0) await clock.sleep(wait)
            try {
                await this.takeSample()
                // an epoch is sealed when it is `epoch` seconds old (device time, kept across boots)
                if (this.time.now() - this.keys.start >= epochLen) await this.seal()
                await this.evictions.makeRoom()
                if (await this.checkBattery()) break
            } catch (e) {
                // the schedule survives anything a cycle can throw; the error is on the console
                console.log("ct:sample-error " + e)
            }
            // absolute schedule: no drift. A cycle that ran late (store compaction, slow bus) is
            // followed at once by the next sample; only slots missed entirely (power off) are skipped
            next += interval
            const now = clock.now()
            if (next + interval <= now) next += Math.floor((now - next) / interval) * interval
        }
        // cut off: nothing is due any more (the watchdog stands down), the board powers down
        this.due[0] = 0
        if (this.board.powerOff) await this.board.powerOff()
    }

    /**
     * The cell at this sample wake (hardware/power.md): a battery record at a bounded rate, and the
     * level acted on. Entering `final`: the last seal and one upload of everything; `cutoff`: a last
     * battery record, sealed. True once cut off (the logger stops sampling).
     */
    private async checkBattery(): Promise<boolean> {
        const sense = this.board.battery
        if (!sense) return false
        const mv = await sense.readMv()
        if (!(mv > 0)) return false
        const b = this.battery
        const was = b.level
        if (!b.take(mv, this.board.clock.now())) return false
        const t = this.time.now()
        const level = b.level
        if (level !== this.st.battery) {
            this.st.battery = level
            await this.st.save()
        }
        await this.add(seq => batteryRecord(seq, t, b.mv, level, 0))
        console.log(`ct:battery mv=${b.mv} level=${level}`)
        if (level === was) return false
        if (level >= BATTERY_FINAL) await this.seal()
        if (level === BATTERY_CUTOFF) return true
        // the uploader re-plans at the new level's period; entering final, it sends everything once
        this.uploads.wake(level === BATTERY_FINAL)
        return false
    }

    private async takeSample() {
        const clock = this.board.clock
        const t0 = ds.millis()
        await this.time.sync()
        await this.appendTimeAnchor()
        let r: ThermoReading
        const tr = ds.millis()
        try {
            r = await this.board.thermo.read()
        } catch (e) {
            r = { tc: 0, cj: 0, sr: 0, sflags: SFLAG_NO_READING }
        }
        // stamped when the conversion ended (docs/format.md 2.1)
        const t = this.time.now()
        const uptime = clock.now()
        const readMs = ds.millis() - tr
        const seq = await this.add(s => sampleRecord(s, t, r.tc, r.cj, r.sr, r.sflags))
        // rd = VM wall ms of the driver read, ms = of the whole cycle (read + flash append)
        // (the compiler takes at most a handful of substitutions per template: two halves)
        const timing = `rd=${readMs} ms=${ds.millis() - t0}`
        const when = `seq=${seq} up=${uptime} t=${t}`
        console.log(`ct:sample ` + when + ` tc=${r.tc} cj=${r.cj} sr=${r.sr} fl=${r.sflags} ` + timing)
        if (!r.sr && !r.sflags) await this.checkAlarm(r.tc, t)
    }

    /** UTC seconds of a record the current clock run places (since its time record's run began); 0: not placed */
    placedUtc(r: Buffer): number {
        if (this.anchorFrom < 0 || recordSeq(r) < this.anchorFrom) return 0
        return Math.floor((recordTime(r) * 1000 + this.anchorOffset) / 1000)
    }

    private async checkAlarm(tc: number, t: number) {
        const c = tc / 128
        const cfg = this.prov.config
        const type = c > cfg.high ? 1 : c < cfg.low ? 2 : 3
        const inBand = type === 3
        if (inBand === this.inBand) return
        // hysteresis: back in band only once clearly inside, so a reading on the edge does not flap
        // (the excursion itself is judged on every raw reading by whoever reads the log)
        if (inBand && (c > cfg.high - ALARM_HYSTERESIS_C || c < cfg.low + ALARM_HYSTERESIS_C)) return
        this.inBand = inBand
        await this.add(seq => alarmRecord(seq, t, type, tc))
        console.log(`ct:alarm type=${type} tc=${tc}`)
        // an excursion is reported at once, not at the next upload slot (from a critical cell: only
        // in the records, at the daily upload)
        if (this.battery.level < BATTERY_CRITICAL) this.uploads.wake(true)
    }
}

// fibers: the clock runs each in the background (Function.start() loses `this` of a method: wrap them)
async function runSampling(lg: Logger) {
    await lg.sampling()
}
async function runWatchdog(lg: Logger) {
    await lg.watching()
}
