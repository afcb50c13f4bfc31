import * as ds from "@devicescript/core"
import { hmac } from "@devicescript/crypto"
import { bufEq } from "../chain/chain"
import { ItemEncoder } from "../record/items"

/** Batch and acknowledgement (docs/format.md sections 6 and 7). */
export const ACK_NONE = 0xffffffff
const FLAG_PREV = 0x01

/** `prevHead` is included (flag PREV) only when the batch does not continue the last checkpoint. */
export async function encodeBatch(
    devid: Buffer,
    key: Buffer,
    boot: number,
    epoch: number,
    firstSeq: number,
    prevHead: Buffer,
    records: Buffer[],
): Promise<Buffer> {
    const enc = new ItemEncoder()
    let body = Buffer.alloc(0)
    for (let i = 0; i < records.length; ++i) {
        body = enc.append(body, records[i])
        // the VM panics after ~100k instructions without a pause
        if ((i & 31) === 31) await ds.sleep(0)
    }
    const hdrLen = prevHead ? 61 : 29
    const hdr = Buffer.alloc(hdrLen)
    hdr.blitAt(0, "CTB2", 0, 4)
    hdr.blitAt(4, devid, 0, 8)
    hdr.setAt(12, "u32", boot)
    hdr.setAt(16, "u32", epoch)
    hdr.setAt(20, "u32", firstSeq)
    hdr.setAt(24, "u16", records.length)
    hdr.setAt(26, "u8", prevHead ? FLAG_PREV : 0)
    if (prevHead) hdr.blitAt(27, prevHead, 0, 32)
    hdr.setAt(hdrLen - 2, "u16", body.length)
    const signed = hdr.concat(body)
    return signed.concat(hmac(key, "sha256", signed).slice(0, 16))
}

export interface Ack {
    seq: number
    head: Buffer
    boot: number
    epoch: number
}

/** An authenticated ack for this device, or undefined (wrong length, device, magic or MAC). */
export function parseAck(body: Buffer, devid: Buffer, ackkey: Buffer): Ack {
    if (!body || body.length !== 72) return undefined
    if (body.slice(0, 4).toString("utf-8") !== "CTA2") return undefined
    if (!bufEq(body.slice(4, 12), devid)) return undefined
    if (!bufEq(hmac(ackkey, "sha256", body.slice(0, 56)).slice(0, 16), body.slice(56, 72))) return undefined
    return { seq: body.getAt(12, "u32"), head: body.slice(16, 48), boot: body.getAt(48, "u32"), epoch: body.getAt(52, "u32") }
}
