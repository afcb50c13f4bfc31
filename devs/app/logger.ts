import * as ds from "@devicescript/core"
import { Clock, Signal, NO_TIME } from "../hal/clock"
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
    BOOT_RTC_LOST,
    BOOT_RTC_BACKUP,
    BATTERY_CRITICAL,
    BATTERY_FINAL,
    BATTERY_CUTOFF,
} from "../record/record"
import { Uplink, HttpsUplink } from "../uplink/uplink"
import { Mutex } from "../hal/mutex"
import { Rv3028 } from "../sensor/rv3028"
import { GnssTracker } from "./gnss"
import { DeviceTime } from "./devtime"
import {
    WakeState,
    ST_RTC_SET,
    ST_WATCHDOG,
    ST_ASLEEP,
    STEP_MAX,
    W_WAKE,
    W_SEQ,
    W_SLEPT,
    W_SAMPLE,
    W_ANCHOR,
    W_ANCHOR_OFF,
    W_ANCHOR_FROM,
    W_FLAGS,
    WF_URGENT,
    WF_OUT_OF_BAND,
    WF_SENSOR_DOWN,
    W_BAT,
    W_BAT_AT,
} from "./state"
import { BatterySense, BatteryMonitor } from "./battery"
import { Uploader, RUNNING } from "./uploader"
import { Evictions } from "./evictions"
import { Watchdog, DUE_START } from "./watchdog"

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
    /**
     * A deep sleep of `ms`: RAM is lost and the program starts again at the wake (the ESP32 resets);
     * it does not return. Without it the logger stays awake between samples.
     */
    sleep?: (ms: number) => Promise<void>
    /** USB (or a charger) powers the board: the logger stays awake, so a technician's tool can talk to it */
    externalPower?: () => boolean
    /** CPU ms at which this run's program started (0 on the board: the clock restarts at a reset) */
    startedAt?: number
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
/** nothing to do for at least this long: sleep (a wake costs ~0.35 s of boot before the program runs) */
const MIN_SLEEP_MS = 3000
/**
 * A start is a wake when the logger went to sleep, its clock chip ran on the main supply all along
 * (no backup switch-over, no loss) and `t` is at most this long after the planned wake (s): the
 * ESP32's sleep timer runs on an RC oscillator (a few % off). Earlier is a wake too (USB power).
 */
const WAKE_LATE_S = 120
/** an instant kept across the sleep that is due within this of the wake is due at once (ms) */
const WAKE_DUE_MS = 1500
/** a fiber that is not running and has nothing planned */
const NEVER = 1e15

/**
 * The logger: sample on an absolute schedule, append every record to flash before it counts as
 * taken, seal every epoch with a forward-secure key, and upload in batches, freeing flash only on
 * an authenticated acknowledgement.
 */
export class Logger {
    readonly store: LogStore
    readonly keys = new EpochKeys()
    readonly time: DeviceTime
    readonly battery = new BatteryMonitor()
    /** batches to the server: schedule, fail-over, back-off (devs/app/uploader.ts) */
    readonly uploads: Uploader
    /** a full store's oldest block summarized, sealed and freed (devs/app/evictions.ts) */
    readonly evictions: Evictions
    /** CPU ms of the last time record */
    private lastAnchor = NO_TIME
    /** UTC ms minus t*1000 at the last time record, and the first seq it applies to */
    private anchorOffset = 0
    private anchorFrom = -1
    /** device time of the last boot or clock set: instants measured before it (a GNSS solution
     * requested just before the clock was set) are stamped no earlier, so `t` never steps back */
    minT = 0
    private inBand = true
    /** the last sample had no reading: the next good one says the converter is back (`ct:sensor-ok`) */
    private sensorDown = false
    /**
     * the next sample's instant, device seconds: the schedule is kept in the clock chip's time, so
     * neither a wake nor a clock read moves it (CPU ms would lose a fraction of a second each time)
     */
    private sampleT = 0
    /** this run began at a wake from a deep sleep, not at a boot */
    woke = false
    /** when each fiber (sampling, uploads, GNSS) runs next, clock ms; RUNNING while it runs */
    runAt = [RUNNING, NEVER, NEVER]
    // several fibers record (sampling, GNSS): each record is built and appended under this lock,
    // so its seq and the head it may state are the ones it really gets
    private appending = new Mutex()

    /** the watchdog's view of the fibers (sampling, uploads, GNSS) and the start: Watchdog.due */
    readonly due: number[]

    constructor(
        readonly board: Board,
        readonly prov: Provisioning,
        /** what the logger carries from one run to the next (docs/format.md 5.5) */
        readonly st: WakeState,
        readonly watchdog: Watchdog,
    ) {
        this.due = watchdog.due
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
        const wasSet = hadState && st.has(ST_RTC_SET)
        await this.time.start(wasSet)
        st.set(ST_RTC_SET, this.time.trusted)
        const t = this.time.now()
        // a wake that finds the log as its sleep left it (the same next seq: nothing appended since)
        // restores it from the tail alone (docs/format.md 5.5); anything else is checked as at a boot
        this.woke = this.isWake(hadState, wasSet, t) && (await store.load()) && store.nextSeq + 1 === st.w[W_SEQ]
        let last: Buffer = undefined
        if (!this.woke) {
            const problem = await store.open()
            if (problem) console.log("ct:store-problem " + problem)
            last = await store.lastRecord()
        }
        if (!(await this.keys.load(t, this.woke, this.prov.epochKey))) throw new Error("no epoch key: provisioning incomplete")
        // an evolution a reset interrupted (the epoch's seal is the last record): finish it
        const sealed = last && recordKind(last) === KIND_SEAL && sealEpoch(last) === this.keys.epoch
        if (sealed) await this.keys.evolve(recordSeq(last), t)
        if (this.woke) this.resume(t)
        else await this.boot(hadState, t, !sealed && store.nextSeq > 0)
        // (a wake's kept instants are in the counter's own frame already: nothing to clamp)
        this.minT = this.woke ? 0 : t
        clock.spawn(runSampling, this)
        if (this.woke) this.uploads.resume(st.w, this.time)
        else this.uploads.start()
        // positions into the chain: the tracker's own fiber (a build without a receiver carries none of it)
        const gnss = this.board.gnss
        if (gnss) {
            if (this.woke) gnss.resume(st.w, this.time)
            this.runAt[2] = RUNNING
            gnss.record(this)
        }
        // the run has started: from here on the fibers' own deadlines hold
        this.due[DUE_START] = 0
    }

    /**
     * A wake, not a boot: the logger went to sleep (ST_ASLEEP), its clock chip neither lost its time nor
     * ran on its backup supply since (a power cut during the sleep is a boot), and it is not long past
     * the planned instant (before it: woken early, by USB power). The flag is cleared here, so a reset from now on (the watchdog) is a boot.
     */
    private isWake(hadState: boolean, wasSet: boolean, t: number): boolean {
        const st = this.st
        if (!hadState || !st.has(ST_ASLEEP)) return false
        st.set(ST_ASLEEP, false)
        const planned = st.w[W_WAKE]
        // (a clock never set keeps its power-on flag until it is: only a loss after a set is news)
        const flags = this.time.bootFlags
        const rtcEvent = (flags & BOOT_RTC_BACKUP) !== 0 || ((flags & BOOT_RTC_LOST) !== 0 && wasSet)
        // a counter that started over (lost while never set) is behind the instant it went to sleep
        return !rtcEvent && !!this.board.sleep && st.w[W_SLEPT] > 0 && t >= st.w[W_SLEPT] && t <= planned + WAKE_LATE_S
    }

    /** A boot (power-on, a reset, a power cut): seal what the last run left open, then the boot and config records. */
    private async boot(hadState: boolean, t: number, sealFirst: boolean) {
        const store = this.store
        const st = this.st
        if (sealFirst) await this.seal()
        // a boot that follows a run of this logger was an interruption (power cut, reset): the
        // firmware never stops on its own (a sleep ends in a wake, not a boot)
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
        this.sampleT = t
        const ack = store.ackSeq === NONE ? -1 : store.ackSeq
        console.log(`ct:boot boot=${st.boot} next=${store.nextSeq} ack=${ack} epoch=${this.keys.epoch} rtc=${rtc} t=${t}`)
    }

    /**
     * A wake: everything RAM held comes back from the wake slots `saveWake` wrote before the sleep
     * (docs/format.md 5.5); the chain head, the open block and the epoch key are in flash already.
     */
    private resume(t: number) {
        const w = this.st.w
        const tm = this.time
        this.battery.level = this.st.battery
        this.sampleT = w[W_SAMPLE]
        this.inBand = (w[W_FLAGS] & WF_OUT_OF_BAND) === 0
        this.sensorDown = (w[W_FLAGS] & WF_SENSOR_DOWN) !== 0
        this.uploads.urgent = (w[W_FLAGS] & WF_URGENT) !== 0
        this.lastAnchor = w[W_ANCHOR] ? tm.unkeep(w[W_ANCHOR]) : NO_TIME
        this.anchorOffset = w[W_ANCHOR_OFF] | 0
        this.anchorFrom = w[W_ANCHOR_FROM] - 1
        const b = this.battery
        for (let i = 0; i < 3; i++) if (w[W_BAT + i]) b.readings.push(w[W_BAT + i])
        b.recordedAt = w[W_BAT_AT] ? tm.unkeep(w[W_BAT_AT]) : NO_TIME
        // restore = clock ms from the program's start to here: the log, the keys and this state read back
        const restore = this.board.clock.now() - (this.board.startedAt || 0)
        console.log(`ct:wake t=${t} planned=${w[W_WAKE]} next=${this.store.nextSeq} restore=${restore}`)
    }

    /**
     * A device second on this run's clock, by the run's own reading (so every sample of a run is taken
     * at the same phase of its second, and stamped alike); one due within WAKE_DUE_MS is due now.
     */
    private dueAt(t: number): number {
        const at = this.time.unkeep(t)
        const now = this.board.clock.now()
        return at > now && at - now < WAKE_DUE_MS ? now : at
    }

    /**
     * Fiber `fiber` waits until clock ms `at` (or `signal`). When every fiber waits and the earliest
     * is at least MIN_SLEEP_MS away, the logger saves what RAM holds and sleeps until it instead (the
     * board's sleep does not return: the wake starts the program again). True when `signal` ended it.
     */
    async waitUntil(fiber: number, at: number, signal?: Signal): Promise<boolean> {
        const clock = this.board.clock
        this.runAt[fiber] = at
        await this.sleepIfIdle()
        const left = at - clock.now()
        let raised = false
        if (left > 0) {
            if (signal) raised = await clock.sleepOr(left, signal)
            else await clock.sleep(left)
        }
        this.runAt[fiber] = RUNNING
        return raised
    }

    /** the earliest instant a fiber runs at; RUNNING when one runs now */
    private nextRun(): number {
        let wake = NEVER
        for (const a of this.runAt) {
            if (a === RUNNING) return RUNNING
            if (a < wake) wake = a
        }
        return wake
    }

    private async sleepIfIdle() {
        const sleep = this.board.sleep
        // without a working clock chip a wake would not know the time: stay awake
        if (!sleep || !this.time.canSet() || this.uploads.urgent) return
        if (this.board.externalPower && this.board.externalPower()) return
        const wake = this.nextRun()
        if (wake === RUNNING || wake === NEVER || wake - this.board.clock.now() < MIN_SLEEP_MS) return
        await this.saveWake(wake)
        // (the write took a few ms: nothing may have woken meanwhile)
        const now = this.board.clock.now()
        if (this.nextRun() !== wake || wake - now < MIN_SLEEP_MS) {
            this.st.set(ST_ASLEEP, false)
            return
        }
        // wake so early that the next run reads the counter at the same phase of its second as this
        // one did: a wake that starts on time then always reads and stamps the same second (a phase
        // creeping through the second would stamp one sample in a few a second late)
        // (whole seconds after this run's first reading, by that reading: the latest may be at another phase)
        const tm = this.time
        const lag = tm.firstReadAt - (this.board.startedAt || 0)
        const at = lag > 0 && lag < 1000 ? tm.unkeep(tm.keep(wake)) - lag : wake
        await sleep(at - now)
    }

    /** What RAM holds that a wake needs, into `st` (instants as device seconds), ST_ASLEEP set. */
    private async saveWake(wake: number) {
        const st = this.st
        const w = st.w
        const tm = this.time
        w[W_WAKE] = tm.atCpu(wake)
        w[W_SEQ] = this.store.nextSeq + 1
        w[W_SLEPT] = tm.now()
        w[W_SAMPLE] = this.sampleT
        w[W_FLAGS] = (this.inBand ? 0 : WF_OUT_OF_BAND) | (this.uploads.urgent ? WF_URGENT : 0) | (this.sensorDown ? WF_SENSOR_DOWN : 0)
        w[W_ANCHOR] = this.lastAnchor === NO_TIME ? 0 : tm.keep(this.lastAnchor)
        w[W_ANCHOR_OFF] = this.anchorOffset
        w[W_ANCHOR_FROM] = this.anchorFrom + 1
        const b = this.battery
        for (let i = 0; i < 3; i++) w[W_BAT + i] = i < b.readings.length ? b.readings[i] : 0
        w[W_BAT_AT] = b.recordedAt === NO_TIME ? 0 : tm.keep(b.recordedAt)
        this.uploads.save(w, tm)
        if (this.board.gnss) this.board.gnss.save(w, tm)
        st.set(ST_ASLEEP, true)
        await st.save()
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
        if (!(this.utcNow() > 0)) return
        // the counter read now, next to the UTC it is paired with (extrapolated from an older read
        // it would lag by that read's phase within its second)
        await this.time.sync()
        const utc = this.utcNow()
        const now = b.clock.now()
        const tm = this.time
        const t = tm.now()
        const off = utc - t * 1000
        const wrong = !tm.trusted || off > RTC_SET_ERROR_MS + 1000 || off < -RTC_SET_ERROR_MS
        if (!wrong && this.lastAnchor !== NO_TIME && now - this.lastAnchor < TIME_ANCHOR_EVERY) return
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
        // no other record between this one and the set: it would read the old count in the new run
        await this.appending.acquire()
        let seq = 0
        let at = 0
        try {
            seq = await this.store.append(timeRecord(this.store.nextSeq, t, utc, source, TIME_FLAG_SET))
            // the counter's seconds start when it is written: write it at the next UTC second
            // boundary (the append took a few ms), so it ticks with UTC
            const late = this.utcNow()
            await clock.sleep(1000 - (late - Math.floor(late / 1000) * 1000))
            at = this.utcNow()
            // a failed set leaves the old count, which the SET record then misplaces by the step
            if (!(await tm.set(at))) console.log(`ct:rtc-set-failed seq=${seq}`)
        } finally {
            this.appending.release()
        }
        this.st.set(ST_RTC_SET, tm.trusted)
        await this.st.save()
        this.anchorOffset = at - Math.floor(at / 1000) * 1000
        this.anchorFrom = seq + 1
        this.minT = tm.now()
        // the schedule is in device seconds: it steps with the clock
        this.sampleT += this.minT - t
        console.log(`ct:rtc-set t=${this.minT} was=${t} seq=${seq}`)
    }

    async sampling() {
        const interval = this.prov.config.interval
        const epochLen = this.prov.config.epoch
        for (;;) {
            // the cycle at `next` must be over before the one after it is due
            const next = this.sampleT
            const at = this.dueAt(next)
            this.due[0] = at + 2 * interval * 1000
            await this.waitUntil(0, at)
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
            // (from `sampleT`, not `next`: setting the clock moves the schedule with it)
            let after = this.sampleT + interval
            const now = this.time.now()
            if (after + interval <= now) after += Math.floor((now - after) / interval) * interval
            this.sampleT = after
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
        await this.appendTimeAnchor()
        let r: ThermoReading
        const tr = ds.millis()
        try {
            r = await this.board.thermo.read()
        } catch (e) {
            r = { tc: 0, cj: 0, sr: 0, sflags: SFLAG_NO_READING }
        }
        // stamped when the conversion ended (docs/format.md 2.1): the counter read now, so `t` is its
        // second (extrapolated from an older read it could lag by that read's phase)
        await this.time.sync()
        const t = this.time.now()
        const uptime = clock.now()
        const readMs = ds.millis() - tr
        const seq = await this.add(s => sampleRecord(s, t, r.tc, r.cj, r.sr, r.sflags))
        // rd = VM wall ms of the driver read, ms = of the whole cycle (read + flash append)
        // (the compiler takes at most a handful of substitutions per template: two halves)
        const timing = `rd=${readMs} ms=${ds.millis() - t0}`
        const when = `seq=${seq} up=${uptime} t=${t}`
        console.log(`ct:sample ` + when + ` tc=${r.tc} cj=${r.cj} sr=${r.sr} fl=${r.sflags} ` + timing)
        const down = (r.sflags & SFLAG_NO_READING) !== 0
        if (this.sensorDown && !down) console.log("ct:sensor-ok reading again")
        this.sensorDown = down
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
