// A logger's flash laid out host-side the way the firmware leaves it (docs/format.md section 5):
// closed blocks of packed records round the ring b00..b3f, the open block's value and its tail
// (`tl`), lgmeta, lgack and the wake state `st`. For tests, vectors and tools that need a device
// image without the DeviceScript VM; readFlashLog reads it back.
import {
    BLOCK_HEADER_LEN,
    BLOCK_MAX_LEN,
    BLOCK_SLOTS,
    LOG_ACK_KEY,
    LOG_META_KEY,
    PackEncoder,
    STATE_KEY,
    TAIL_KEY,
    TAIL_MAX_BYTES,
    blockKey,
    encodeLogAck,
    encodeLogMeta,
    encodePackState,
    encodeTail,
    hashRun,
    nextHead,
    type LogAck,
} from "../format/index.js"

/** `st` as the firmware writes it (devs/app/state.ts): 128 bytes, version 3, boot counter at 4. */
export const STATE_LEN = 128
export const STATE_VERSION = 3

export interface FlashImageInput {
    /** canonical records held, consecutive from their first seq */
    records: Buffer[]
    /** head before the first record (the genesis head for a log from seq 0) */
    baseHead: Buffer
    /** number of the first held block (the ring position is n mod 64) */
    firstBlock?: number
    ack?: LogAck | null
    boot: number
    /** stream bytes of the open block left in the tail rather than flushed into its value (default 7) */
    tailBytes?: number
}

export interface FlashImage {
    /** settings key -> value */
    settings: Map<string, Buffer>
    /** first seq of each block, in ring order (the last is the open block) */
    blockFirstSeqs: number[]
    head: Buffer
}

/**
 * Lays the records out greedily: each closed block holds as many records as fit 224 bytes once
 * finished; the rest is the open block, whose value holds first_seq and the stream emitted so far
 * minus the last `tailBytes`, which the tail holds with the encoder's state.
 */
export function flashImage(inp: FlashImageInput): FlashImage {
    const { records } = inp
    if (!records.length) throw new RangeError("a flash image holds at least one record")
    const first = inp.firstBlock ?? 0
    const settings = new Map<string, Buffer>()
    const starts: number[] = []
    let i = 0
    // closed blocks
    const groups: Buffer[][] = []
    let enc: PackEncoder | null = null
    let from = 0
    for (; i < records.length; i++) {
        enc ??= new PackEncoder(records[i].readUInt32LE(0))
        enc.add(records[i])
        if (BLOCK_HEADER_LEN + enc.finish().length > BLOCK_MAX_LEN) {
            if (i === from) throw new RangeError(`record ${records[i].readUInt32LE(0)} alone does not fit a block`)
            groups.push(records.slice(from, i))
            from = i
            enc = new PackEncoder(records[i].readUInt32LE(0))
            enc.add(records[i])
        }
    }
    groups.push(records.slice(from))
    if (groups.length > BLOCK_SLOTS) throw new RangeError(`${groups.length} blocks do not fit the ring of ${BLOCK_SLOTS}`)
    let head = inp.baseHead
    let openHead = head
    groups.forEach((g, n) => {
        const firstSeq = g[0].readUInt32LE(0)
        starts.push(firstSeq)
        const fs = Buffer.alloc(BLOCK_HEADER_LEN)
        fs.writeUInt32LE(firstSeq, 0)
        const enc = new PackEncoder(firstSeq)
        for (const r of g) enc.add(r)
        const key = blockKey(first + n)
        if (n < groups.length - 1) {
            settings.set(key, Buffer.concat([fs, enc.finish()]))
        } else {
            openHead = head
            const out = Buffer.from(enc.rc.out)
            const k = Math.min(out.length, inp.tailBytes ?? 7, TAIL_MAX_BYTES)
            const value = Buffer.concat([fs, out.subarray(0, out.length - k)])
            settings.set(key, value)
            const last = hashRun(head, g)
            settings.set(
                TAIL_KEY,
                encodeTail({
                    nextSeq: firstSeq + g.length,
                    head: last,
                    blockLen: value.length,
                    bytes: out.subarray(out.length - k),
                    state: encodePackState(enc.rc.state(), enc.m),
                }),
            )
        }
        for (const r of g) head = nextHead(head, r)
    })
    settings.set(LOG_META_KEY, encodeLogMeta({ firstBlock: first, lastBlock: first + groups.length - 1, baseHead: inp.baseHead, openHead }))
    if (inp.ack) settings.set(LOG_ACK_KEY, encodeLogAck(inp.ack))
    const st = Buffer.alloc(STATE_LEN)
    st[0] = STATE_VERSION
    st.writeUInt32LE(inp.boot, 4)
    settings.set(STATE_KEY, st)
    return { settings, blockFirstSeqs: starts, head }
}

/** The image as an export file's settings (hex values). */
export function imageSettingsHex(img: FlashImage): Record<string, string> {
    return Object.fromEntries([...img.settings].map(([k, v]) => [k, v.toString("hex")]))
}
