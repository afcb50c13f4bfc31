// Rule presets (docs/alarms.md, "Presets", with their sources). Every preset adds a sensor-fault
// rule of coldtrace's own: the WHO indicators judge a temperature, and a disconnected probe must
// not pass for one (a faulted reading is never in or out of band).
import type { AlarmRule, RuleSet } from "./types.js"

export interface AlarmPresetDef {
    id: string
    name: string
    /** where the numbers come from */
    source: string
    /** the band the report draws (and the legacy band rule) */
    band: { low: number; high: number } | null
    rules: AlarmRule[]
}

const H = 3600
const fault = (min: number): AlarmRule => ({ id: "fault", name: `sensor fault for ${min} min`, type: "fault", minDurationS: min * 60 })

/** the heat rules both WHO shipping indicator types share */
const WHO_HEAT: AlarmRule[] = [
    { id: "heat-45", name: ">= 45 °C single event 1 h", type: "single", direction: "above", limitC: 45, inclusive: true, minDurationS: H },
    {
        id: "heat-30",
        name: ">= 30 °C cumulative 10 h",
        type: "cumulative",
        direction: "above",
        limitC: 30,
        inclusive: true,
        budgetS: 10 * H,
    },
]

export const PRESETS: readonly AlarmPresetDef[] = [
    {
        id: "who-type-1",
        name: "WHO 10-day shipping indicator, type I",
        source: "WHO PQS E006/TR07 electronic shipping indicators (type I settings as in WHO's step-by-step interpretation guides, 2007-2009, and the LogTag USRID-16W1 manual)",
        band: { low: -0.5, high: 30 },
        rules: [
            ...WHO_HEAT,
            {
                id: "freeze",
                name: "<= -0.5 °C single event 1 h",
                type: "single",
                direction: "below",
                limitC: -0.5,
                inclusive: true,
                minDurationS: H,
            },
            fault(60),
        ],
    },
    {
        id: "who-type-2",
        name: "WHO 10-day shipping indicator, type II",
        source: "WHO PQS E006/TR07 electronic shipping indicators (type II settings as in WHO's step-by-step interpretation guides and the LogTag USRID-16W2 manual)",
        band: null,
        rules: [
            ...WHO_HEAT,
            {
                id: "heat-10",
                name: ">= 10 °C cumulative 20 h",
                type: "cumulative",
                direction: "above",
                limitC: 10,
                inclusive: true,
                budgetS: 20 * H,
            },
            fault(60),
        ],
    },
    {
        id: "who-30dtr",
        name: "WHO PQS 30-day temperature recorder",
        source: "WHO PQS E006 30-day temperature recorders (alarm settings as given in issue 13: heat > +8 °C 10 h continuous, freeze <= -0.5 °C 60 min continuous)",
        band: { low: -0.5, high: 8 },
        rules: [
            {
                id: "heat",
                name: "> +8 °C for 10 h continuous",
                type: "single",
                direction: "above",
                limitC: 8,
                inclusive: false,
                minDurationS: 10 * H,
            },
            {
                id: "freeze",
                name: "<= -0.5 °C for 60 min continuous",
                type: "single",
                direction: "below",
                limitC: -0.5,
                inclusive: true,
                minDurationS: H,
            },
            fault(60),
        ],
    },
    {
        id: "ultracold-mrna",
        name: "ultra-cold mRNA in a thermal shipper, −90 to −60 °C",
        source: "−90..−60 °C as issue 13 gives it (WHO's ULT storage overview, Feb 2021, gives −80..−60 °C); thermal shipper: open at most twice a day, close within 1 minute (the manufacturer's handling guidance as reported in the press; docs/alarms.md [S6])",
        band: { low: -90, high: -60 },
        rules: [
            { id: "warm", name: "> −60 °C", type: "single", direction: "above", limitC: -60, inclusive: false, minDurationS: 0 },
            { id: "cold", name: "< −90 °C", type: "single", direction: "below", limitC: -90, inclusive: false, minDurationS: 0 },
            { id: "mkt", name: "MKT over the trip > −60 °C", type: "mkt", limitC: -60 },
            { id: "openings", name: "at most 2 openings a day, each closed within 1 min", type: "openings", maxPerDay: 2, maxOpenS: 60 },
            fault(30),
        ],
    },
    {
        id: "frozen",
        name: "frozen, −25 to −15 °C",
        source: "frozen storage range −25..−15 °C (the range of the report's `frozen` preset)",
        band: { low: -25, high: -15 },
        rules: [
            { id: "warm", name: "> −15 °C", type: "single", direction: "above", limitC: -15, inclusive: false, minDurationS: 0 },
            { id: "cold", name: "< −25 °C", type: "single", direction: "below", limitC: -25, inclusive: false, minDurationS: 0 },
            { id: "mkt", name: "MKT over the trip > −15 °C", type: "mkt", limitC: -15 },
            fault(30),
        ],
    },
    {
        id: "fridge-2-8",
        name: "refrigerated, +2 to +8 °C",
        source: "labelled storage +2..+8 °C of refrigerated vaccines; any reading outside is an excursion (as the report's band); freeze <= −0.5 °C as WHO's freeze threshold",
        band: { low: 2, high: 8 },
        rules: [
            { id: "warm", name: "> +8 °C", type: "single", direction: "above", limitC: 8, inclusive: false, minDurationS: 0 },
            { id: "cold", name: "< +2 °C", type: "single", direction: "below", limitC: 2, inclusive: false, minDurationS: 0 },
            {
                id: "freeze",
                name: "<= −0.5 °C single event 1 h",
                type: "single",
                direction: "below",
                limitC: -0.5,
                inclusive: true,
                minDurationS: H,
            },
            { id: "mkt", name: "MKT over the trip > +8 °C", type: "mkt", limitC: 8 },
            fault(30),
        ],
    },
]

export function findPreset(id: string): AlarmPresetDef | undefined {
    return PRESETS.find(p => p.id === id)
}

/** The report's band presets (src/report/shipment.ts) as engine presets. */
export const REPORT_PRESET_MAP: Record<string, string> = {
    refrigerated: "fridge-2-8",
    frozen: "frozen",
    "ultra-cold": "ultracold-mrna",
}

/** Rules for a band with no preset of its own: any reading outside, plus the fault rule. */
export function bandRules(band: { low: number; high: number }): AlarmRule[] {
    return [
        { id: "warm", name: `> ${band.high} °C`, type: "single", direction: "above", limitC: band.high, inclusive: false, minDurationS: 0 },
        { id: "cold", name: `< ${band.low} °C`, type: "single", direction: "below", limitC: band.low, inclusive: false, minDurationS: 0 },
        fault(30),
    ]
}

/** Today's firmware: one band, 0.5 °C hysteresis, state in RAM (devs/app/logger.ts). */
export function legacyBandRule(band: { low: number; high: number }): AlarmRule {
    return { id: "device-band", name: "the logger's band", type: "band", lowC: band.low, highC: band.high, hysteresisC: 0.5, perBoot: true }
}

export function presetRuleSet(id: string, intervalS: number): RuleSet {
    const p = findPreset(id)
    if (!p) throw new RangeError(`unknown alarm preset ${JSON.stringify(id)} (known: ${PRESETS.map(x => x.id).join(", ")})`)
    return { intervalS, rules: p.rules }
}
