import * as ds from "@devicescript/core"
import { Clock, NO_TIME } from "../hal/clock"
import { LogStore, NONE } from "../flash/logstore"
import { EpochKeys } from "../chain/keys"
import { Provisioning } from "./config"
import {
    sampleRecord,
    bootRecord,
    configRecord,
    alarmRecord,
    sealRecord,
    batteryRecord,
    recordKind,
    recordSeq,
    recordTime,
    sealEpoch,
    KIND_SEAL,
    KIND_RULE_ALARM,
    SFLAG_NO_READING,
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
    W_FLAGS,
    WF_URGENT,
    WF_OUT_OF_BAND,
    WF_SENSOR_DOWN,
    W_BAT,
    W_BAT_AT,
} from "./state"
import { BatterySense, BatteryMonitor } from "./battery"
import { LidWatch } from "./lid"
import { Uploader } from "./uploader"
import { WakeScheduler, RUNNING } from "./scheduler"
import { TimeAnchors } from "./anchors"
import { RuleAlarms } from "./alarms"
import { Evictions } from "./evictions"
import { Watchdog, DUE_START, DUE_SAMPLING, DUE_GNSS } from "./watchdog"

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
    /** the lid sensor's level (true: open), when fitted; its edges reach the logger through `rtc` */
    lidOpen?: () => Promise<boolean>
}

/**
 * Which program made the records (the boot record's `fw`, 8 bytes): a build id compiled in, since the
 * runtime does not expose its program hash to the program (docs/security.md).
 */
export const FIRMWARE_ID = Buffer.from("ct-fw-03")

const ALARM_HYSTERESIS_C = 0.5
const HOUR = 3_600_000
const DAY = 24 * HOUR
/**
 * A start is a wake when the logger went to sleep, its clock chip ran on the main supply all along
 * (no backup switch-over, no loss) and `t` is at most this long after the planned wake (s): the
 * ESP32's sleep timer runs on an RC oscillator (a few % off). Earlier is a wake too (USB power).
 */
const WAKE_LATE_S = 120

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
    /** time records and what they place (devs/app/anchors.ts) */
    readonly anchors: TimeAnchors
    /** when each fiber runs next, and the sleep when all wait (devs/app/scheduler.ts) */
    readonly scheduler: WakeScheduler
    /** the configured alarm rules (devs/app/alarms.ts), when there are any */
    readonly rules: RuleAlarms
    /** the shipper's lid (devs/app/lid.ts), when the board has a lid sensor */
    readonly lid: LidWatch
    /** device time of the last boot or clock set: instants measured before it (a GNSS solution
     * requested just before the clock was set) are stamped no earlier, so `t` never steps back */
    minT = 0
    /** `t` of the last record appended: a record of an earlier instant (a GNSS solution requested
     * before the time record its step appended) is stamped no earlier, so `t` never steps back */
    lastT = 0
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
    // several fibers record (sampling, GNSS): each record is built and appended under this lock,
    // so its seq and the head it may state are the ones it really gets
    readonly appending = new Mutex()

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
        this.rules = RuleAlarms.of(this, prov.alarmRules, prov.config.interval)
        if (board.rtc && board.lidOpen) this.lid = new LidWatch(board.rtc, board.lidOpen)
        this.anchors = new TimeAnchors(this)
        this.scheduler = new WakeScheduler(this)
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
        if (this.rules) await this.rules.load()
        if (this.woke) this.resume(t)
        else await this.boot(hadState, t, !sealed && store.nextSeq > 0)
        // (a wake's kept instants are in the counter's own frame already: nothing to clamp)
        this.minT = this.woke ? 0 : t
        // the lid first: its edge may be why the logger woke, and its interrupt is for sleeps only
        if (this.lid) await this.lid.check(this, t)
        clock.spawn(runSampling, this)
        if (this.woke) this.uploads.resume(st.w, this.time)
        else this.uploads.start()
        // positions into the chain: the tracker's own fiber (a build without a receiver carries none of it)
        const gnss = this.board.gnss
        if (gnss) {
            if (this.woke) gnss.resume(st.w, this.time)
            this.scheduler.runAt[DUE_GNSS] = RUNNING
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
        this.anchors.resume(w, tm)
        const b = this.battery
        for (let i = 0; i < 3; i++) if (w[W_BAT + i]) b.readings.push(w[W_BAT + i])
        b.recordedAt = tm.unkeepOrNone(w[W_BAT_AT])
        // restore = clock ms from the program's start to here: the log, the keys and this state read back
        const restore = this.board.clock.now() - (this.board.startedAt || 0)
        console.log(`ct:wake t=${t} planned=${w[W_WAKE]} next=${this.store.nextSeq} restore=${restore}`)
    }

    /** an alarm's upload keeps the logger awake until it is sent */
    mustStayAwake(): boolean {
        return this.uploads.urgent
    }

    /** the clock was set (devs/app/anchors.ts): nothing may be stamped before it; the schedule, in device seconds, steps with it */
    clockSet(was: number, now: number) {
        this.minT = this.lastT = now
        this.sampleT += now - was
    }

    /** What RAM holds that a wake needs, into `st` (instants as device seconds), ST_ASLEEP set. */
    async saveWake(wake: number) {
        const st = this.st
        const w = st.w
        const tm = this.time
        w[W_WAKE] = tm.atCpu(wake)
        w[W_SEQ] = this.store.nextSeq + 1
        w[W_SLEPT] = tm.now()
        w[W_SAMPLE] = this.sampleT
        w[W_FLAGS] = (this.inBand ? 0 : WF_OUT_OF_BAND) | (this.uploads.urgent ? WF_URGENT : 0) | (this.sensorDown ? WF_SENSOR_DOWN : 0)
        this.anchors.save(w, tm)
        const b = this.battery
        for (let i = 0; i < 3; i++) w[W_BAT + i] = i < b.readings.length ? b.readings[i] : 0
        w[W_BAT_AT] = tm.keepOrNone(b.recordedAt)
        this.uploads.save(w, tm)
        if (this.board.gnss) this.board.gnss.save(w, tm)
        st.set(ST_ASLEEP, true)
        await st.save()
    }

    /** Build a record for the next seq and append it; resolves with its seq once it is in flash. */
    async add(make: (seq: number) => Buffer): Promise<number> {
        await this.appending.acquire()
        try {
            return await this.appendLocked(make(this.store.nextSeq))
        } finally {
            this.appending.release()
        }
    }

    /** append (the appending lock held); nothing later is stamped before it */
    private async appendLocked(rec: Buffer): Promise<number> {
        const seq = await this.store.append(rec)
        // (a rule alarm's `t` is the rule's instant, which may lie before: docs/format.md 2)
        if (recordKind(rec) !== KIND_RULE_ALARM) this.lastT = recordTime(rec)
        return seq
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
            await this.appendLocked(sealRecord(seq, t, this.keys.epoch, count, mac))
            await this.keys.evolve(seq, t)
            console.log(`ct:seal epoch=${this.keys.epoch - 1} seq=${seq} count=${count}`)
        } finally {
            this.appending.release()
        }
    }

    async sampling() {
        const interval = this.prov.config.interval
        const epochLen = this.prov.config.epoch
        for (;;) {
            // the cycle at `next` must be over before the one after it is due
            const next = this.sampleT
            const at = this.scheduler.dueAt(next)
            this.due[DUE_SAMPLING] = at + 2 * interval * 1000
            await this.scheduler.waitUntil(DUE_SAMPLING, at)
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
        this.due[DUE_SAMPLING] = 0
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
        if (this.rules) await this.rules.battery(t, b.mv)
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
        // the lid's edges since the last look (a logger kept awake looks at every sample)
        if (this.lid) await this.lid.check(this, this.time.now())
        await this.anchors.append()
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
        if (this.rules) await this.rules.sample(t, r.tc, r.sr !== 0 || r.sflags !== 0, this.st.boot)
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
