// src/sim/fstor.ts against a hand-built image in jacdac-c's fstor layout: two header areas, the newer
// generation live, entries growing up, small values growing down, a key written twice, a deleted key
// and a large value.
import { describe, expect, test } from "vitest"
import { readFstor, FSTOR_MAGIC0, FSTOR_MAGIC1 } from "../src/sim/fstor.js"

const PAGE = 4096
const HEADER_PAGES = 2
const AREA = PAGE * HEADER_PAGES

function area(image: Buffer, at: number, gen: number, entries: [string, number, number][]) {
    image.writeUInt32LE(FSTOR_MAGIC0, at)
    image.writeUInt32LE(FSTOR_MAGIC1, at + 4)
    image.writeUInt32LE(gen, at + 8)
    image.writeUInt32LE(PAGE, at + 12)
    image.writeUInt16LE(32, at + 16)
    image.writeUInt16LE(HEADER_PAGES, at + 18)
    entries.forEach(([key, offset, size], i) => {
        const p = at + 24 + 24 * i
        image.fill(0, p, p + 16)
        image.write(key, p, "latin1")
        image.writeUInt32LE(offset, p + 16)
        image.writeUInt32LE(size, p + 20)
    })
}

describe("readFstor", () => {
    test("takes the newer area, the newest entry per key, and says what is free now and after a compaction", () => {
        const image = Buffer.alloc(2 * AREA + PAGE, 0xff)
        area(image, 0, 7, [[":old", AREA - 8, 8]])
        // live area at AREA: values at its end, growing down
        const end = 2 * AREA
        area(image, AREA, 8, [
            [":a", end - 16, 10], // 16 aligned
            [":b", end - 24, 8],
            [":a", end - 224, 200], // supersedes the first :a
            [":b", end - 232, 0], // deleted: 8 bytes kept, for good
            ["*prog", 5 * PAGE, 3000], // large: pages of its own
        ])
        const s = readFstor(image)
        expect(s.generation).toBe(8)
        expect(s.headerBytes).toBe(AREA)
        expect(s.entries.length).toBe(5)
        expect([...s.live.keys()]).toEqual([":a", ":b", "*prog"])
        expect(s.live.get(":a")!.size).toBe(200)
        expect(s.deleted).toBe(1)
        // now: the data starts at the lowest offset (end - 232); the runtime keeps two entries spare
        const lastEntry = AREA + 24 + 24 * 4
        expect(s.freeNow).toBe(end - 232 - lastEntry - 48)
        // after a compaction: 3 entries and 200 + 8 (the delete) bytes of values, large values elsewhere
        expect(s.freeAfterCompaction).toBe(AREA - 24 - (3 * 24 + 200 + 8) - 24)
    })

    test("an image with no valid header (half-written, or not a store) throws", () => {
        expect(() => readFstor(Buffer.alloc(3 * PAGE, 0xff))).toThrow(/no valid header/)
        const cut = Buffer.alloc(60, 0xff) // the write stopped inside the entries
        area(cut, 0, 1, [[":a", AREA - 8, 8]])
        expect(() => readFstor(cut)).toThrow()
    })
})
