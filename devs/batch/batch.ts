import { hmac } from "@devicescript/crypto"
import { bufEq } from "../chain/chain"

/** Batch and acknowledgement (docs/format.md sections 5 and 6). */
export const ACK_NONE = 0xffffffff

export function encodeBatch(devid: Buffer, devkey: Buffer, firstSeq: number, prevHead: Buffer, records: Buffer[]): Buffer {
    const recs = Buffer.concat(...records)
    const hdr = Buffer.alloc(52)
    hdr.blitAt(0, "CTB1", 0, 4)
    hdr.blitAt(4, devid, 0, 8)
    hdr.setAt(12, "u32", firstSeq)
    hdr.setAt(16, "u16", records.length)
    hdr.setAt(18, "u16", recs.length)
    hdr.blitAt(20, prevHead, 0, 32)
    const body = hdr.concat(recs)
    return body.concat(hmac(devkey, "sha256", body))
}

export function ackKey(devkey: Buffer): Buffer {
    return hmac(devkey, "sha256", "coldtrace-ack-v1")
}

export interface Ack {
    ackSeq: number
    head: Buffer
}

/** An authenticated ack for this device, or undefined (wrong length, device, magic or MAC). */
export function parseAck(body: Buffer, devid: Buffer, ackkey: Buffer): Ack {
    if (!body || body.length !== 80) return undefined
    if (body.slice(0, 4).toString("utf-8") !== "CTA1") return undefined
    if (!bufEq(body.slice(4, 12), devid)) return undefined
    if (!bufEq(hmac(ackkey, "sha256", body.slice(0, 48)), body.slice(48, 80))) return undefined
    return { ackSeq: body.getAt(12, "u32"), head: body.slice(16, 48) }
}
