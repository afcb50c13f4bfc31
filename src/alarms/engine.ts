// The alarm evaluator (docs/alarms.md): an incremental state machine fed one sample (or battery
// reading, or lid event) at a time, written to be ported line by line to DeviceScript: integer
// counts (1/128 °C) and whole seconds everywhere but MKT, a small fixed state that serialises to
// bytes (the logger keeps it in a settings value across sleeps and power cuts), no I/O.
import type {
    AlarmEventOut,
    AlarmRule,
    BandRule,
    MktRule,
    BatteryReading,
    EvalResult,
    EvalSample,
    OpeningInterval,
    Outcome,
    RuleResult,
    RuleSet,
    RuleType,
} from "./types.js"

/** MKT: dH/R in kelvin (dH = 83.144 kJ/mol, R = 8.3144 J/(mol K)). */
export const MKT_DH_R = 10000
export const KELVIN = 273.15
/** State layout version (docs/alarms.md, "State"). */
export const STATE_VERSION = 1
export const HEADER_LEN = 40
export const RULE_CORE_LEN = 20
/** Buckets of a rolling window. */
export const BUCKETS = 12
/** The largest state the logger keeps (a settings value is at most 192 bytes, docs/format.md 5). */
export const MAX_STATE_LEN = 192
export const DAY_S = 86400

// per-rule flag bits
const F_ACTIVE = 0x01
const F_EVER = 0x02
const F_POSSIBLE = 0x04
const F_WORST = 0x08
const F_SIDE_BELOW = 0x10 // band: the active alarm is below the band
const F_WORST2 = 0x20 // band: a reading below the band was seen
const F_COVERED = 0x40 // mkt: a window reached its coverage; battery: a reading was seen

const TYPE_CODE: Record<RuleType, number> = { single: 1, cumulative: 2, mkt: 3, fault: 4, gap: 5, battery: 6, openings: 7, band: 8 }

/** Integer bounds of a threshold: above: tc >= bound is in condition; below: tc <= bound. */
function fix6(x: number): number {
    return Math.round(x * 1e6) / 1e6
}
export function aboveBound(limitC: number, inclusive: boolean): number {
    const x = fix6(limitC * 128)
    return inclusive ? Math.ceil(x) : Math.floor(x) + 1
}
export function belowBound(limitC: number, inclusive: boolean): number {
    const x = fix6(limitC * 128)
    return inclusive ? Math.floor(x) : Math.ceil(x) - 1
}

/** A rule compiled to integers. */
export interface Compiled {
    rule: AlarmRule
    code: number
    /** threshold rules: +1 above, -1 below */
    dir: number
    /** in condition: dir > 0 ? tc >= bound : tc <= bound */
    bound: number
    /** cleared by a reading with dir > 0 ? tc <= clear : tc >= clear */
    clear: number
    /** band: out above at tc >= hi, out below at tc <= lo, clear zone [clearLo, clearHi] */
    hi: number
    lo: number
    clearLo: number
    clearHi: number
    /** seconds: minimum duration, budget, window, coverage, ... */
    n1: number
    n2: number
    extLen: number
    off: number
}

export function compileRules(rs: RuleSet): Compiled[] {
    let off = HEADER_LEN
    return rs.rules.map(r => {
        const c: Compiled = {
            rule: r,
            code: TYPE_CODE[r.type],
            dir: 0,
            bound: 0,
            clear: 0,
            hi: 0,
            lo: 0,
            clearLo: 0,
            clearHi: 0,
            n1: 0,
            n2: 0,
            extLen: 0,
            off,
        }
        switch (r.type) {
            case "single":
            case "cumulative": {
                c.dir = r.direction === "above" ? 1 : -1
                c.bound = c.dir > 0 ? aboveBound(r.limitC, r.inclusive) : belowBound(r.limitC, r.inclusive)
                const h = r.type === "single" ? Math.round((r.hysteresisC ?? 0) * 128) : 0
                c.clear = c.dir > 0 ? c.bound - 1 - h : c.bound + 1 + h
                if (r.type === "single") c.n1 = r.minDurationS
                else {
                    c.n1 = r.budgetS
                    c.n2 = r.windowS ?? 0
                    if (c.n2) c.extLen = 4 * BUCKETS
                }
                break
            }
            case "mkt":
                c.n1 = r.windowS ?? 0
                c.n2 = r.minCoverageS ?? Math.min(DAY_S, r.windowS ?? DAY_S)
                c.extLen = 16
                break
            case "fault":
                c.n1 = r.minDurationS
                break
            case "gap":
                c.n1 = r.maxGapS
                break
            case "battery":
                c.n1 = r.minMv
                c.n2 = r.hysteresisMv ?? 100
                break
            case "openings":
                c.n1 = r.maxPerDay
                c.n2 = r.maxOpenS
                c.extLen = 4 * r.maxPerDay
                break
            case "band":
                c.hi = aboveBound(r.highC, false)
                c.lo = belowBound(r.lowC, false)
                c.clearLo = aboveBound(r.lowC + r.hysteresisC, true)
                c.clearHi = belowBound(r.highC - r.hysteresisC, true)
                break
        }
        off += RULE_CORE_LEN + c.extLen
        return c
    })
}

/** Bytes of the serialised state for a rule set. */
export function stateLength(rs: RuleSet): number {
    const cs = compileRules(rs)
    return cs.length ? cs[cs.length - 1].off + RULE_CORE_LEN + cs[cs.length - 1].extLen : HEADER_LEN
}

/** The mutable state of one rule: exactly what the bytes hold. */
interface RuleState {
    flags: number
    raises: number
    a: number
    b: number
    inS: number
    worst: number
    /** rolling cumulative: in-condition and unjudged seconds per bucket; openings: ring of starts */
    u: number[]
    v: number[]
    /** mkt: window sum of t * e^(-dH/RT), largest window MKT (NaN none) */
    sum: number
    maxMkt: number
}

export interface EngineState {
    havePrev: boolean
    prevFaulted: boolean
    prevT: number
    prevBoot: number
    prevUpS: number
    judgedS: number
    faultS: number
    gapS: number
    mktSum: number
    mktS: number
    rules: RuleState[]
}

function freshRule(c: Compiled): RuleState {
    return {
        flags: 0,
        raises: 0,
        a: 0,
        b: 0,
        inS: 0,
        worst: 0,
        u: c.code === 2 && c.n2 ? new Array(BUCKETS).fill(0) : c.code === 7 ? new Array(c.n1).fill(0) : [],
        v: c.code === 2 && c.n2 ? new Array(BUCKETS).fill(0) : [],
        sum: 0,
        maxMkt: NaN,
    }
}

/** Host-only trace kept beside the state (the logger records events in its chain instead). */
export interface Trace {
    events: AlarmEventOut[]
    gaps: { from: number; to: number }[]
    faults: { from: number; to: number }[]
    samples: number
    /** inputs the caller did provide: battery readings, opening intervals */
    haveOpenings: boolean
}

export function newTrace(): Trace {
    return { events: [], gaps: [], faults: [], samples: 0, haveOpenings: false }
}

const U16 = 0xffff
const sat16 = (x: number) => (x > U16 ? U16 : x)
const U32 = 0xffffffff
const sat32 = (x: number) => (x > U32 ? U32 : x)

/** e^(-dH/(R T)) for a count. */
export function mktTerm(tc: number): number {
    return Math.exp(-MKT_DH_R / (tc / 128 + KELVIN))
}
/** MKT in °C from the sums. */
export function mktOf(sum: number, seconds: number): number {
    return MKT_DH_R / -Math.log(sum / seconds) - KELVIN
}

export class AlarmEngine {
    readonly compiled: Compiled[]
    readonly cap: number
    st: EngineState
    trace: Trace

    constructor(
        readonly ruleSet: RuleSet,
        state?: EngineState | Buffer,
        trace?: Trace,
    ) {
        this.compiled = compileRules(ruleSet)
        this.cap = 2 * ruleSet.intervalS
        this.st = Buffer.isBuffer(state)
            ? decodeState(ruleSet, state)
            : (state ?? {
                  havePrev: false,
                  prevFaulted: false,
                  prevT: 0,
                  prevBoot: 0,
                  prevUpS: 0,
                  judgedS: 0,
                  faultS: 0,
                  gapS: 0,
                  mktSum: 0,
                  mktS: 0,
                  rules: this.compiled.map(freshRule),
              })
        this.trace = trace ?? newTrace()
    }

    private emit(c: Compiled, s: RuleState, kind: "raise" | "clear", t: number, extra: Partial<AlarmEventOut> = {}): AlarmEventOut {
        if (kind === "raise") {
            s.flags |= F_ACTIVE | F_EVER
            if (s.raises < 255) s.raises++
        } else s.flags &= ~F_ACTIVE
        // (host only: the logger writes an alarm record instead)
        const e: AlarmEventOut = Object.assign({ t, rule: c.rule.id, kind }, extra)
        for (const k of ["tc", "why", "seq", "boot", "uptimeMs"] as const) if (e[k] === undefined) delete e[k]
        this.trace.events.push(e)
        return e
    }

    private worstIn(c: Compiled, s: RuleState, tc: number) {
        if (!(s.flags & F_WORST) || (c.dir > 0 ? tc > s.worst : tc < s.worst)) s.worst = tc
        s.flags |= F_WORST
    }

    /** One sample; returns the events it caused. */
    feed(x: EvalSample): AlarmEventOut[] {
        const st = this.st
        const out0 = this.trace.events.length
        const t = Math.floor(x.utcMs / 1000)
        const up = x.uptimeMs === undefined ? null : Math.floor(x.uptimeMs / 1000)
        let dt: number | null = null
        if (st.havePrev) {
            if (x.boot !== undefined && up !== null && x.boot === st.prevBoot) dt = up - st.prevUpS
            else dt = t - st.prevT
        }
        const newBoot = st.havePrev && x.boot !== undefined && x.boot !== st.prevBoot
        let cover = 0
        let gap = 0
        if (dt !== null && dt > 0) {
            if (dt <= this.cap) cover = dt
            else gap = dt
        }
        const faulted = x.faulted
        const tc = x.tc
        // whole-log figures
        st.gapS = sat32(st.gapS + gap)
        if (gap) this.trace.gaps.push({ from: st.prevT, to: t })
        if (faulted) {
            st.faultS = sat32(st.faultS + cover)
            const f = this.trace.faults.at(-1)
            if (f && st.prevFaulted && !gap) f.to = t
            else this.trace.faults.push({ from: t, to: t })
        } else {
            st.judgedS = sat32(st.judgedS + cover)
            if (cover) {
                st.mktSum += cover * mktTerm(tc)
                st.mktS += cover
            }
        }
        const ev: Partial<AlarmEventOut> = { seq: x.seq, boot: x.boot, uptimeMs: x.uptimeMs }
        // one step per rule, a method per type: DeviceScript closures cannot capture loop variables
        for (let i = 0; i < this.compiled.length; i++) {
            const c = this.compiled[i]
            const s = st.rules[i]
            switch (c.code) {
                case 1:
                    this.stepSingle(c, s, t, tc, faulted, cover, gap, ev)
                    break
                case 2:
                    this.stepCumulative(c, s, t, tc, faulted, cover, gap, ev)
                    break
                case 3:
                    this.stepMkt(c, s, t, tc, faulted, cover, ev)
                    break
                case 4:
                    this.stepFault(c, s, t, tc, faulted, cover, gap, ev)
                    break
                case 5:
                    this.stepGap(c, s, t, dt, ev)
                    break
                case 7:
                    this.tickOpen(c, s, t)
                    break
                case 8:
                    this.stepBand(c, s, t, tc, faulted, cover, gap, newBoot, ev)
                    break
                default:
                    break
            }
        }
        st.havePrev = true
        st.prevFaulted = faulted
        st.prevT = t
        if (x.boot !== undefined) st.prevBoot = x.boot
        if (up !== null) st.prevUpS = up
        this.trace.samples++
        return this.trace.events.slice(out0)
    }

    private evTc(tc: number, ev: Partial<AlarmEventOut>): Partial<AlarmEventOut> {
        return { tc, seq: ev.seq, boot: ev.boot, uptimeMs: ev.uptimeMs }
    }

    /** single: `a` judged run, `b` worst-case run (unknown time counted as in condition) */
    private stepSingle(
        c: Compiled,
        s: RuleState,
        t: number,
        tc: number,
        faulted: boolean,
        cover: number,
        gap: number,
        ev: Partial<AlarmEventOut>,
    ) {
        const inCond = !faulted && (c.dir > 0 ? tc >= c.bound : tc <= c.bound)
        if (gap) {
            s.a = 0
            s.b = sat32(s.b + gap)
            this.possibleSingle(c, s)
        }
        if (faulted) {
            s.a = 0
            s.b = sat32(s.b + cover)
            this.possibleSingle(c, s)
        } else if (inCond) {
            s.a = sat32(s.a + cover)
            s.b = sat32(s.b + cover)
            s.inS = sat32(s.inS + cover)
            this.worstIn(c, s, tc)
            if (!(s.flags & F_ACTIVE) && s.a >= c.n1) this.emit(c, s, "raise", t, this.evTc(tc, ev))
            this.possibleSingle(c, s)
        } else {
            // a judged reading out of condition ends both runs (after the worst case was checked)
            s.a = 0
            s.b = 0
            if (s.flags & F_ACTIVE && (c.dir > 0 ? tc <= c.clear : tc >= c.clear)) this.emit(c, s, "clear", t, this.evTc(tc, ev))
        }
    }

    /** the worst case reached the duration with unknown time in it: unknown time could hide the alarm */
    private possibleSingle(c: Compiled, s: RuleState) {
        if (!(s.flags & F_ACTIVE) && s.b > s.a && s.b >= c.n1) s.flags |= F_POSSIBLE
    }

    /** cumulative: trip (`a` unknown seconds, latches) or rolling window (`a` bucket index, buckets in `u`/`v`) */
    private stepCumulative(
        c: Compiled,
        s: RuleState,
        t: number,
        tc: number,
        faulted: boolean,
        cover: number,
        gap: number,
        ev: Partial<AlarmEventOut>,
    ) {
        const inCond = !faulted && (c.dir > 0 ? tc >= c.bound : tc <= c.bound)
        const unk = gap + (faulted ? cover : 0)
        if (inCond) {
            s.inS = sat32(s.inS + cover)
            this.worstIn(c, s, tc)
        }
        if (!c.n2) {
            s.a = sat32(s.a + unk)
            if (!(s.flags & F_ACTIVE) && s.inS >= c.n1) this.emit(c, s, "raise", t, this.evTc(tc, ev))
            if (!(s.flags & F_ACTIVE) && s.a > 0 && s.inS + s.a >= c.n1) s.flags |= F_POSSIBLE
            return
        }
        const len = c.n2 / BUCKETS
        const idx = Math.floor(t / len)
        if (idx > s.a) {
            const k = Math.min(BUCKETS, idx - s.a)
            for (let j = 1; j <= k; j++) {
                s.u[(s.a + j) % BUCKETS] = 0
                s.v[(s.a + j) % BUCKETS] = 0
            }
            s.a = idx
        }
        const at = s.a % BUCKETS
        if (inCond) s.u[at] = sat16(s.u[at] + cover)
        s.v[at] = sat16(s.v[at] + unk)
        let win = 0
        let unkWin = 0
        for (let j = 0; j < BUCKETS; j++) {
            win += s.u[j]
            unkWin += s.v[j]
        }
        if (!(s.flags & F_ACTIVE) && win >= c.n1) this.emit(c, s, "raise", t, this.evTc(tc, ev))
        else if (s.flags & F_ACTIVE && win < c.n1) this.emit(c, s, "clear", t, this.evTc(tc, ev))
        if (!(s.flags & F_ACTIVE) && unkWin > 0 && win + unkWin >= c.n1) s.flags |= F_POSSIBLE
    }

    /** mkt: `a` judged seconds in the window, `b` window index, `sum` the window's sum */
    private stepMkt(c: Compiled, s: RuleState, t: number, tc: number, faulted: boolean, cover: number, ev: Partial<AlarmEventOut>) {
        const idx = c.n1 ? Math.floor(t / c.n1) : 0
        if (idx !== s.b) {
            if (s.flags & F_ACTIVE) this.emit(c, s, "clear", t, ev)
            s.a = 0
            s.sum = 0
            s.b = idx
        }
        if (!faulted && cover) {
            s.a = sat32(s.a + cover)
            s.sum += cover * mktTerm(tc)
            s.inS = sat32(s.inS + cover)
        }
        if (s.a >= c.n2 && s.a > 0) {
            s.flags |= F_COVERED
            const m = mktOf(s.sum, s.a)
            if (!(s.maxMkt >= m)) s.maxMkt = m
            const over = m > (c.rule as MktRule).limitC
            if (!(s.flags & F_ACTIVE) && over) this.emit(c, s, "raise", t, ev)
            else if (s.flags & F_ACTIVE && !over) this.emit(c, s, "clear", t, ev)
        }
    }

    /** fault: `a` faulted run */
    private stepFault(
        c: Compiled,
        s: RuleState,
        t: number,
        tc: number,
        faulted: boolean,
        cover: number,
        gap: number,
        ev: Partial<AlarmEventOut>,
    ) {
        if (gap) s.a = 0
        if (faulted) {
            s.a = sat32(s.a + cover)
            s.inS = sat32(s.inS + cover)
            if (!(s.flags & F_ACTIVE) && s.a >= c.n1) this.emit(c, s, "raise", t, ev)
        } else {
            s.a = 0
            if (s.flags & F_ACTIVE) this.emit(c, s, "clear", t, this.evTc(tc, ev))
        }
    }

    /** gap (server side): more than n1 seconds since the previous sample */
    private stepGap(c: Compiled, s: RuleState, t: number, dt: number | null, ev: Partial<AlarmEventOut>) {
        if (dt === null || dt <= c.n1) return
        s.inS = sat32(s.inS + dt)
        if (!(s.flags & F_WORST) || dt > s.worst) s.worst = dt
        s.flags |= F_WORST
        this.emit(c, s, "raise", this.st.prevT + c.n1)
        this.emit(c, s, "clear", t, ev)
    }

    /** band (today's firmware): `a` highest reading above, `b` lowest below */
    private stepBand(
        c: Compiled,
        s: RuleState,
        t: number,
        tc: number,
        faulted: boolean,
        cover: number,
        gap: number,
        newBoot: boolean,
        ev: Partial<AlarmEventOut>,
    ) {
        if (newBoot && (c.rule as BandRule).perBoot) s.flags &= ~(F_ACTIVE | F_SIDE_BELOW)
        if ((faulted && cover) || gap) s.flags |= F_POSSIBLE
        if (faulted) return
        const above = tc >= c.hi
        const below = tc <= c.lo
        if (above || below) {
            s.inS = sat32(s.inS + cover)
            if (above && (!(s.flags & F_WORST) || tc > s.a)) {
                s.a = tc
                s.flags |= F_WORST
            }
            if (below && (!(s.flags & F_WORST2) || tc < s.b)) {
                s.b = tc
                s.flags |= F_WORST2
            }
            if (!(s.flags & F_ACTIVE)) {
                if (below) s.flags |= F_SIDE_BELOW
                else s.flags &= ~F_SIDE_BELOW
                const e = this.evTc(tc, ev)
                e.why = above ? "above" : "below"
                this.emit(c, s, "raise", t, e)
            }
        } else if (s.flags & F_ACTIVE && tc >= c.clearLo && tc <= c.clearHi) this.emit(c, s, "clear", t, this.evTc(tc, ev))
    }

    /** A battery reading (mV). */
    feedBattery(b: BatteryReading): AlarmEventOut[] {
        const out0 = this.trace.events.length
        const t = Math.floor(b.utcMs / 1000)
        for (let i = 0; i < this.compiled.length; i++) {
            const c = this.compiled[i]
            if (c.code !== 6) continue
            const s = this.st.rules[i]
            s.flags |= F_COVERED
            if (b.mv < c.n1) {
                if (!(s.flags & F_WORST) || b.mv < s.worst) s.worst = b.mv
                s.flags |= F_WORST
                if (!(s.flags & F_ACTIVE)) this.emit(c, s, "raise", t)
            } else if (s.flags & F_ACTIVE && b.mv >= c.n1 + c.n2) this.emit(c, s, "clear", t)
        }
        return this.trace.events.slice(out0)
    }

    private tickOpen(c: Compiled, s: RuleState, t: number) {
        if (s.a && !(s.flags & F_ACTIVE) && t - (s.a - 1) > c.n2) this.emit(c, s, "raise", s.a - 1 + c.n2, { why: "duration" })
    }

    /** The lid opened (`open` true) or closed at `utcMs`. */
    feedLid(utcMs: number, open: boolean): AlarmEventOut[] {
        const out0 = this.trace.events.length
        const t = Math.floor(utcMs / 1000)
        this.trace.haveOpenings = true
        for (let i = 0; i < this.compiled.length; i++) {
            const c = this.compiled[i]
            if (c.code === 7) this.stepLid(c, this.st.rules[i], t, open)
        }
        return this.trace.events.slice(out0)
    }

    /** A lid record's edges (docs/format.md 2.5), fed in order. */
    feedLidRecord(r: LidFields): AlarmEventOut[] {
        const out0 = this.trace.events.length
        for (const e of lidEdges(r)) this.feedLid(e.t * 1000, e.open)
        return this.trace.events.slice(out0)
    }

    /** openings: `a` start of the open opening + 1 (0 closed), `b` openings seen, `u` ring of the last starts */
    private stepLid(c: Compiled, s: RuleState, t: number, open: boolean) {
        this.tickOpen(c, s, t)
        if (open) {
            if (s.a) return // already open
            let tooMany = false
            if (s.b >= c.n1) tooMany = t - s.u[s.b % c.n1] < DAY_S
            s.u[s.b % c.n1] = t
            s.b = sat32(s.b + 1)
            s.a = t + 1
            if (tooMany && !(s.flags & F_ACTIVE)) this.emit(c, s, "raise", t, { why: "count" })
        } else if (s.a) {
            s.inS = sat32(s.inS + (t - (s.a - 1)))
            s.a = 0
            if (s.flags & F_ACTIVE) this.emit(c, s, "clear", t)
        }
    }

    /** The serialised state (docs/alarms.md, "State"). */
    save(): Buffer {
        return encodeState(this.ruleSet, this.st)
    }

    /** Results at `nowMs` (default: the last sample): a gap rule also judges the time since the last sample. */
    finish(o: { nowMs?: number } = {}): EvalResult {
        const st = this.st
        const now = o.nowMs === undefined ? st.prevT : Math.floor(o.nowMs / 1000)
        const rules: RuleResult[] = this.compiled.map((c, i) => {
            const s = st.rules[i]
            const r = c.rule
            const notes: string[] = []
            let active = !!(s.flags & F_ACTIVE)
            let ever = !!(s.flags & F_EVER)
            const events = this.trace.events.filter(e => e.rule === r.id)
            if (r.type === "gap" && st.havePrev && now - st.prevT > c.n1) {
                events.push({ t: st.prevT + c.n1, rule: r.id, kind: "raise" })
                active = ever = true
                notes.push(`nothing received since ${new Date(st.prevT * 1000).toISOString()}`)
            }
            if (r.type === "openings" && s.a && !active && now - (s.a - 1) > c.n2) {
                events.push({ t: s.a - 1 + c.n2, rule: r.id, kind: "raise", why: "duration" })
                active = ever = true
            }
            let outcome: Outcome = ever ? "alarm" : "ok"
            let why: RuleResult["notJudged"] = "input"
            if (!ever) {
                if (r.type === "battery" && !(s.flags & F_COVERED)) {
                    outcome = "not-judged"
                    notes.push("no battery records in the log")
                } else if (r.type === "openings" && !this.trace.haveOpenings) {
                    outcome = "not-judged"
                    notes.push("no lid records in the log")
                } else if (r.type === "mkt" && !(s.flags & F_COVERED)) {
                    outcome = "not-judged"
                    notes.push(`no window with ${c.n2} s of judged readings`)
                } else if (s.flags & F_POSSIBLE) {
                    outcome = "not-judged"
                    why = "unknown-time"
                    notes.push("time without a judged reading (gaps, faulted readings) could have reached the limit")
                }
            }
            if (!st.havePrev && r.type !== "battery" && r.type !== "openings") {
                outcome = ever ? outcome : "not-judged"
                if (!ever) notes.push("no samples")
            }
            let worstTc: number | null = null
            if (r.type === "band") {
                const hiD = s.flags & F_WORST ? s.a - c.hi : -Infinity
                const loD = s.flags & F_WORST2 ? c.lo - s.b : -Infinity
                worstTc = hiD === -Infinity && loD === -Infinity ? null : hiD >= loD ? s.a : s.b
            } else if (s.flags & F_WORST && r.type !== "gap" && r.type !== "battery") worstTc = s.worst
            return {
                id: r.id,
                type: r.type,
                outcome,
                active,
                events,
                inConditionS: s.inS,
                worstTc,
                // the trip's MKT at the end; with windows, the largest window MKT
                mktC: r.type !== "mkt" || Number.isNaN(s.maxMkt) ? null : !c.n1 && s.a > 0 ? mktOf(s.sum, s.a) : s.maxMkt,
                openings: r.type === "openings" ? s.b : null,
                ...(outcome === "not-judged" ? { notJudged: why } : {}),
                notes,
            }
        })
        return {
            rules,
            mktC: st.mktS ? mktOf(st.mktSum, st.mktS) : null,
            judgedS: st.judgedS,
            faultS: st.faultS,
            gapS: st.gapS,
            gaps: this.trace.gaps,
            faults: this.trace.faults,
            samples: this.trace.samples,
        }
    }
}

/** What a lid record (docs/format.md kind 12) says, in device seconds. */
export interface LidFields {
    t: number
    first: number
    openEdge: boolean
    count: number
    open: boolean
}

/**
 * The openings and closings a lid record states, in order (docs/format.md 2.5): before it the lid was
 * closed when the clock watched for openings (`openEdge`), open otherwise; `count` such edges, the
 * first at `first`, each later one (with the opposite edge before it) at `t`; then an edge to the
 * level read at `t` when the lid is not there yet.
 */
export function lidEdges(r: LidFields): { t: number; open: boolean }[] {
    const out: { t: number; open: boolean }[] = []
    let open = !r.openEdge
    if (r.count) {
        out.push({ t: r.first, open: r.openEdge })
        for (let i = 1; i < r.count; i++) out.push({ t: r.t, open: !r.openEdge }, { t: r.t, open: r.openEdge })
        open = r.openEdge
    }
    if (open !== r.open) out.push({ t: r.t, open: r.open })
    return out
}

/** Batch evaluation: samples in log order; battery readings and lid events merged in by time (samples first at equal times). */
export function evaluate(
    rs: RuleSet,
    samples: EvalSample[],
    o: { battery?: BatteryReading[]; openings?: OpeningInterval[]; nowMs?: number } = {},
): EvalResult {
    const eng = new AlarmEngine(rs)
    type Ev = { t: number; f: () => void }
    const others: Ev[] = []
    for (const b of o.battery ?? []) others.push({ t: b.utcMs, f: () => eng.feedBattery(b) })
    for (const op of o.openings ?? []) {
        others.push({ t: op.startMs, f: () => eng.feedLid(op.startMs, true) })
        if (op.endMs !== null) {
            const end = op.endMs
            others.push({ t: end, f: () => eng.feedLid(end, false) })
        }
    }
    if (o.openings) eng.trace.haveOpenings = true
    others.sort((a, b) => a.t - b.t)
    let k = 0
    for (const s of samples) {
        while (k < others.length && others[k].t < s.utcMs) others[k++].f()
        eng.feed(s)
    }
    while (k < others.length) others[k++].f()
    return eng.finish({ nowMs: o.nowMs })
}

// ---- state bytes ----

/** Serialise (layout in docs/alarms.md). */
export function encodeState(rs: RuleSet, st: EngineState): Buffer {
    const cs = compileRules(rs)
    const buf = Buffer.alloc(stateLength(rs))
    buf.writeUInt8(STATE_VERSION, 0)
    buf.writeUInt8(cs.length, 1)
    buf.writeUInt8((st.havePrev ? 1 : 0) | (st.prevFaulted ? 2 : 0), 2)
    buf.writeUInt32LE(st.prevT >>> 0, 4)
    buf.writeUInt32LE(st.prevBoot >>> 0, 8)
    buf.writeUInt32LE(st.prevUpS >>> 0, 12)
    buf.writeUInt32LE(st.judgedS, 16)
    buf.writeUInt32LE(st.faultS, 20)
    buf.writeUInt32LE(st.gapS, 24)
    buf.writeUInt32LE(st.mktS, 28)
    buf.writeDoubleLE(st.mktSum, 32)
    cs.forEach((c, i) => {
        const s = st.rules[i]
        const o = c.off
        buf.writeUInt8(s.flags, o)
        buf.writeUInt8(s.raises, o + 1)
        buf.writeUInt8(c.code, o + 2)
        buf.writeInt32LE(s.a | 0, o + 4)
        buf.writeInt32LE(s.b | 0, o + 8)
        buf.writeUInt32LE(s.inS, o + 12)
        buf.writeInt32LE(s.worst | 0, o + 16)
        const e = o + RULE_CORE_LEN
        if (c.code === 2 && c.n2) {
            for (let j = 0; j < BUCKETS; j++) {
                buf.writeUInt16LE(s.u[j], e + 2 * j)
                buf.writeUInt16LE(s.v[j], e + 2 * BUCKETS + 2 * j)
            }
        } else if (c.code === 3) {
            buf.writeDoubleLE(s.sum, e)
            buf.writeDoubleLE(s.maxMkt, e + 8)
        } else if (c.code === 7) for (let j = 0; j < c.n1; j++) buf.writeUInt32LE(s.u[j] >>> 0, e + 4 * j)
    })
    return buf
}

/** Read state bytes back; throws RangeError when they do not belong to this rule set. */
export function decodeState(rs: RuleSet, buf: Buffer): EngineState {
    const cs = compileRules(rs)
    if (buf.length !== stateLength(rs)) throw new RangeError(`alarm state is ${buf.length} bytes, this rule set needs ${stateLength(rs)}`)
    if (buf[0] !== STATE_VERSION || buf[1] !== cs.length) throw new RangeError("alarm state of another version or rule set")
    const st: EngineState = {
        havePrev: !!(buf[2] & 1),
        prevFaulted: !!(buf[2] & 2),
        prevT: buf.readUInt32LE(4),
        prevBoot: buf.readUInt32LE(8),
        prevUpS: buf.readUInt32LE(12),
        judgedS: buf.readUInt32LE(16),
        faultS: buf.readUInt32LE(20),
        gapS: buf.readUInt32LE(24),
        mktS: buf.readUInt32LE(28),
        mktSum: buf.readDoubleLE(32),
        rules: [],
    }
    for (const c of cs) {
        const o = c.off
        if (buf[o + 2] !== c.code) throw new RangeError(`alarm state: rule ${c.rule.id} has another type`)
        const s = freshRule(c)
        s.flags = buf[o]
        s.raises = buf[o + 1]
        s.a = buf.readInt32LE(o + 4)
        s.b = buf.readInt32LE(o + 8)
        s.inS = buf.readUInt32LE(o + 12)
        s.worst = buf.readInt32LE(o + 16)
        const e = o + RULE_CORE_LEN
        if (c.code === 2 && c.n2) {
            for (let j = 0; j < BUCKETS; j++) {
                s.u[j] = buf.readUInt16LE(e + 2 * j)
                s.v[j] = buf.readUInt16LE(e + 2 * BUCKETS + 2 * j)
            }
        } else if (c.code === 3) {
            s.sum = buf.readDoubleLE(e)
            s.maxMkt = buf.readDoubleLE(e + 8)
        } else if (c.code === 7) for (let j = 0; j < c.n1; j++) s.u[j] = buf.readUInt32LE(e + 4 * j)
        st.rules.push(s)
    }
    return st
}
