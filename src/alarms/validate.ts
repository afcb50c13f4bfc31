// Validation of rules written by people (a provisioning configuration, a shipment file): every
// problem at once, each naming its field (`rules[2].limitC: ...`), before anything is written.
import { BUCKETS, MAX_STATE_LEN, stateLength } from "./engine.js"
import { PRESETS, findPreset } from "./presets.js"
import type { AlarmRule, RuleSet } from "./types.js"

export class AlarmRuleError extends Error {
    constructor(readonly problems: string[]) {
        super(problems.join("; "))
        this.name = "AlarmRuleError"
    }
}

const FIELDS: Record<AlarmRule["type"], string[]> = {
    single: ["direction", "limitC", "inclusive", "minDurationS", "hysteresisC"],
    cumulative: ["direction", "limitC", "inclusive", "budgetS", "windowS"],
    mkt: ["limitC", "windowS", "minCoverageS"],
    fault: ["minDurationS"],
    gap: ["maxGapS"],
    battery: ["minMv", "hysteresisMv"],
    openings: ["maxPerDay", "maxOpenS"],
    band: ["lowC", "highC", "hysteresisC", "perBoot"],
}
const OPTIONAL = new Set(["hysteresisC", "windowS", "minCoverageS", "hysteresisMv", "perBoot"])
const YEAR_S = 366 * 86400

/** Problems with a list of rules (empty when it is fine); `at` prefixes every field name. */
export function ruleProblems(rules: unknown, intervalS: number, at = "rules"): string[] {
    const errs: string[] = []
    if (!Array.isArray(rules)) return [`${at} must be a list of rules or a preset name (${PRESETS.map(p => p.id).join(", ")})`]
    if (rules.length === 0) errs.push(`${at} is empty`)
    if (rules.length > 8) errs.push(`${at} has ${rules.length} rules; at most 8`)
    const ids = new Set<string>()
    rules.forEach((r0, i) => {
        const w = `${at}[${i}]`
        if (!r0 || typeof r0 !== "object" || Array.isArray(r0)) {
            errs.push(`${w} must be an object`)
            return
        }
        const r = r0 as Record<string, unknown>
        const type = r.type as AlarmRule["type"]
        if (!(typeof type === "string" && type in FIELDS)) {
            errs.push(`${w}.type must be one of ${Object.keys(FIELDS).join(", ")}, got ${JSON.stringify(r.type)}`)
            return
        }
        if (typeof r.id !== "string" || !/^[a-z0-9][a-z0-9-]{0,15}$/.test(r.id))
            errs.push(`${w}.id must be 1..16 of a-z 0-9 - (starting with a letter or digit)`)
        else if (ids.has(r.id)) errs.push(`${w}.id ${JSON.stringify(r.id)} is used twice`)
        else ids.add(r.id)
        if (r.name !== undefined && (typeof r.name !== "string" || r.name.length > 80))
            errs.push(`${w}.name must be a text of at most 80 characters`)
        for (const k of Object.keys(r))
            if (k !== "id" && k !== "name" && k !== "type" && !FIELDS[type].includes(k))
                errs.push(`${w}: unknown field ${JSON.stringify(k)} for a ${type} rule`)
        for (const k of FIELDS[type]) if (r[k] === undefined && !OPTIONAL.has(k)) errs.push(`${w}.${k} is missing`)
        const temp = (k: string) => {
            const v = r[k]
            if (v === undefined) return
            if (typeof v !== "number" || !Number.isFinite(v) || v < -270 || v > 1800)
                errs.push(`${w}.${k} must be a temperature in °C (-270..1800)`)
            else if (Math.abs(v * 100 - Math.round(v * 100)) > 1e-6) errs.push(`${w}.${k} must have at most 2 decimals`)
        }
        const secs = (k: string, min: number, max: number) => {
            const v = r[k]
            if (v === undefined) return
            if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
                errs.push(`${w}.${k} must be whole seconds in ${min}..${max}`)
        }
        const bool = (k: string) => {
            if (r[k] !== undefined && typeof r[k] !== "boolean") errs.push(`${w}.${k} must be true or false`)
        }
        if (FIELDS[type].includes("direction") && r.direction !== "above" && r.direction !== "below")
            errs.push(`${w}.direction must be "above" or "below"`)
        temp("limitC")
        temp("lowC")
        temp("highC")
        bool("inclusive")
        bool("perBoot")
        const h = r.hysteresisC
        if (h !== undefined && (typeof h !== "number" || !(h >= 0 && h <= 10))) errs.push(`${w}.hysteresisC must be 0..10 °C`)
        switch (type) {
            case "single":
                secs("minDurationS", 0, YEAR_S)
                break
            case "cumulative":
                secs("budgetS", 1, YEAR_S)
                secs("windowS", 3600, BUCKETS * 0xffff)
                if (typeof r.windowS === "number" && r.windowS % BUCKETS !== 0) errs.push(`${w}.windowS must be a multiple of ${BUCKETS} s`)
                if (typeof r.windowS === "number" && typeof r.budgetS === "number" && r.budgetS > r.windowS)
                    errs.push(`${w}.budgetS cannot exceed windowS`)
                break
            case "mkt":
                secs("windowS", 3600, YEAR_S)
                secs("minCoverageS", 0, YEAR_S)
                break
            case "fault":
                secs("minDurationS", 0, YEAR_S)
                break
            case "gap":
                secs("maxGapS", Math.max(1, intervalS), YEAR_S)
                break
            case "battery":
                if (typeof r.minMv !== "number" || !Number.isInteger(r.minMv) || r.minMv < 1000 || r.minMv > 20000)
                    errs.push(`${w}.minMv must be whole millivolts in 1000..20000`)
                if (
                    r.hysteresisMv !== undefined &&
                    (typeof r.hysteresisMv !== "number" || !Number.isInteger(r.hysteresisMv) || r.hysteresisMv < 0 || r.hysteresisMv > 2000)
                )
                    errs.push(`${w}.hysteresisMv must be whole millivolts in 0..2000`)
                break
            case "openings":
                if (typeof r.maxPerDay !== "number" || !Number.isInteger(r.maxPerDay) || r.maxPerDay < 1 || r.maxPerDay > 8)
                    errs.push(`${w}.maxPerDay must be 1..8`)
                secs("maxOpenS", 1, 86400)
                break
            case "band":
                if (typeof r.lowC === "number" && typeof r.highC === "number" && !(r.lowC < r.highC))
                    errs.push(`${w}.lowC must be below highC`)
                if (r.hysteresisC === undefined) errs.push(`${w}.hysteresisC is missing`)
                break
        }
    })
    if (!errs.length) {
        const n = stateLength({ intervalS, rules: rules as AlarmRule[] })
        if (n > MAX_STATE_LEN) errs.push(`${at}: the logger's state for these rules would be ${n} bytes, at most ${MAX_STATE_LEN}`)
    }
    return errs
}

/** A preset name or a list of rules, checked; throws AlarmRuleError with every problem. */
export function parseRules(v: unknown, intervalS: number, at = "rules"): RuleSet {
    if (!(Number.isInteger(intervalS) && intervalS >= 1 && intervalS <= 86400)) throw new AlarmRuleError([`interval must be 1..86400 s`])
    if (typeof v === "string") {
        const p = findPreset(v)
        if (!p) throw new AlarmRuleError([`${at}: unknown preset ${JSON.stringify(v)} (known: ${PRESETS.map(x => x.id).join(", ")})`])
        return { intervalS, rules: p.rules }
    }
    const errs = ruleProblems(v, intervalS, at)
    if (errs.length) throw new AlarmRuleError(errs)
    return { intervalS, rules: v as AlarmRule[] }
}
