/**
 * The alarm rules on the logger (docs/alarms.md): the host's evaluator (src/alarms/engine.ts) step for
 * step, over the rule set the host compiled to integers (docs/alarms.md, "The logger's rule set"):
 * one `feed` per sample, its events out, and a state that serialises to the bytes the host's `save`
 * gives (section 5), so it survives sleeps and power cuts. Integer counts (1/128 °C) and whole seconds
 * everywhere but MKT's two sums. Pure: no I/O.
 */

export const RULES_VERSION = 1
const RULES_HEADER = 8
const RULE_LEN = 24
const STATE_VERSION = 1
const HEADER_LEN = 40
const CORE_LEN = 20
const BUCKETS = 12
const DAY_S = 86400
const MKT_DH_R = 10000
const KELVIN = 273.15

export const T_SINGLE = 1
export const T_CUMULATIVE = 2
export const T_MKT = 3
export const T_FAULT = 4
export const T_GAP = 5
export const T_BATTERY = 6
export const T_OPENINGS = 7
export const T_BAND = 8

/** why an event happened (the alarm record's `why`) */
export const WHY_NONE = 0
export const WHY_ABOVE = 1
export const WHY_BELOW = 2
export const WHY_COUNT = 3
export const WHY_DURATION = 4

// per-rule flags (the state's)
const F_ACTIVE = 0x01
const F_EVER = 0x02
const F_POSSIBLE = 0x04
const F_WORST = 0x08
const F_SIDE_BELOW = 0x10
const F_WORST2 = 0x20
const F_COVERED = 0x40

const U16 = 0xffff
const U32 = 0xffffffff
function sat16(x: number): number {
    return x > U16 ? U16 : x
}
function sat32(x: number): number {
    return x > U32 ? U32 : x
}
function mktTerm(tc: number): number {
    return Math.exp(-MKT_DH_R / (tc / 128 + KELVIN))
}
function mktOf(sum: number, seconds: number): number {
    return MKT_DH_R / -Math.log(sum / seconds) - KELVIN
}

/** One rule as compiled by the host. */
export class Rule {
    code = 0
    dir = 0
    flags = 0
    bound = 0
    clear = 0
    n1 = 0
    n2 = 0
    limit = 0
    /** its bytes in the state, from `off` */
    off = 0
    extLen = 0
}

/** One rule's state: exactly what its bytes hold. */
class RuleState {
    flags = 0
    raises = 0
    a = 0
    b = 0
    inS = 0
    worst = 0
    u: number[] = []
    v: number[] = []
    sum = 0
    maxMkt = NaN
}

/** An event: rule `rule` (its index) raised or cleared at UTC second `t`, with the reading (count or mV) and why. */
export class AlarmEvent {
    constructor(
        readonly rule: number,
        readonly raise: boolean,
        readonly t: number,
        readonly value: number,
        readonly why: number,
    ) {}
}

/** The compiled rule set's rules, or a reason it cannot be used. */
export function decodeRules(b: Buffer): Rule[] {
    if (!b || b.length < RULES_HEADER || b[0] !== RULES_VERSION) throw new RangeError("alarm rules: not version 1")
    const n = b[1]
    if (b.length !== RULES_HEADER + RULE_LEN * n) throw new RangeError(`alarm rules: ${b.length} bytes for ${n} rules`)
    const rules: Rule[] = []
    let off = HEADER_LEN
    for (let i = 0; i < n; i++) {
        const o = RULES_HEADER + RULE_LEN * i
        const r = new Rule()
        r.code = b[o]
        r.dir = b.getAt(o + 1, "i8")
        r.flags = b[o + 2]
        r.bound = b.getAt(o + 4, "i32")
        r.clear = b.getAt(o + 8, "i32")
        r.n1 = b.getAt(o + 12, "i32")
        r.n2 = b.getAt(o + 16, "i32")
        r.limit = b.getAt(o + 20, "i32")
        if (r.code < T_SINGLE || r.code > T_BAND) throw new RangeError(`alarm rules: rule ${i} has type ${r.code}`)
        r.extLen = r.code === T_CUMULATIVE && r.n2 ? 4 * BUCKETS : r.code === T_MKT ? 16 : r.code === T_OPENINGS ? 4 * r.n1 : 0
        r.off = off
        off += CORE_LEN + r.extLen
        rules.push(r)
    }
    return rules
}

/** the interval the rules were compiled for (s) */
export function rulesInterval(b: Buffer): number {
    return b.getAt(4, "u32")
}

function freshState(r: Rule): RuleState {
    const s = new RuleState()
    if (r.code === T_CUMULATIVE && r.n2)
        for (let j = 0; j < BUCKETS; j++) {
            s.u.push(0)
            s.v.push(0)
        }
    else if (r.code === T_OPENINGS) for (let j = 0; j < r.n1; j++) s.u.push(0)
    return s
}

export class AlarmEngine {
    readonly cap: number
    havePrev = false
    prevFaulted = false
    prevT = 0
    prevBoot = 0
    prevUpS = 0
    judgedS = 0
    faultS = 0
    gapS = 0
    mktS = 0
    mktSum = 0
    readonly states: RuleState[] = []
    /** events since the caller last took them */
    events: AlarmEvent[] = []

    constructor(
        readonly rules: Rule[],
        intervalS: number,
    ) {
        this.cap = 2 * intervalS
        for (const r of rules) this.states.push(freshState(r))
    }

    /** bytes of the serialised state */
    stateLength(): number {
        const n = this.rules.length
        return n ? this.rules[n - 1].off + CORE_LEN + this.rules[n - 1].extLen : HEADER_LEN
    }

    /** the events since the last call */
    take(): AlarmEvent[] {
        const e = this.events
        this.events = []
        return e
    }

    private emit(i: number, raise: boolean, t: number, value: number, why: number) {
        const s = this.states[i]
        if (raise) {
            s.flags |= F_ACTIVE | F_EVER
            if (s.raises < 255) s.raises++
        } else s.flags &= ~F_ACTIVE
        this.events.push(new AlarmEvent(i, raise, t, value, why))
    }

    private worstIn(r: Rule, s: RuleState, tc: number) {
        if (!(s.flags & F_WORST) || (r.dir > 0 ? tc > s.worst : tc < s.worst)) s.worst = tc
        s.flags |= F_WORST
    }

    /**
     * One sample at UTC second `t` (count `tc`, faulted or not) of boot `boot` at `upS` seconds of its
     * device clock (the logger's `t`: durations within a boot come from it, docs/alarms.md 2.2).
     */
    feed(t: number, tc: number, faulted: boolean, boot: number, upS: number) {
        let dt = -1
        if (this.havePrev) dt = boot === this.prevBoot ? upS - this.prevUpS : t - this.prevT
        const newBoot = this.havePrev && boot !== this.prevBoot
        let cover = 0
        let gap = 0
        if (dt > 0) {
            if (dt <= this.cap) cover = dt
            else gap = dt
        }
        this.gapS = sat32(this.gapS + gap)
        if (faulted) this.faultS = sat32(this.faultS + cover)
        else {
            this.judgedS = sat32(this.judgedS + cover)
            if (cover) {
                this.mktSum += cover * mktTerm(tc)
                this.mktS += cover
            }
        }
        for (let i = 0; i < this.rules.length; i++) {
            const code = this.rules[i].code
            if (code === T_SINGLE) this.stepSingle(i, t, tc, faulted, cover, gap)
            else if (code === T_CUMULATIVE) this.stepCumulative(i, t, tc, faulted, cover, gap)
            else if (code === T_MKT) this.stepMkt(i, t, tc, faulted, cover)
            else if (code === T_FAULT) this.stepFault(i, t, tc, faulted, cover, gap)
            else if (code === T_GAP) this.stepGap(i, t, dt)
            else if (code === T_OPENINGS) this.tickOpen(i, t)
            else if (code === T_BAND) this.stepBand(i, t, tc, faulted, cover, gap, newBoot)
        }
        this.havePrev = true
        this.prevFaulted = faulted
        this.prevT = t
        this.prevBoot = boot
        this.prevUpS = upS
    }

    private stepSingle(i: number, t: number, tc: number, faulted: boolean, cover: number, gap: number) {
        const r = this.rules[i]
        const s = this.states[i]
        const inCond = !faulted && (r.dir > 0 ? tc >= r.bound : tc <= r.bound)
        if (gap) {
            s.a = 0
            s.b = sat32(s.b + gap)
            this.possibleSingle(r, s)
        }
        if (faulted) {
            s.a = 0
            s.b = sat32(s.b + cover)
            this.possibleSingle(r, s)
        } else if (inCond) {
            s.a = sat32(s.a + cover)
            s.b = sat32(s.b + cover)
            s.inS = sat32(s.inS + cover)
            this.worstIn(r, s, tc)
            if (!(s.flags & F_ACTIVE) && s.a >= r.n1) this.emit(i, true, t, tc, WHY_NONE)
            this.possibleSingle(r, s)
        } else {
            s.a = 0
            s.b = 0
            if (s.flags & F_ACTIVE && (r.dir > 0 ? tc <= r.clear : tc >= r.clear)) this.emit(i, false, t, tc, WHY_NONE)
        }
    }

    private possibleSingle(r: Rule, s: RuleState) {
        if (!(s.flags & F_ACTIVE) && s.b > s.a && s.b >= r.n1) s.flags |= F_POSSIBLE
    }

    private stepCumulative(i: number, t: number, tc: number, faulted: boolean, cover: number, gap: number) {
        const r = this.rules[i]
        const s = this.states[i]
        const inCond = !faulted && (r.dir > 0 ? tc >= r.bound : tc <= r.bound)
        const unk = gap + (faulted ? cover : 0)
        if (inCond) {
            s.inS = sat32(s.inS + cover)
            this.worstIn(r, s, tc)
        }
        if (!r.n2) {
            s.a = sat32(s.a + unk)
            if (!(s.flags & F_ACTIVE) && s.inS >= r.n1) this.emit(i, true, t, tc, WHY_NONE)
            if (!(s.flags & F_ACTIVE) && s.a > 0 && s.inS + s.a >= r.n1) s.flags |= F_POSSIBLE
            return
        }
        const idx = Math.floor(t / (r.n2 / BUCKETS))
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
        if (!(s.flags & F_ACTIVE) && win >= r.n1) this.emit(i, true, t, tc, WHY_NONE)
        else if (s.flags & F_ACTIVE && win < r.n1) this.emit(i, false, t, tc, WHY_NONE)
        if (!(s.flags & F_ACTIVE) && unkWin > 0 && win + unkWin >= r.n1) s.flags |= F_POSSIBLE
    }

    private stepMkt(i: number, t: number, tc: number, faulted: boolean, cover: number) {
        const r = this.rules[i]
        const s = this.states[i]
        const idx = r.n1 ? Math.floor(t / r.n1) : 0
        if (idx !== s.b) {
            if (s.flags & F_ACTIVE) this.emit(i, false, t, tc, WHY_NONE)
            s.a = 0
            s.sum = 0
            s.b = idx
        }
        if (!faulted && cover) {
            s.a = sat32(s.a + cover)
            s.sum += cover * mktTerm(tc)
            s.inS = sat32(s.inS + cover)
        }
        if (s.a >= r.n2 && s.a > 0) {
            s.flags |= F_COVERED
            const m = mktOf(s.sum, s.a)
            if (!(s.maxMkt >= m)) s.maxMkt = m
            const over = m > r.limit / 100
            if (!(s.flags & F_ACTIVE) && over) this.emit(i, true, t, tc, WHY_NONE)
            else if (s.flags & F_ACTIVE && !over) this.emit(i, false, t, tc, WHY_NONE)
        }
    }

    private stepFault(i: number, t: number, tc: number, faulted: boolean, cover: number, gap: number) {
        const r = this.rules[i]
        const s = this.states[i]
        if (gap) s.a = 0
        if (faulted) {
            s.a = sat32(s.a + cover)
            s.inS = sat32(s.inS + cover)
            if (!(s.flags & F_ACTIVE) && s.a >= r.n1) this.emit(i, true, t, tc, WHY_NONE)
        } else {
            s.a = 0
            if (s.flags & F_ACTIVE) this.emit(i, false, t, tc, WHY_NONE)
        }
    }

    private stepGap(i: number, t: number, dt: number) {
        const r = this.rules[i]
        const s = this.states[i]
        if (dt < 0 || dt <= r.n1) return
        s.inS = sat32(s.inS + dt)
        if (!(s.flags & F_WORST) || dt > s.worst) s.worst = dt
        s.flags |= F_WORST
        this.emit(i, true, this.prevT + r.n1, 0, WHY_NONE)
        this.emit(i, false, t, 0, WHY_NONE)
    }

    private stepBand(i: number, t: number, tc: number, faulted: boolean, cover: number, gap: number, newBoot: boolean) {
        const r = this.rules[i]
        const s = this.states[i]
        if (newBoot && r.flags & 1) s.flags &= ~(F_ACTIVE | F_SIDE_BELOW)
        if ((faulted && cover) || gap) s.flags |= F_POSSIBLE
        if (faulted) return
        // band: `bound` the first count above, `clear` the first below, n1..n2 the clear zone
        const above = tc >= r.bound
        const below = tc <= r.clear
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
                this.emit(i, true, t, tc, above ? WHY_ABOVE : WHY_BELOW)
            }
        } else if (s.flags & F_ACTIVE && tc >= r.n1 && tc <= r.n2) this.emit(i, false, t, tc, WHY_NONE)
    }

    /** A battery reading (mV) at UTC second `t`. */
    feedBattery(t: number, mv: number) {
        for (let i = 0; i < this.rules.length; i++) {
            const r = this.rules[i]
            if (r.code !== T_BATTERY) continue
            const s = this.states[i]
            s.flags |= F_COVERED
            if (mv < r.n1) {
                if (!(s.flags & F_WORST) || mv < s.worst) s.worst = mv
                s.flags |= F_WORST
                if (!(s.flags & F_ACTIVE)) this.emit(i, true, t, mv, WHY_NONE)
            } else if (s.flags & F_ACTIVE && mv >= r.n1 + r.n2) this.emit(i, false, t, mv, WHY_NONE)
        }
    }

    private tickOpen(i: number, t: number) {
        const r = this.rules[i]
        const s = this.states[i]
        if (s.a && !(s.flags & F_ACTIVE) && t - (s.a - 1) > r.n2) this.emit(i, true, s.a - 1 + r.n2, 0, WHY_DURATION)
    }

    /** The lid opened (`open`) or closed at UTC second `t`. */
    feedLid(t: number, open: boolean) {
        for (let i = 0; i < this.rules.length; i++) if (this.rules[i].code === T_OPENINGS) this.stepLid(i, t, open)
    }

    /**
     * A lid record (docs/alarms.md 3.7): the logger believed the lid closed when the clock watched for
     * openings (`openEdge`), open otherwise; `count` such edges, the first at `first`, the others
     * (each with the edge between) at `t`, when the logger learnt of them; then the lid as read at `t`.
     */
    feedLidRecord(t: number, first: number, openEdge: boolean, count: number, open: boolean) {
        let was = !openEdge
        if (count) {
            this.feedLid(first, openEdge)
            for (let i = 1; i < count; i++) {
                this.feedLid(t, !openEdge)
                this.feedLid(t, openEdge)
            }
            was = openEdge
        }
        if (was !== open) this.feedLid(t, open)
    }

    private stepLid(i: number, t: number, open: boolean) {
        const r = this.rules[i]
        const s = this.states[i]
        this.tickOpen(i, t)
        if (open) {
            if (s.a) return
            let tooMany = false
            if (s.b >= r.n1) tooMany = t - s.u[s.b % r.n1] < DAY_S
            s.u[s.b % r.n1] = t
            s.b = sat32(s.b + 1)
            s.a = t + 1
            if (tooMany && !(s.flags & F_ACTIVE)) this.emit(i, true, t, 0, WHY_COUNT)
        } else if (s.a) {
            s.inS = sat32(s.inS + (t - (s.a - 1)))
            s.a = 0
            if (s.flags & F_ACTIVE) this.emit(i, false, t, 0, WHY_NONE)
        }
    }

    /** The serialised state (docs/alarms.md 5): the host's bytes for the same inputs. */
    save(): Buffer {
        const b = Buffer.alloc(this.stateLength())
        b[0] = STATE_VERSION
        b[1] = this.rules.length
        b[2] = (this.havePrev ? 1 : 0) | (this.prevFaulted ? 2 : 0)
        b.setAt(4, "u32", this.prevT >>> 0)
        b.setAt(8, "u32", this.prevBoot >>> 0)
        b.setAt(12, "u32", this.prevUpS >>> 0)
        b.setAt(16, "u32", this.judgedS)
        b.setAt(20, "u32", this.faultS)
        b.setAt(24, "u32", this.gapS)
        b.setAt(28, "u32", this.mktS)
        b.setAt(32, "f64", this.mktSum)
        for (let i = 0; i < this.rules.length; i++) {
            const r = this.rules[i]
            const s = this.states[i]
            const o = r.off
            b[o] = s.flags
            b[o + 1] = s.raises
            b[o + 2] = r.code
            b.setAt(o + 4, "i32", s.a | 0)
            b.setAt(o + 8, "i32", s.b | 0)
            b.setAt(o + 12, "u32", s.inS)
            b.setAt(o + 16, "i32", s.worst | 0)
            const e = o + CORE_LEN
            if (r.code === T_CUMULATIVE && r.n2)
                for (let j = 0; j < BUCKETS; j++) {
                    b.setAt(e + 2 * j, "u16", s.u[j])
                    b.setAt(e + 2 * BUCKETS + 2 * j, "u16", s.v[j])
                }
            else if (r.code === T_MKT) {
                b.setAt(e, "f64", s.sum)
                b.setAt(e + 8, "f64", s.maxMkt)
            } else if (r.code === T_OPENINGS) for (let j = 0; j < r.n1; j++) b.setAt(e + 4 * j, "u32", s.u[j] >>> 0)
        }
        return b
    }

    /** The state `save` gave; false (nothing changed) when the bytes are not of this rule set. */
    load(b: Buffer): boolean {
        if (!b || b.length !== this.stateLength() || b[0] !== STATE_VERSION || b[1] !== this.rules.length) return false
        for (const r of this.rules) if (b[r.off + 2] !== r.code) return false
        this.havePrev = (b[2] & 1) !== 0
        this.prevFaulted = (b[2] & 2) !== 0
        this.prevT = b.getAt(4, "u32")
        this.prevBoot = b.getAt(8, "u32")
        this.prevUpS = b.getAt(12, "u32")
        this.judgedS = b.getAt(16, "u32")
        this.faultS = b.getAt(20, "u32")
        this.gapS = b.getAt(24, "u32")
        this.mktS = b.getAt(28, "u32")
        this.mktSum = b.getAt(32, "f64")
        for (let i = 0; i < this.rules.length; i++) {
            const r = this.rules[i]
            const s = this.states[i]
            const o = r.off
            s.flags = b[o]
            s.raises = b[o + 1]
            s.a = b.getAt(o + 4, "i32")
            s.b = b.getAt(o + 8, "i32")
            s.inS = b.getAt(o + 12, "u32")
            s.worst = b.getAt(o + 16, "i32")
            const e = o + CORE_LEN
            if (r.code === T_CUMULATIVE && r.n2)
                for (let j = 0; j < BUCKETS; j++) {
                    s.u[j] = b.getAt(e + 2 * j, "u16")
                    s.v[j] = b.getAt(e + 2 * BUCKETS + 2 * j, "u16")
                }
            else if (r.code === T_MKT) {
                s.sum = b.getAt(e, "f64")
                s.maxMkt = b.getAt(e + 8, "f64")
            } else if (r.code === T_OPENINGS) for (let j = 0; j < r.n1; j++) s.u[j] = b.getAt(e + 4 * j, "u32")
        }
        return true
    }
}
