import { HEADER_LEN, KIND_SAMPLE, SAMPLE_LEN, recordKind } from "./record"

/**
 * The compact encoding of records as items (docs/format.md section 4), used by flash blocks and
 * batch bodies. Decoding reproduces canonical records byte for byte.
 *   0x01 full: kind u8, len u8, payload
 *   0x02 run:  n u8, step u16 (s), ceil(n/2) nibble bytes: samples derived from the previous one
 */
export const ITEM_FULL = 0x01
export const ITEM_RUN = 0x02
const RUN_HDR = 4

/**
 * Decodes items into canonical records. Keeps the reference sample and where the last item
 * started, so an encoder can resume appending to a decoded block.
 */
export class ItemDecoder {
    seq: number
    /** canonical bytes of the reference sample (the last sample decoded), or undefined */
    ref: Buffer = undefined
    /** offset of the last item and whether it is a run (with its n and step) */
    lastItem = -1
    lastIsRun = false
    runN = 0
    runStep = 0
    error: string = undefined

    constructor(firstSeq: number) {
        this.seq = firstSeq
    }

    /** Decode items in buf[off..end); push records to `out` (when given). false on a malformed item. */
    decode(buf: Buffer, off: number, end: number, out: Buffer[]): boolean {
        while (off < end) {
            const tag = buf[off]
            this.lastItem = off
            if (tag === ITEM_FULL) {
                if (off + 3 > end) return this.fail("truncated full item")
                const len = buf[off + 2]
                if (len < 4 || off + 3 + len > end) return this.fail("truncated full item")
                const rec = Buffer.alloc(HEADER_LEN + len)
                rec.setAt(0, "u32", this.seq)
                rec.blitAt(4, buf, off + 1, 2 + len)
                if (rec[4] === KIND_SAMPLE && len === 12) this.ref = rec
                if (out) out.push(rec)
                this.seq++
                this.lastIsRun = false
                off += 3 + len
            } else if (tag === ITEM_RUN) {
                if (off + RUN_HDR > end) return this.fail("truncated run")
                const n = buf[off + 1]
                const step = buf.getAt(off + 2, "u16")
                const nb = (n + 1) >> 1
                if (!n || !step || off + RUN_HDR + nb > end) return this.fail("bad run header")
                if (!this.ref) return this.fail("run without a reference sample")
                if (n & 1 && buf[off + RUN_HDR + nb - 1] >> 4) return this.fail("run pad nibble not zero")
                for (let i = 0; i < n; ++i) {
                    const byte = buf[off + RUN_HDR + (i >> 1)]
                    let d = i & 1 ? byte >> 4 : byte & 0x0f
                    if (d > 7) d -= 16
                    const rec = this.ref.slice(0)
                    rec.setAt(0, "u32", this.seq)
                    rec.setAt(6, "u32", this.ref.getAt(6, "u32") + step * 1000)
                    rec.setAt(10, "i32", this.ref.getAt(10, "i32") + d)
                    this.ref = rec
                    if (out) out.push(rec)
                    this.seq++
                }
                this.lastIsRun = true
                this.runN = n
                this.runStep = step
                off += RUN_HDR + nb
            } else return this.fail("unknown item tag")
        }
        return true
    }

    private fail(why: string): boolean {
        this.error = why
        return false
    }
}

/**
 * Appends records to an item stream, extending the last run when the sample allows it, starting a
 * run when a reference sample exists, else writing a full item. `append` returns the new stream
 * (the old one is left untouched, so a failed flash write changes nothing).
 */
export class ItemEncoder {
    ref: Buffer = undefined
    runAt = -1
    runN = 0
    runStep = 0

    /** Continue after a decoded stream (see ItemDecoder). */
    resume(d: ItemDecoder) {
        this.ref = d.ref
        this.runAt = d.lastIsRun ? d.lastItem : -1
        this.runN = d.runN
        this.runStep = d.runStep
    }

    /** How `rec` would be added after the reference: 0 full, 1 extend run, 2 new run; and the delta. */
    private plan(rec: Buffer): number {
        const ref = this.ref
        if (!ref || recordKind(rec) !== KIND_SAMPLE || rec.length !== SAMPLE_LEN) return 0
        if (rec.getAt(14, "i16") !== ref.getAt(14, "i16") || rec[16] !== ref[16] || rec[17] !== ref[17]) return 0
        const d = rec.getAt(10, "i32") - ref.getAt(10, "i32")
        if (d < -8 || d > 7) return 0
        const dt = rec.getAt(6, "u32") - ref.getAt(6, "u32")
        // range first: `%` is inexact in the VM beyond 2^31
        if (dt <= 0 || dt > 65535000 || dt % 1000) return 0
        if (this.runAt >= 0 && this.runN < 255 && this.runStep * 1000 === dt) return 1
        return 2
    }

    /** `buf` is the current stream (may be empty); `base` the offset where items begin. */
    append(buf: Buffer, rec: Buffer): Buffer {
        const how = this.plan(rec)
        let out: Buffer
        if (how === 1) {
            const d = (rec.getAt(10, "i32") - this.ref.getAt(10, "i32")) & 0x0f
            if (this.runN & 1) {
                out = buf.slice(0)
                out[out.length - 1] = out[out.length - 1] | (d << 4)
            } else {
                out = buf.concat(Buffer.from([d]))
            }
            out[this.runAt + 1] = this.runN + 1
            this.runN++
        } else if (how === 2) {
            const step = (rec.getAt(6, "u32") - this.ref.getAt(6, "u32")) / 1000
            const item = Buffer.alloc(RUN_HDR + 1)
            item[0] = ITEM_RUN
            item[1] = 1
            item.setAt(2, "u16", step)
            item[4] = (rec.getAt(10, "i32") - this.ref.getAt(10, "i32")) & 0x0f
            this.runAt = buf.length
            this.runN = 1
            this.runStep = step
            out = buf.concat(item)
        } else {
            const item = Buffer.alloc(1 + rec.length - 4)
            item[0] = ITEM_FULL
            item.blitAt(1, rec, 4, rec.length - 4)
            this.runAt = -1
            out = buf.concat(item)
        }
        if (recordKind(rec) === KIND_SAMPLE && rec.length === SAMPLE_LEN) this.ref = rec
        return out
    }
}
