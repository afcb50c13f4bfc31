// The simulated Notehub relay: strict payload decoding, and deterministic late / reordered /
// duplicated delivery in which every note arrives at least once.
import { describe, expect, test } from "vitest"
import { NoteRelay, decodeNotePayload, mulberry32, type NoteRelayOptions, type RelayNote } from "../src/uplink/notecard-relay.js"

/** note i carries the 4-byte big-endian i and a few bytes of filler, base64 as the card sends it */
function note(i: number, extra = 5): RelayNote {
    const b = Buffer.alloc(4 + extra)
    b.writeUInt32BE(i, 0)
    for (let k = 0; k < extra; k++) b[4 + k] = (i * 31 + k * 7) & 0xff
    return { file: "batch.qo", body: { seq: i }, payload: b.toString("base64"), time: 1767225600 + i }
}

/** a relay on a virtual clock that records what it delivered (note index per delivery) */
function rig(opts: NoteRelayOptions) {
    let t = 0
    const got: number[] = []
    const relay = new NoteRelay(payload => void got.push(payload.readUInt32BE(0)), { ...opts, now: () => t })
    return {
        relay,
        got,
        advance: async (ms: number) => {
            t += ms
            return relay.pump()
        },
        at: () => t,
    }
}

/** pushes n notes one every `everyMs`, pumping as time goes, then drains; returns the delivery order */
async function scenario(opts: NoteRelayOptions, n = 200, everyMs = 100): Promise<number[]> {
    const r = rig(opts)
    for (let i = 0; i < n; i++) {
        r.relay.push(note(i))
        await r.advance(everyMs)
    }
    await r.advance(60_000)
    await r.relay.drain()
    return r.got
}

const inversions = (order: number[]) => order.filter((v, i) => i > 0 && v < order[i - 1]).length

describe("decodeNotePayload", () => {
    test("round-trips every byte value and every length 0..70", () => {
        const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
        expect(decodeNotePayload(all.toString("base64"))).toEqual(all)
        for (let n = 0; n <= 70; n++) {
            const b = all.subarray(256 - n)
            expect(decodeNotePayload(b.toString("base64"))).toEqual(b)
        }
        expect(decodeNotePayload("")).toEqual(Buffer.alloc(0))
        expect(decodeNotePayload("+/+/").toString("hex")).toBe("fbffbf")
    })

    test.each(["Zg=", "Zg", "Z===", "Zm9v=", "Zm=v", "Zm9é", "Zh==", "Zm9=", "Zm 9v", "=Zm9", "Zm9v\n", "Zm-_"])("rejects %j", s => {
        expect(() => decodeNotePayload(s)).toThrow(/note payload/)
    })
})

describe("NoteRelay", () => {
    test("defaults: in order, exactly once, no earlier than the delay", async () => {
        const r = rig({ delayMs: 250 })
        r.relay.push([note(0), note(1), note(2)])
        expect(await r.advance(249)).toBe(0)
        expect(r.relay.pending).toBe(3)
        expect(r.relay.nextDueAt()).toBe(250)
        expect(await r.advance(1)).toBe(3)
        expect(r.got).toEqual([0, 1, 2])
        expect(r.relay.stats).toEqual({ pushed: 3, delivered: 3, duplicates: 0, heldBack: 0, retries: 0 })
    })

    test("the callback gets the decoded payload and the note", async () => {
        const seen: [Buffer, RelayNote][] = []
        const relay = new NoteRelay((p, n) => void seen.push([p, n]), { now: () => 0 })
        const n = note(7, 40)
        relay.push(n)
        await relay.pump()
        expect(seen).toHaveLength(1)
        expect(seen[0][0]).toEqual(Buffer.from(n.payload, "base64"))
        expect(seen[0][1]).toBe(n)
    })

    test("a bad payload throws at push and queues nothing of that push", () => {
        const relay = new NoteRelay(() => {}, { now: () => 0 })
        expect(() => relay.push([note(1), { payload: "not base64!" }])).toThrow(/note payload/)
        expect(relay.pending).toBe(0)
        expect(relay.stats.pushed).toBe(0)
    })

    const lossy: NoteRelayOptions = { seed: 42, delayMs: 200, jitterMs: 300, reorder: 0.2, holdMs: 2000, duplicate: 0.25 }

    test("delivery, duplication and reordering are deterministic for a seed", async () => {
        const a = await scenario(lossy)
        const b = await scenario(lossy)
        expect(b).toEqual(a)
        const c = await scenario({ ...lossy, seed: 43 })
        expect(c).not.toEqual(a)
    })

    test("every note is delivered at least once; some twice; some out of order", async () => {
        const r = rig(lossy)
        for (let i = 0; i < 200; i++) {
            r.relay.push(note(i))
            await r.advance(100)
        }
        await r.advance(60_000)
        expect(r.relay.pending).toBe(0)
        const counts = new Map<number, number>()
        for (const i of r.got) counts.set(i, (counts.get(i) ?? 0) + 1)
        for (let i = 0; i < 200; i++) expect(counts.get(i), `note ${i}`).toBeGreaterThanOrEqual(1)
        expect([...counts.values()].every(c => c <= 2)).toBe(true)
        const dups = [...counts.values()].filter(c => c === 2).length
        expect(dups).toBe(r.relay.stats.duplicates)
        expect(dups).toBeGreaterThan(20) // p = 0.25 of 200
        expect(dups).toBeLessThan(80)
        expect(r.got.length).toBe(200 + dups)
        expect(r.relay.stats.heldBack).toBeGreaterThan(15)
        // first deliveries out of push order (held-back notes overtaken by later ones)
        const firsts = r.got.filter((v, i) => r.got.indexOf(v) === i)
        expect(inversions(firsts)).toBeGreaterThan(10)
    })

    test("one knob does not change the others' random draws", async () => {
        const base = { seed: 9, delayMs: 100, jitterMs: 500 }
        const plain = await scenario(base, 100)
        const withDups = await scenario({ ...base, duplicate: 0.5 }, 100)
        // removing the second copies gives back exactly the plain order
        const firsts = withDups.filter((v, i) => withDups.indexOf(v) === i)
        expect(firsts).toEqual(plain)
    })

    test("a delivery that throws is retried until it succeeds (at least once, not lost)", async () => {
        let t = 0
        let fail = 3
        const got: number[] = []
        const relay = new NoteRelay(
            p => {
                if (fail-- > 0) throw new Error("ingest down")
                got.push(p.readUInt32BE(0))
            },
            { now: () => t, retryMs: 1000 },
        )
        relay.push([note(0), note(1)])
        await relay.pump() // both fail at t=0 (fail 3 -> 1)
        expect(got).toEqual([])
        expect(relay.stats.retries).toBe(2)
        t = 999
        expect(await relay.pump()).toBe(0)
        t = 1000
        await relay.pump() // note 0 fails once more, note 1 goes
        t = 2000
        await relay.pump()
        expect(got.sort()).toEqual([0, 1])
        expect(relay.stats.retries).toBe(3)
        expect(relay.pending).toBe(0)
    })

    test("drain delivers what is not yet due; concurrent pumps do not deliver twice", async () => {
        const r = rig({ delayMs: 10_000, duplicate: 1 })
        r.relay.push([note(0), note(1)])
        expect(await r.relay.drain()).toBe(4)
        expect(r.got).toEqual([0, 1, 0, 1])
        // slow callback: the interval pump and an explicit pump overlap
        let t = 0
        const got: number[] = []
        const slow = new NoteRelay(
            async p => {
                await new Promise(res => setTimeout(res, 5))
                got.push(p.readUInt32BE(0))
            },
            { now: () => t },
        )
        slow.push([note(0), note(1), note(2)])
        await Promise.all([slow.pump(), slow.pump(), slow.pump()])
        expect(got).toEqual([0, 1, 2])
    })

    test("start() pumps in real time", async () => {
        const got: number[] = []
        const relay = new NoteRelay(p => void got.push(p.readUInt32BE(0)), { delayMs: 20 })
        relay.start(5)
        relay.push([note(3), note(4)])
        const t0 = Date.now()
        while (got.length < 2 && Date.now() - t0 < 2000) await new Promise(res => setTimeout(res, 5))
        relay.stop()
        expect(got).toEqual([3, 4])
        expect(Date.now() - t0).toBeGreaterThanOrEqual(15)
    })

    test("options are checked; the PRNG is reproducible", () => {
        expect(() => new NoteRelay(() => {}, { duplicate: 1.5 })).toThrow(/probability/)
        expect(() => new NoteRelay(() => {}, { reorder: -0.1 })).toThrow(/probability/)
        const a = mulberry32(5)
        const b = mulberry32(5)
        const xs = Array.from({ length: 5 }, () => a())
        expect(Array.from({ length: 5 }, () => b())).toEqual(xs)
        expect(xs.every(x => x >= 0 && x < 1)).toBe(true)
    })
})
