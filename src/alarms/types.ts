// Alarm rules as data (docs/alarms.md): JSON-able, the same objects in a provisioning configuration,
// a shipment's preset, the vectors and the evaluator's input. Temperatures are in °C here (what a
// person writes); the evaluator compiles every threshold to an integer bound on the sample's `tc`
// count (1/128 °C), so the logger and the host compare integers, never rounded floats.

export type Direction = "above" | "below"

interface RuleBase {
    /** stable id, [a-z0-9-], at most 16 characters: it names the rule in records, reports and EPCIS */
    id: string
    /** a human name for reports (optional) */
    name?: string
}

/** Temperature in condition for at least `minDurationS` without a break (a judged reading out of condition, a fault or a gap). */
export interface SingleRule extends RuleBase {
    type: "single"
    direction: Direction
    limitC: number
    /** true: the limit itself is in condition (>= / <=); false: strictly beyond it (> / <) */
    inclusive: boolean
    /** 0: the first reading in condition raises */
    minDurationS: number
    /** clears only once a reading is this far back on the safe side of the limit (default 0) */
    hysteresisC?: number
}

/** Total time in condition, over the whole trip or within a rolling window, reaching `budgetS`. */
export interface CumulativeRule extends RuleBase {
    type: "cumulative"
    direction: Direction
    limitC: number
    inclusive: boolean
    budgetS: number
    /** absent: the whole trip (the alarm latches); else a rolling window of 12 UTC-aligned buckets */
    windowS?: number
}

/** Mean kinetic temperature (dH/R = 10000 K) of the judged readings above `limitC`. */
export interface MktRule extends RuleBase {
    type: "mkt"
    limitC: number
    /** absent: the whole trip; else consecutive UTC-aligned windows of this length */
    windowS?: number
    /** judged time a window needs before its MKT can raise (default 86400, or windowS when shorter) */
    minCoverageS?: number
}

/** Faulted readings (MAX31856 status or NO_READING) without a break for at least `minDurationS`. */
export interface FaultRule extends RuleBase {
    type: "fault"
    minDurationS: number
}

/** Server side: nothing received for more than `maxGapS` (between samples, or until "now"). */
export interface GapRule extends RuleBase {
    type: "gap"
    maxGapS: number
}

/** Battery level below `minMv` (from battery records, when the log has them). */
export interface BatteryRule extends RuleBase {
    type: "battery"
    minMv: number
    /** clears at minMv + hysteresisMv or more (default 100) */
    hysteresisMv?: number
}

/** Shipper openings: more than `maxPerDay` starts within 24 h, or one open longer than `maxOpenS`. */
export interface OpeningsRule extends RuleBase {
    type: "openings"
    maxPerDay: number
    maxOpenS: number
}

/**
 * The logger's one band as today's firmware judges it (devs/app/logger.ts): raised at the first
 * reading strictly above `highC` or strictly below `lowC`, cleared at the first reading inside
 * [lowC + h, highC - h]; no duration. `perBoot`: the state starts in band at every boot (the
 * firmware keeps it in RAM), so existing logs agree.
 */
export interface BandRule extends RuleBase {
    type: "band"
    lowC: number
    highC: number
    hysteresisC: number
    perBoot?: boolean
}

export type AlarmRule = SingleRule | CumulativeRule | MktRule | FaultRule | GapRule | BatteryRule | OpeningsRule | BandRule
export type RuleType = AlarmRule["type"]

/** A rule set: the rules and the sampling interval that bounds how long one reading counts. */
export interface RuleSet {
    /** nominal sampling interval (s); a reading counts for the time since the previous one, up to 2x this */
    intervalS: number
    rules: AlarmRule[]
}

/** One placed sample. */
export interface EvalSample {
    utcMs: number
    /** thermocouple count, 1/128 °C (ignored when faulted) */
    tc: number
    faulted: boolean
    /** boot counter and uptime: durations within one boot come from the device clock */
    boot?: number
    uptimeMs?: number
    seq?: number
}

export interface BatteryReading {
    utcMs: number
    mv: number
}

export interface OpeningInterval {
    startMs: number
    /** null: still open at the end of the log */
    endMs: number | null
}

export type Outcome = "ok" | "alarm" | "not-judged"

export interface AlarmEventOut {
    /** UTC seconds */
    t: number
    rule: string
    kind: "raise" | "clear"
    /** the reading behind the event (threshold and band rules) */
    tc?: number
    /** band rule: which side; openings: "count" or "duration" */
    why?: string
    seq?: number
    boot?: number
    uptimeMs?: number
}

export interface RuleResult {
    id: string
    type: RuleType
    outcome: Outcome
    /** raised now (at the end of the evaluation) */
    active: boolean
    events: AlarmEventOut[]
    /** seconds in condition (threshold rules: above/below; band: outside; fault: faulted; openings: open) */
    inConditionS: number
    /** worst judged reading in condition (count), null when none */
    worstTc: number | null
    /** mkt rule: over the trip, its MKT at the end; with windows, the largest window MKT (°C); null before any coverage */
    mktC: number | null
    /** openings rule: openings seen */
    openings: number | null
    /** why the outcome is not-judged: an input the log lacks (battery or lid records, MKT coverage), or time without a judged reading (gaps, faults) */
    notJudged?: "input" | "unknown-time"
    /** why the outcome is not-judged, or what limited it */
    notes: string[]
}

export interface EvalResult {
    rules: RuleResult[]
    /** MKT of every judged reading (°C), null without any */
    mktC: number | null
    /** seconds covered by judged readings, by faulted readings, and not covered (gaps) */
    judgedS: number
    faultS: number
    gapS: number
    /** the gaps (UTC seconds) longer than 2x the interval, and runs of faulted readings */
    gaps: { from: number; to: number }[]
    faults: { from: number; to: number }[]
    samples: number
}
