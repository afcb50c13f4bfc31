import { describe, expect, test } from "@devicescript/test"
import * as ds from "@devicescript/core"
import { AlarmEngine, decodeRules, rulesInterval, T_MKT } from "../alarm/engine"
import { ALARM_CASES, LID_RECORD_CASES, NO_VALUE } from "./alarm-vectors.gen"

/*
 * The firmware's alarm engine against the shared vectors (docs/alarms.md 9; generated from the
 * cases of docs/vectors/alarms.json with the host's engine): every case fed one input at a time
 * gives the host's events, in its order, and its final state bytes. MKT's f64 sums may differ in
 * the last bits (the runtime's exp is pow(e, x)): those compare to 1e-12, everything else exactly.
 */

function engineFor(rulesHex: string): AlarmEngine {
    const b = Buffer.from(rulesHex, "hex")
    return new AlarmEngine(decodeRules(b), rulesInterval(b))
}

function feedRow(eng: AlarmEngine, inputs: Buffer, i: number) {
    const o = 16 * i
    const kind = inputs[o]
    const t = inputs.getAt(o + 4, "u32")
    const v = inputs.getAt(o + 8, "i32")
    if (kind === 0) eng.feed(t, v, inputs[o + 1] === 1, inputs.getAt(o + 2, "u16"), inputs.getAt(o + 12, "u32"))
    else if (kind === 1) eng.feedBattery(t, v)
    else eng.feedLid(t, inputs[o + 1] === 1)
}

function near(a: number, b: number, what: string) {
    if (isNaN(a) && isNaN(b)) return
    const tol = 1e-12 * Math.max(Math.abs(a), Math.abs(b))
    if (!(Math.abs(a - b) <= tol)) throw new Error(`${what}: ${a} vs ${b}`)
}

/** the state bytes equal, the f64 fields to 1e-12 */
function sameState(eng: AlarmEngine, got: Buffer, want: Buffer, name: string) {
    expect(got.length).toBe(want.length)
    const floats: number[] = [32]
    for (const r of eng.rules) if (r.code === T_MKT) floats.push(r.off + 20, r.off + 28)
    for (let i = 0; i < got.length; i++) {
        let inFloat = false
        for (const f of floats) if (i >= f && i < f + 8) inFloat = true
        if (!inFloat && got[i] !== want[i]) throw new Error(`${name}: state byte ${i} is ${got[i]}, the host's ${want[i]}`)
    }
    for (const f of floats) near(got.getAt(f, "f64"), want.getAt(f, "f64"), `${name}: f64 at ${f}`)
}

describe("alarm engine: the shared vectors", () => {
    test("every case gives the host's events and final state", async () => {
        for (const c of ALARM_CASES) {
            const eng = engineFor(c.rules)
            const inputs = Buffer.from(c.inputs, "hex")
            const want = Buffer.from(c.events, "hex")
            let k = 0
            for (let i = 0; i < inputs.length / 16; i++) {
                feedRow(eng, inputs, i)
                for (const e of eng.take()) {
                    const o = 16 * k++
                    const what = `${c.name}: event ${k - 1}`
                    if (o >= want.length) throw new Error(`${what}: not in the vector (rule ${e.rule} at ${e.t})`)
                    expect(e.rule).toBe(want[o])
                    expect(e.raise ? 1 : 0).toBe(want[o + 1])
                    expect(e.why).toBe(want[o + 2])
                    expect(e.t).toBe(want.getAt(o + 4, "u32"))
                    const v = want.getAt(o + 8, "i32")
                    if (v !== NO_VALUE) expect(e.value).toBe(v)
                }
                if ((i & 31) === 0) await ds.sleep(0)
            }
            expect(k).toBe(want.length / 16)
            sameState(eng, eng.save(), Buffer.from(c.state, "hex"), c.name)
        }
    })

    test("lid records: the edges each states, fed in order, give the host's events and state", () => {
        for (const c of LID_RECORD_CASES) {
            const eng = engineFor(c.rules)
            const rows = Buffer.from(c.records, "hex")
            for (let i = 0; i < rows.length / 16; i++) {
                const o = 16 * i
                eng.feedLidRecord(rows.getAt(o, "u32"), rows.getAt(o + 4, "u32"), rows[o + 8] === 1, rows[o + 9], rows[o + 10] === 1)
            }
            const got = eng.take()
            const want = Buffer.from(c.events, "hex")
            expect(got.length).toBe(want.length / 16)
            for (let k = 0; k < got.length; k++) {
                const o = 16 * k
                expect(got[k].rule).toBe(want[o])
                expect(got[k].raise ? 1 : 0).toBe(want[o + 1])
                expect(got[k].why).toBe(want[o + 2])
                expect(got[k].t).toBe(want.getAt(o + 4, "u32"))
            }
            expect(eng.save().toString("hex")).toBe(c.state)
        }
    })

    test("state written and read back before every input (a sleep, a power cut) changes nothing", async () => {
        for (const c of ALARM_CASES) {
            const whole = engineFor(c.rules)
            let cut = engineFor(c.rules)
            const inputs = Buffer.from(c.inputs, "hex")
            for (let i = 0; i < inputs.length / 16; i++) {
                const next = engineFor(c.rules)
                expect(next.load(cut.save())).toBe(true)
                cut = next
                feedRow(whole, inputs, i)
                feedRow(cut, inputs, i)
                if ((i & 15) === 0) await ds.sleep(0)
            }
            expect(cut.save().toString("hex")).toBe(whole.save().toString("hex"))
        }
    })

    test("rules of another shape are refused, state of another rule set is not loaded", () => {
        const c = ALARM_CASES[0]
        const b = Buffer.from(c.rules, "hex")
        const bad = b.slice(0, b.length - 1)
        let msg = ""
        try {
            decodeRules(bad)
        } catch (e: any) {
            msg = e.message
        }
        expect(msg.indexOf("bytes for") >= 0).toBe(true)
        const v2 = Buffer.from(c.rules, "hex")
        v2[0] = 2
        msg = ""
        try {
            decodeRules(v2)
        } catch (e: any) {
            msg = e.message
        }
        expect(msg.indexOf("version") >= 0).toBe(true)
        const other = engineFor(ALARM_CASES[1].rules)
        const eng = engineFor(c.rules)
        // (who-type-1 and -2: the same length and count, another type for the third rule)
        expect(other.save().length).toBe(eng.save().length)
        expect(eng.load(other.save())).toBe(false)
        const st = eng.save()
        st[0] = 9
        expect(eng.load(st)).toBe(false)
    })
})
