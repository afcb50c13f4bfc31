// The DeviceScript runtime's settings store as the simulator's VM leaves it in its flash file
// (`.devicescript/flash/sim.bin`): jacdac-c's "fstor" layout, read here so a long run can watch
// what the store has left. Two header areas of `header_pages` pages each (the newer generation is
// the live one); entries (key[16], offset u32, size u32) grow up from the header, small values grow
// down from its end; a key written again or deleted (size 0) leaves its old entry until the store
// compacts (copies the newest entry of every key into the other area, deleted keys included).

export const FSTOR_MAGIC0 = 0x52545346
export const FSTOR_MAGIC1 = 0x6becea0a
const HEADER_LEN = 24
const ENTRY_LEN = 24
const KEY_LEN = 16

export interface FstorEntry {
    key: string
    offset: number
    size: number
}

export interface FstorState {
    generation: number
    pageSize: number
    headerBytes: number
    /** every entry of the live area, in write order */
    entries: FstorEntry[]
    /** the newest entry of each key (what a compaction keeps) */
    live: Map<string, FstorEntry>
    /** keys whose newest entry is a delete: kept for good (a compaction copies them) */
    deleted: number
    /** bytes the store can take now before it must compact */
    freeNow: number
    /** bytes it would have right after a compaction: the figure that must stay flat */
    freeAfterCompaction: number
}

const align8 = (n: number) => (n === 0 ? 8 : (n + 7) & ~7)

/** true for a large value (its key starts with '*': data pages of its own, not in the header area) */
const isLarge = (e: FstorEntry) => e.key.startsWith("*")

/** The live store in a flash image; throws when there is none (or the image is half-written). */
export function readFstor(image: Buffer): FstorState {
    let best: { at: number; gen: number; pageSize: number; headerPages: number } | undefined
    for (let at = 0; at + HEADER_LEN <= image.length; at += 4096) {
        if (image.readUInt32LE(at) !== FSTOR_MAGIC0 || image.readUInt32LE(at + 4) !== FSTOR_MAGIC1) continue
        const gen = image.readUInt32LE(at + 8)
        if (!best || gen > best.gen) best = { at, gen, pageSize: image.readUInt32LE(at + 12), headerPages: image.readUInt16LE(at + 18) }
    }
    if (!best) throw new Error("fstor: no valid header")
    const headerBytes = best.headerPages * best.pageSize
    const end = best.at + headerBytes
    const entries: FstorEntry[] = []
    let minOff = end
    let p = best.at + HEADER_LEN
    for (; p + ENTRY_LEN <= end; p += ENTRY_LEN) {
        const offset = image.readUInt32LE(p + KEY_LEN)
        if (offset === 0xffffffff) break
        const raw = image.subarray(p, p + KEY_LEN)
        const key = raw.subarray(0, raw.indexOf(0) < 0 ? KEY_LEN : raw.indexOf(0)).toString("latin1")
        const e = { key, offset, size: image.readUInt32LE(p + KEY_LEN + 4) }
        entries.push(e)
        if (offset < minOff) minOff = offset
        if (p + ENTRY_LEN > minOff) throw new Error("fstor: entries run into the data")
    }
    const live = new Map<string, FstorEntry>()
    for (const e of entries) live.set(e.key, e)
    let kept = 0
    let deleted = 0
    for (const e of live.values()) {
        kept += ENTRY_LEN + (isLarge(e) ? 0 : align8(e.size))
        if (e.size === 0) deleted++
    }
    // the runtime keeps two entries' worth free (jd_fstor free_space)
    const lastEntryEnd = best.at + HEADER_LEN + entries.length * ENTRY_LEN
    const freeNow = Math.max(0, minOff - (lastEntryEnd - ENTRY_LEN) - 2 * ENTRY_LEN)
    const freeAfterCompaction = Math.max(0, headerBytes - HEADER_LEN - kept - ENTRY_LEN)
    return { generation: best.gen, pageSize: best.pageSize, headerBytes, entries, live, deleted, freeNow, freeAfterCompaction }
}
