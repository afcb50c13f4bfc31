import * as ds from "@devicescript/core"
import { describe, test, expect } from "@devicescript/test"
import { LogStore, NONE, blockKey, BLOCK_SLOTS, VALUE_MAX } from "../flash/logstore"
import { kvGet, kvSet, kvDelete } from "../flash/kv"
import { genesisHead, nextHead, bufEq } from "../chain/chain"
import { PackDecoder } from "../record/pack"
import { sampleRecord, configRecord } from "../record/record"
import { profileTc } from "./longrun"

/**
 * LogStore (docs/format.md section 5) on the settings store of the test VM: a ring of block keys
 * holding packed streams, the open block's tail (`tl`) written at every append, crash recovery at
 * open(), acknowledgements that free whole blocks, eviction of the oldest block. In `--test` mode the
 * store lives for the whole run and `settings.clear()` is a no-op: every test wipes the keys itself.
 */
let devCounter = 0
function newDevid(): Buffer {
    const b = Buffer.from("c01d7ace00000000", "hex")
    b.setAt(4, "u32", 0x3000 + ++devCounter)
    return b
}

async function wipe() {
    for (let n = 0; n < BLOCK_SLOTS; n++) await kvDelete(blockKey(n))
    await kvDelete("lgmeta")
    await kvDelete("lgack")
    await kvDelete("tl")
}

/** records that do not pack well (config records: 26 bytes of which 16 are hash, none zero), so blocks fill fast */
function cfg(seq: number): Buffer {
    const h = Buffer.alloc(16)
    for (let i = 0; i < 16; i++) h[i] = 1 + ((seq * 151 + i * 97) % 255)
    return configRecord(seq, 1767225600 + seq, h)
}

async function fill(store: LogStore, n: number, head: Buffer): Promise<Buffer> {
    for (let i = 0; i < n; i++) {
        const rec = cfg(store.nextSeq)
        await store.append(rec)
        head = nextHead(head, rec)
    }
    return head
}

describe("LogStore v3", () => {
    test("a fresh store: block 1 open and empty, genesis head, seq 0", async () => {
        await wipe()
        const devid = newDevid()
        const s = new LogStore(devid, 8)
        expect(await s.open()).toBe(undefined)
        expect(s.nextSeq).toBe(0)
        expect(bufEq(s.head, genesisHead(devid))).toBe(true)
        expect(s.blocks()).toBe(1)
        expect(s.ackSeq).toBe(NONE)
        expect((await kvGet(blockKey(1))).getAt(0, "u32")).toBe(0)
    })

    test("appends fill blocks of at most 224 bytes; a reopen continues the same chain", async () => {
        await wipe()
        const devid = newDevid()
        const s = new LogStore(devid, 16)
        await s.open()
        const head = await fill(s, 40, genesisHead(devid))
        expect(s.blocks() > 2).toBe(true)
        for (let n = s.firstBlock; n < s.lastBlock; n++) expect((await kvGet(blockKey(n))).length <= VALUE_MAX).toBe(true)
        const t = new LogStore(devid, 16)
        expect(await t.open()).toBe(undefined)
        expect(t.nextSeq).toBe(40)
        expect(bufEq(t.head, head)).toBe(true)
        // every record comes back from the parts an upload would send, byte for byte
        const p = await t.pending(0, 100000)
        expect(p.firstSeq).toBe(0)
        expect(p.count).toBe(40)
        let seq = 0
        for (const part of p.parts) {
            const d = new PackDecoder(part.stream, 0, seq)
            for (let i = 0; i < part.count; i++) {
                expect(bufEq(d.next(), cfg(seq++))).toBe(true)
                await ds.sleep(0)
            }
        }
        expect(bufEq(await t.headAt(39), head)).toBe(true)
    })

    test("a power cut after a flush, before the tail was rewritten: open() completes it", async () => {
        await wipe()
        const devid = newDevid()
        const s = new LogStore(devid, 16)
        await s.open()
        let head = genesisHead(devid)
        // append until an append flushes the tail into the open block's value, keeping the tail before it
        let before: Buffer = undefined
        for (let i = 0; i < 200; i++) {
            const value = await kvGet(blockKey(s.lastBlock))
            before = await kvGet("tl")
            const last = s.lastBlock
            const rec = cfg(s.nextSeq)
            await s.append(rec)
            head = nextHead(head, rec)
            const grown = await kvGet(blockKey(last))
            if (s.lastBlock === last && grown.length > value.length) break
            before = undefined
        }
        expect(before !== undefined).toBe(true)
        // the cut: the tail as it was before that append, and that append's record lost with it
        await kvSet("tl", before)
        const t = new LogStore(devid, 16)
        expect(await t.open()).toBe(undefined)
        expect(t.nextSeq).toBe(s.nextSeq - 1)
    })

    test("a power cut after a block was closed, before the next opened: open() opens it", async () => {
        await wipe()
        const devid = newDevid()
        const s = new LogStore(devid, 16)
        await s.open()
        let head = genesisHead(devid)
        for (let i = 0; i < 200; i++) {
            const tl = await kvGet("tl")
            const meta = await kvGet("lgmeta")
            const last = s.lastBlock
            const rec = cfg(s.nextSeq)
            await s.append(rec)
            if (s.lastBlock !== last) {
                // cut between the close (block `last` rewritten finished) and the next block's creation
                await kvDelete(blockKey(s.lastBlock))
                await kvSet("lgmeta", meta)
                await kvSet("tl", tl)
                const t = new LogStore(devid, 16)
                expect(await t.open()).toBe(undefined)
                // opened again (or, when the closed stream ended exactly with the tail, still open:
                // a flushed block and a closed one are then the same bytes)
                expect(t.lastBlock >= last).toBe(true)
                expect(t.nextSeq).toBe(s.nextSeq - 1)
                expect(bufEq(t.head, head)).toBe(true)
                // and it goes on, and reopens to the same state
                const again = cfg(t.nextSeq)
                await t.append(again)
                const u = new LogStore(devid, 16)
                expect(await u.open()).toBe(undefined)
                expect(bufEq(u.head, nextHead(head, again))).toBe(true)
                return
            }
            head = nextHead(head, rec)
        }
        expect("a block closed").toBe("never")
    })

    test("a damaged open block is reported, not silently accepted", async () => {
        await wipe()
        const devid = newDevid()
        const s = new LogStore(devid, 16)
        await s.open()
        await fill(s, 12, genesisHead(devid))
        const v = await kvGet(blockKey(s.lastBlock))
        if (v.length > 6) {
            v[5] ^= 0x40
            await kvSet(blockKey(s.lastBlock), v)
            const t = new LogStore(devid, 16)
            expect((await t.open()) !== undefined).toBe(true)
        }
    })

    test("acknowledge frees whole blocks, refuses a head that is not ours, ignores old acks", async () => {
        await wipe()
        const devid = newDevid()
        const s = new LogStore(devid, 16)
        await s.open()
        await fill(s, 40, genesisHead(devid))
        const blocks = s.blocks()
        const wrong = Buffer.alloc(32)
        expect(await s.acknowledge(30, wrong, 1)).toBe(false)
        expect(s.ackSeq).toBe(NONE)
        expect(s.blocks()).toBe(blocks)
        expect(await s.acknowledge(39, await s.headAt(39), 1)).toBe(true)
        expect(s.ackSeq).toBe(39)
        expect(s.blocks()).toBe(1)
        expect(await s.acknowledge(20, await s.headAt(39), 1)).toBe(true) // at or below: nothing to do
        expect(await s.acknowledge(45, await s.headAt(39), 1)).toBe(false) // not appended yet
    })

    test("a server that went back (restored database): the ack is lowered to what it holds, the rest sent again", async () => {
        await wipe()
        const devid = newDevid()
        const s = new LogStore(devid, 16)
        await s.open()
        await fill(s, 40, genesisHead(devid))
        const open = (await kvGet(blockKey(s.lastBlock))).getAt(0, "u32")
        // acknowledged up to 39: the closed blocks are freed, the open one (from `open`) stays
        expect(open > 4 && open + 1 < 39).toBe(true)
        expect(await s.acknowledge(39, await s.headAt(39), 1)).toBe(true)
        expect(await s.firstHeld()).toBe(open)
        // not below our ack, or another history at a seq we hold: nothing changes
        expect(await s.rewindAck(39, await s.headAt(39), 1)).toBe(false)
        expect(await s.rewindAck(open + 1, Buffer.alloc(32), 1)).toBe(false)
        expect(s.ackSeq).toBe(39)
        // the server holds up to open + 1 (a seq we still hold, same head): resend from open + 2
        expect(await s.rewindAck(open + 1, await s.headAt(open + 1), 1)).toBe(true)
        expect(s.ackSeq).toBe(open + 1)
        expect((await kvGet("lgack")).getAt(0, "u32")).toBe(open + 1)
        let p = await s.pending(s.ackSeq + 1, 100000)
        expect(p.firstSeq).toBe(open)
        expect(p.prevHead).toBe(undefined)
        // the server holds up to 3, freed here: the next batch starts a new segment at the first held record
        expect(await s.rewindAck(3, Buffer.alloc(32), 1)).toBe(true)
        p = await s.pending(4, 100000)
        expect(p.firstSeq).toBe(open)
        expect(bufEq(p.prevHead, s.baseHead)).toBe(true)
        // it holds nothing at all
        expect(await s.rewindAck(NONE, Buffer.alloc(32), 1)).toBe(true)
        expect(s.ackSeq).toBe(NONE)
        expect(await kvGet("lgack")).toBe(undefined)
        const t = new LogStore(devid, 16)
        expect(await t.open()).toBe(undefined)
        expect(t.ackSeq).toBe(NONE)
    })

    test("eviction drops the oldest closed block; an upload then starts after it with the base head", async () => {
        await wipe()
        const devid = newDevid()
        const s = new LogStore(devid, 3)
        await s.open()
        await fill(s, 40, genesisHead(devid))
        expect(s.overBudget()).toBe(true)
        let n = 0
        const range = await s.oldest(r => {
            n++
        })
        expect(range[0]).toBe(0)
        expect(n).toBe(range[1] + 1)
        expect(await s.evictOldest()).toBe(true)
        const p = await s.pending(0, 100000)
        expect(p.firstSeq).toBe(range[1] + 1)
        expect(bufEq(p.prevHead, await s.headAt(range[1]))).toBe(true)
    })

    test("the three profiles differ as expected", async () => {
        let stable = 0
        let fridge = 0
        for (let i = 1; i < 100; i++) {
            stable += Math.abs(profileTc("stable", i) - profileTc("stable", i - 1))
            fridge += Math.abs(profileTc("fridge", i) - profileTc("fridge", i - 1))
        }
        expect(stable < fridge).toBe(true)
    })
})
