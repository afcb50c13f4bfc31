import { VECTORS } from "./vectors.gen"
import { describe, test, expect, beforeEach } from "@devicescript/test"
import { hmac } from "@devicescript/crypto"
import { EpochKeys } from "../chain/keys"
import { evolveKey, sealMac } from "../chain/chain"
import { kvGet, kvSet, kvDelete } from "../flash/kv"

/**
 * EpochKeys (docs/format.md sections 1, 3.2 and 5.1) on the settings store of the test VM.
 * `ep` = epoch u32 | k[epoch] 32 | seal_seq u32 (0xFFFFFFFF for epoch 0) | start u32 (device time the epoch began).
 * settings.clear() does nothing in test mode and the store lives for the whole run: every test
 * deletes `ekey` and `devkey` first.
 */

const NONE = 0xffffffff
const K0 = Buffer.from("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "hex")
const DEVID = Buffer.from("c01d7ace00000001", "hex")

function u32(v: number): Buffer {
    const b = Buffer.alloc(4)
    b.setAt(0, "u32", v)
    return b
}

/** k[e+1] written out from the spec, independently of chain.ts */
function specEvolve(k: Buffer, next: number): Buffer {
    return hmac(k, "sha256", Buffer.from("coldtrace-evolve-v3"), u32(next))
}

/** MAC16(k, "coldtrace-seal-v3" || devid || u32 e || u32 s || head[s-1] || u16 count), independently of chain.ts */
function specSeal(k: Buffer, e: number, s: number, prevHead: Buffer, count: number): Buffer {
    const c = Buffer.alloc(2)
    c.setAt(0, "u16", count)
    const m = Buffer.from("coldtrace-seal-v3").concat(DEVID).concat(u32(e)).concat(u32(s)).concat(prevHead).concat(c)
    return hmac(k, "sha256", m).slice(0, 16)
}

/** whether `needle` occurs anywhere in `hay` */
function contains(hay: Buffer, needle: Buffer): boolean {
    for (let i = 0; i + needle.length <= hay.length; ++i) {
        let j = 0
        while (j < needle.length && hay[i + j] === needle[j]) j++
        if (j === needle.length) return true
    }
    return false
}

function fakeHead(n: number): Buffer {
    const h = Buffer.alloc(32)
    for (let i = 0; i < 32; ++i) h[i] = (n * 31 + i * 7) & 0xff
    return h
}

async function ekeyHex(): Promise<string> {
    const e = await kvGet("ep")
    return e ? e.toString("hex") : "none"
}

/** device time (s) the tests start epochs at */
const START = 1767225600

function ekeyOf(epoch: number, k: Buffer, sealSeq: number): string {
    return u32(epoch).concat(k).concat(u32(sealSeq)).concat(u32(START)).toString("hex")
}

describe("EpochKeys", () => {
    beforeEach(async () => {
        await kvDelete("ep")
        await kvDelete("devkey")
    })

    test("unprovisioned: no ekey, no devkey: load fails and writes nothing", async () => {
        const k = new EpochKeys()
        expect(await k.load(START)).toBe(false)
        expect(await kvGet("ep")).toBe(undefined)
        // a devkey of the wrong length is no key either
        await kvSet("devkey", K0.slice(0, 16))
        expect(await new EpochKeys().load(START)).toBe(false)
        expect(await kvGet("ep")).toBe(undefined)
    })

    test("first load moves devkey to ekey (epoch 0) and deletes devkey", async () => {
        await kvSet("devkey", K0)
        const k = new EpochKeys()
        expect(await k.load(START)).toBe(true)
        expect(k.epoch).toBe(0)
        expect(k.sealSeq).toBe(NONE)
        expect(k.current().toString("hex")).toBe(K0.toString("hex"))
        expect(await ekeyHex()).toBe(ekeyOf(0, K0, NONE))
        expect((await kvGet("ep")).length).toBe(44)
        expect(await kvGet("devkey")).toBe(undefined)
        // the next boot loads the same from ekey alone
        const k2 = new EpochKeys()
        expect(await k2.load(START)).toBe(true)
        expect(k2.epoch).toBe(0)
        expect(k2.sealSeq).toBe(NONE)
        expect(k2.current().toString("hex")).toBe(K0.toString("hex"))
    })

    test("a power cut between writing ekey and deleting devkey: the next load deletes devkey", async () => {
        await kvSet("ep", Buffer.from(ekeyOf(0, K0, NONE), "hex"))
        await kvSet("devkey", K0)
        const k = new EpochKeys()
        expect(await k.load(START)).toBe(true)
        expect(k.epoch).toBe(0)
        expect(await kvGet("devkey")).toBe(undefined)
        // the same after the key evolved: a devkey left behind never outlives a load
        await k.evolve(4, START)
        await kvSet("devkey", K0)
        const k2 = new EpochKeys()
        expect(await k2.load(START)).toBe(true)
        expect(k2.epoch).toBe(1)
        expect(await kvGet("devkey")).toBe(undefined)
    })

    test("evolve writes epoch + 1 with k[e+1] and the seal seq, and erases k[e]", async () => {
        await kvSet("devkey", K0)
        const k = new EpochKeys()
        await k.load(START)
        let prev = K0
        const sealSeqs = [12, 19, 20, 345]
        for (let e = 0; e < sealSeqs.length; ++e) {
            await k.evolve(sealSeqs[e], START)
            const want = specEvolve(prev, e + 1)
            expect(want.toString("hex")).toBe(evolveKey(prev, e + 1).toString("hex"))
            expect(k.epoch).toBe(e + 1)
            expect(k.sealSeq).toBe(sealSeqs[e])
            expect(`epoch ${e + 1}: ${k.current().toString("hex")}`).toBe(`epoch ${e + 1}: ${want.toString("hex")}`)
            const ekey = await kvGet("ep")
            expect(`ekey ${e + 1}: ${ekey.toString("hex")}`).toBe(`ekey ${e + 1}: ${ekeyOf(e + 1, want, sealSeqs[e])}`)
            // the old key is gone from ekey: not the whole key, not its first half, not its last half
            expect(contains(ekey, prev)).toBe(false)
            expect(contains(ekey, prev.slice(0, 16))).toBe(false)
            expect(contains(ekey, prev.slice(16, 32))).toBe(false)
            expect(contains(ekey, K0.slice(0, 16))).toBe(false)
            prev = want
        }
        expect(await kvGet("devkey")).toBe(undefined)
    })

    test("k[1..3] from k0 are the spec's chain (and the vectors' keys)", async () => {
        // docs/vectors/format-v4.json keys[1..3] for this k0
        const want = VECTORS.keys
        await kvSet("devkey", K0)
        const k = new EpochKeys()
        await k.load(START)
        expect(k.current().toString("hex")).toBe(want[0])
        for (let e = 1; e <= 3; ++e) {
            await k.evolve(e * 10, START)
            expect(`k[${e}] ${k.current().toString("hex")}`).toBe(`k[${e}] ${want[e]}`)
        }
    })

    test("reload after evolve", async () => {
        await kvSet("devkey", K0)
        const k = new EpochKeys()
        await k.load(START)
        await k.evolve(7, START)
        await k.evolve(30, START)
        const k2 = new EpochKeys()
        expect(await k2.load(START)).toBe(true)
        expect(k2.epoch).toBe(2)
        expect(k2.sealSeq).toBe(30)
        expect(k2.current().toString("hex")).toBe(k.current().toString("hex"))
        expect(k2.current().toString("hex")).toBe(specEvolve(specEvolve(K0, 1), 2).toString("hex"))
        expect(k2.countAt(40)).toBe(9)
        // and it goes on from there
        await k2.evolve(40, START)
        expect(k2.epoch).toBe(3)
        expect(await ekeyHex()).toBe(ekeyOf(3, specEvolve(specEvolve(specEvolve(K0, 1), 2), 3), 40))
        // a provisioning devkey written again does not take the key back to k0
        await kvSet("devkey", K0)
        const k3 = new EpochKeys()
        expect(await k3.load(START)).toBe(true)
        expect(k3.epoch).toBe(3)
        expect(k3.current().toString("hex")).toBe(k2.current().toString("hex"))
    })

    test("countAt: records since the previous seal, the seal excluded", async () => {
        await kvSet("devkey", K0)
        const k = new EpochKeys()
        await k.load(START)
        expect(k.countAt(0)).toBe(0) // a seal at seq 0: nothing before it
        expect(k.countAt(12)).toBe(12) // seqs 0..11
        await k.evolve(12, START)
        expect(k.countAt(13)).toBe(0) // an empty epoch
        expect(k.countAt(19)).toBe(6) // seqs 13..18
        await k.evolve(19, START)
        expect(k.countAt(20)).toBe(0)
        expect(k.countAt(1019)).toBe(999)
    })

    test("seal MAC equals sealMac and the spec's formula, with the key of the epoch", async () => {
        await kvSet("devkey", K0)
        const k = new EpochKeys()
        await k.load(START)
        const h11 = fakeHead(11)
        const m0 = k.seal(DEVID, 12, h11, 12)
        expect(m0.length).toBe(16)
        expect(m0.toString("hex")).toBe(sealMac(K0, DEVID, 0, 12, h11, 12).toString("hex"))
        expect(m0.toString("hex")).toBe(specSeal(K0, 0, 12, h11, 12).toString("hex"))
        // every input matters
        expect(k.seal(DEVID, 13, h11, 12).toString("hex") === m0.toString("hex")).toBe(false)
        expect(k.seal(DEVID, 12, fakeHead(10), 12).toString("hex") === m0.toString("hex")).toBe(false)
        expect(k.seal(DEVID, 12, h11, 11).toString("hex") === m0.toString("hex")).toBe(false)
        expect(k.seal(Buffer.from("c01d7ace00000002", "hex"), 12, h11, 12).toString("hex") === m0.toString("hex")).toBe(false)
        await k.evolve(12, START)
        const k1 = specEvolve(K0, 1)
        const h18 = fakeHead(18)
        const m1 = k.seal(DEVID, 19, h18, k.countAt(19))
        expect(m1.toString("hex")).toBe(sealMac(k1, DEVID, 1, 19, h18, 6).toString("hex"))
        expect(m1.toString("hex")).toBe(specSeal(k1, 1, 19, h18, 6).toString("hex"))
        // the old key can no longer make this epoch's seal, and the new one does not make the old seal
        expect(m1.toString("hex") === specSeal(K0, 1, 19, h18, 6).toString("hex")).toBe(false)
        expect(k.seal(DEVID, 12, h11, 12).toString("hex") === m0.toString("hex")).toBe(false)
    })
})
