import { kvGet, kvSet } from "../flash/kv"
import { AlarmEngine, AlarmEvent, decodeRules, rulesInterval } from "../alarm/engine"
import { ruleAlarmRecord, BATTERY_CRITICAL } from "../record/record"

/** What the rule alarms need of the logger (devs/app/logger.ts). */
export interface RuleAlarmLog {
    add(make: (seq: number) => Buffer): Promise<number>
    /** the cell's level: from critical on an alarm waits for the daily upload */
    readonly battery: { level: number }
    /** an alarm goes out at once */
    readonly uploads: { wake(urgent: boolean): void }
}

/** the engine's state across sleeps and boots (docs/alarms.md 5) */
const STATE_KEY = "alst"

/**
 * The configured alarm rules on the logger (docs/alarms.md): every sample (and battery reading) is
 * fed to the engine, every raise and clear is a rule alarm record in the chain (docs/format.md 2,
 * kind 11), a raise is uploaded at once. The engine's state is a settings value, written after every
 * reading it was fed (when it changed), read at every start: a power cut loses at most that step.
 */
export class RuleAlarms {
    readonly engine: AlarmEngine
    private saved = ""

    constructor(
        readonly lg: RuleAlarmLog,
        rules: Buffer,
    ) {
        this.engine = new AlarmEngine(decodeRules(rules), rulesInterval(rules))
    }

    /** The rules of a provisioning, or undefined (none, or unusable: said on the console, logging goes on). */
    static of(lg: RuleAlarmLog, rules: Buffer, interval: number): RuleAlarms {
        if (!rules) return undefined
        try {
            if (rulesInterval(rules) !== interval)
                throw new RangeError(`compiled for ${rulesInterval(rules)} s, the interval is ${interval} s`)
            return new RuleAlarms(lg, rules)
        } catch (e: any) {
            console.log("ct:config-error alarms: " + e.message)
            return undefined
        }
    }

    /** the state the last run left (a new rule set starts afresh) */
    async load() {
        const b = await kvGet(STATE_KEY)
        if (b && this.engine.load(b)) this.saved = b.toString("hex")
    }

    /** write the state when it changed */
    async save() {
        const b = this.engine.save()
        const hex = b.toString("hex")
        if (hex === this.saved) return
        await kvSet(STATE_KEY, b)
        this.saved = hex
    }

    /** A sample (device time `t`, the run's boot counter): its events recorded, a raise sent at once. */
    async sample(t: number, tc: number, faulted: boolean, boot: number) {
        // within a boot the device clock measures the durations (docs/alarms.md 2.2): `t` is both
        this.engine.feed(t, tc, faulted, boot, t)
        await this.record()
    }

    /** A battery reading (mV) at device time `t`. */
    async battery(t: number, mv: number) {
        this.engine.feedBattery(t, mv)
        await this.record()
    }

    /** A lid record's edges (docs/alarms.md 3.7). */
    async lid(t: number, first: number, openEdge: boolean, count: number, open: boolean) {
        this.engine.feedLidRecord(t, first, openEdge, count, open)
        await this.record()
    }

    // (a method of its own: DeviceScript closures cannot capture variables of a loop body)
    private async recordOne(e: AlarmEvent) {
        const type = this.engine.rules[e.rule].code
        await this.lg.add(seq => ruleAlarmRecord(seq, e.t, e.rule, e.raise, e.why, type, e.value))
        console.log(`ct:rule-alarm rule=${e.rule} raise=${e.raise ? 1 : 0} t=${e.t} value=${e.value}`)
    }

    /** the events of the reading just fed into the chain, then the state (right after them: a power cut loses at most this step) */
    private async record() {
        let raised = false
        for (const e of this.engine.take()) {
            await this.recordOne(e)
            if (e.raise) raised = true
        }
        await this.save()
        // an excursion is reported at once (from a critical cell: only in the records, at the daily upload)
        if (raised && this.lg.battery.level < BATTERY_CRITICAL) this.lg.uploads.wake(true)
    }
}
