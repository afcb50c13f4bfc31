// The rule set as the logger runs it (docs/alarms.md, "The logger's rule set"): the host compiles the
// rules to integers once (compileRules: bounds in counts, durations in seconds) and writes them as one
// settings value, so the firmware carries no JSON, no presets and no float thresholds but MKT's.
import type { BandRule, MktRule, RuleSet } from "./types.js"
import { compileRules } from "./engine.js"

export const COMPILED_VERSION = 1
export const COMPILED_HEADER_LEN = 8
export const COMPILED_RULE_LEN = 24
/** the settings value's key */
export const COMPILED_KEY = "alarms"

/**
 * Layout (little-endian): version u8, rule count u8, 2 reserved, intervalS u32; then per rule 24 bytes:
 * type code u8, direction i8 (+1 above, -1 below, 0 none), flags u8 (b0 band: per boot), reserved u8,
 * then i32 `bound`, `clear`, `n1`, `n2`, `limit`:
 *   single/cumulative: bound, clear, n1 minimum duration / budget (s), n2 window (s, 0: the trip)
 *   mkt: n1 window (s, 0: the trip), n2 minimum coverage (s), limit the MKT limit in 1/100 °C
 *   fault: n1 minimum duration; gap: n1 maximum gap; battery: n1 minimum mV, n2 hysteresis mV
 *   openings: n1 at most per day, n2 longest open (s)
 *   band: bound the count at or above which a reading is above, clear the count at or below which it
 *   is below, n1..n2 the clear zone
 */
export function compiledRuleSet(rs: RuleSet): Buffer {
    const cs = compileRules(rs)
    const b = Buffer.alloc(COMPILED_HEADER_LEN + COMPILED_RULE_LEN * cs.length)
    b.writeUInt8(COMPILED_VERSION, 0)
    b.writeUInt8(cs.length, 1)
    b.writeUInt32LE(rs.intervalS, 4)
    cs.forEach((c, i) => {
        const o = COMPILED_HEADER_LEN + COMPILED_RULE_LEN * i
        const band = c.rule.type === "band"
        b.writeUInt8(c.code, o)
        b.writeInt8(c.dir, o + 1)
        b.writeUInt8(band && (c.rule as BandRule).perBoot ? 1 : 0, o + 2)
        b.writeInt32LE(band ? c.hi : c.bound, o + 4)
        b.writeInt32LE(band ? c.lo : c.clear, o + 8)
        b.writeInt32LE(band ? c.clearLo : c.n1, o + 12)
        b.writeInt32LE(band ? c.clearHi : c.n2, o + 16)
        b.writeInt32LE(c.rule.type === "mkt" ? Math.round((c.rule as MktRule).limitC * 100) : 0, o + 20)
    })
    return b
}
