import { describe, expect, test } from "@devicescript/test"
import { kvGet, kvSet, kvDelete } from "../flash/kv"
import {
    WakeState,
    ST_RTC_SET,
    ST_ASLEEP,
    W_WAKE,
    W_SAMPLE,
    W_UP_BACKOFF,
    W_ANCHOR_OFF,
    W_FLAGS,
    WF_OUT_OF_BAND,
    W_BAT,
    W_FIX_LAT,
    W_SLOW_LON,
    W_SEQ,
    W_SLEPT,
} from "../app/state"

/** The wake state `st` against its byte layout (docs/format.md 5.5). */
describe("WakeState", () => {
    test("writes version, flags, level, boot counter and the 23 wake slots where the format says", async () => {
        await kvDelete("st")
        const st = new WakeState()
        st.flags = ST_RTC_SET | ST_ASLEEP
        st.battery = 2
        st.boot = 0x01020304
        st.w[W_WAKE] = 1772427900
        st.w[W_SAMPLE] = 1772428200
        st.w[W_UP_BACKOFF] = 30_000
        st.w[W_ANCHOR_OFF] = -250
        st.w[W_FLAGS] = WF_OUT_OF_BAND
        st.w[W_BAT + 2] = 3712
        st.w[W_FIX_LAT] = -338_000_000
        st.w[W_SLOW_LON] = 44_000_000
        st.w[W_SEQ] = 1235
        st.w[W_SLEPT] = 1772427600
        await st.save()
        const b = await kvGet("st")
        expect(b.length).toBe(100)
        expect(b[0]).toBe(3)
        expect(b[1]).toBe(ST_RTC_SET | ST_ASLEEP)
        expect(b[2]).toBe(2)
        expect(b.getAt(4, "u32")).toBe(0x01020304)
        // slot i at byte 8 + 4i, little-endian; signed ones in two's complement
        expect(b.getAt(8, "u32")).toBe(1772427900)
        expect(b.getAt(12, "u32")).toBe(1772428200)
        expect(b.getAt(24, "u32")).toBe(30_000)
        expect(b.getAt(40, "i32")).toBe(-250)
        expect(b[48]).toBe(WF_OUT_OF_BAND)
        expect(b.getAt(60, "u16")).toBe(3712)
        expect(b.getAt(72, "i32")).toBe(-338_000_000)
        expect(b.getAt(88, "u32")).toBe(44_000_000)
        expect(b.getAt(92, "u32")).toBe(1235)
        expect(b.getAt(96, "u32")).toBe(1772427600)
    })

    test("reads back what it wrote, signed slots with | 0", async () => {
        const st = new WakeState()
        expect(await st.load()).toBe(true)
        expect(st.loaded).toBe(true)
        expect(st.has(ST_ASLEEP)).toBe(true)
        expect(st.boot).toBe(0x01020304)
        expect(st.w[W_SAMPLE]).toBe(1772428200)
        expect(st.w[W_ANCHOR_OFF] | 0).toBe(-250)
        expect(st.w[W_FIX_LAT] | 0).toBe(-338_000_000)
        expect(st.w[W_BAT + 2]).toBe(3712)
        expect(st.w[W_SEQ]).toBe(1235)
    })

    test("a 92-byte value (21 slots, before the sleep's seq was kept) reads with the new slots 0", async () => {
        const old = Buffer.alloc(92)
        old[0] = 3
        old[1] = ST_ASLEEP
        old.setAt(8, "u32", 1772427900)
        old.setAt(88, "u32", 5)
        await kvSet("st", old)
        const st = new WakeState()
        expect(await st.load()).toBe(true)
        expect(st.w[W_WAKE]).toBe(1772427900)
        expect(st.w[W_SLOW_LON]).toBe(5)
        expect(st.w[W_SEQ]).toBe(0)
        expect(st.w[W_SLEPT]).toBe(0)
    })

    test("an 8-byte value from firmware before the duty cycle reads with every slot 0, not asleep", async () => {
        const old = Buffer.alloc(8)
        old[0] = 3
        old[1] = ST_RTC_SET
        old.setAt(4, "u32", 7)
        await kvSet("st", old)
        const st = new WakeState()
        expect(await st.load()).toBe(true)
        expect(st.boot).toBe(7)
        expect(st.has(ST_ASLEEP)).toBe(false)
        for (let i = 0; i < 23; i++) expect(st.w[i]).toBe(0)
    })

    test("no state, or another version: nothing loaded (a logger that never ran)", async () => {
        await kvDelete("st")
        expect(await new WakeState().load()).toBe(false)
        const v2 = Buffer.alloc(8)
        v2[0] = 2
        await kvSet("st", v2)
        const st = new WakeState()
        expect(await st.load()).toBe(false)
        expect(st.loaded).toBe(false)
        await kvDelete("st")
    })
})
