import { hmac } from "@devicescript/crypto"
import { bufEq } from "../chain/chain"
import { Pending } from "../flash/logstore"

/**
 * Batch and acknowledgement (docs/format.md sections 6 and 7). The body is the flash blocks' packed
 * streams as they are ("parts"): an upload copies bytes, it never decodes or re-encodes records.
 */
export const ACK_NONE = 0xffffffff
const FLAG_PREV = 0x01
const FIXED = 31
export const ACK_LEN = 84

/** The signed batch for `p` (parts from p.firstSeq; PREV when p.prevHead is set). */
export function encodeBatch(devid: Buffer, key: Buffer, boot: number, epoch: number, nonce: number, p: Pending): Buffer {
    let bodyLen = 0
    for (const part of p.parts) bodyLen += 4 + part.stream.length
    const hdrLen = FIXED + (p.prevHead ? 32 : 0) + 2
    const b = Buffer.alloc(hdrLen + bodyLen)
    b.blitAt(0, "CTB3", 0, 4)
    b.blitAt(4, devid, 0, 8)
    b.setAt(12, "u32", boot)
    b.setAt(16, "u32", epoch)
    b.setAt(20, "u32", nonce >>> 0)
    b.setAt(24, "u32", p.firstSeq)
    b.setAt(28, "u16", p.count)
    b.setAt(30, "u8", p.prevHead ? FLAG_PREV : 0)
    if (p.prevHead) b.blitAt(FIXED, p.prevHead, 0, 32)
    b.setAt(hdrLen - 2, "u16", bodyLen)
    let off = hdrLen
    for (const part of p.parts) {
        b.setAt(off, "u16", part.stream.length)
        b.setAt(off + 2, "u16", part.count)
        b.blitAt(off + 4, part.stream, 0, part.stream.length)
        off += 4 + part.stream.length
    }
    return b.concat(hmac(key, "sha256", b).slice(0, 16))
}

export interface Ack {
    seq: number
    head: Buffer
    boot: number
    epoch: number
    nonce: number
    /** the server's UTC, ms (0: none) */
    utc: number
}

/** An authenticated ack for this device, or undefined (wrong length, device, magic or MAC). */
export function parseAck(body: Buffer, devid: Buffer, ackkey: Buffer): Ack {
    if (!body || body.length !== ACK_LEN) return undefined
    if (body.slice(0, 4).toString("utf-8") !== "CTA3") return undefined
    if (!bufEq(body.slice(4, 12), devid)) return undefined
    if (!bufEq(hmac(ackkey, "sha256", body.slice(0, 68)).slice(0, 16), body.slice(68, 84))) return undefined
    return {
        seq: body.getAt(12, "u32"),
        head: body.slice(16, 48),
        boot: body.getAt(48, "u32"),
        epoch: body.getAt(52, "u32"),
        nonce: body.getAt(56, "u32"),
        utc: body.getAt(60, "u32") + body.getAt(64, "u32") * 4294967296,
    }
}
