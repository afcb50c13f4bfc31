// A host model of the logger's upload loop with the resynchronisation after a server restore that
// docs/uplink.md proposes for the firmware (issue 12 item 4): acks are taken only when their MAC
// verifies under ackkey and they echo the batch's nonce (CTA3); a 409 whose ack names a seq below the device's own ack means the server
// went back (a database restored from an older copy), and the device resends from the seq after
// it while it still holds those records, else from its first held record with PREV (the gap is
// then lost on both sides, and stated as such).
import { decodeAck, encodeBatch, epochKey } from "../../src/format/index.js"
import type { LogWriter } from "./shipment-log.js"

export interface UploadEvent {
    first: number
    last: number
    prev: boolean
    status: number
    ackSeq: number | null
}

export class ResyncUploader {
    /** the device's own acknowledged seq (lgack), -1 for none */
    ackSeq = -1
    /** the first record the device still holds */
    first = 0
    readonly events: UploadEvent[] = []
    /** seqs the device could not resend after a restore: freed after an ack the server no longer has */
    lost: { first: number; last: number } | null = null

    constructor(
        readonly w: LogWriter,
        public url: string,
        /** acknowledged records the device keeps (the firmware frees acknowledged blocks only when it needs the space) */
        readonly keep: number,
        readonly batch = 50,
    ) {}

    private nonce = 0x5e5e0000

    private async post(from: number, to: number, prev: boolean) {
        const epoch = this.w.epochAt[to]
        const nonce = ++this.nonce >>> 0
        const body = encodeBatch({
            devid: this.w.devid,
            boot: this.w.bootAt[to],
            epoch,
            firstSeq: from,
            prevHead: prev ? this.w.heads[from - 1] : undefined,
            records: this.w.bytes.slice(from, to + 1),
            key: epochKey(this.w.k0, epoch),
            nonce,
        })
        const res = await fetch(`${this.url}/v1/batch`, { method: "POST", body: new Uint8Array(body) })
        const b = Buffer.from(await res.arrayBuffer())
        let ack: ReturnType<typeof decodeAck> | null = null
        if (res.status === 200 || res.status === 409) {
            try {
                ack = decodeAck(b, this.w.ackkey) // throws unless its MAC verifies
                if (ack.nonce !== nonce) ack = null // not the answer to this batch (a recorded ack replayed)
            } catch {
                ack = null
            }
        }
        this.events.push({ first: from, last: to, prev, status: res.status, ackSeq: ack?.ackSeq ?? null })
        return { status: res.status, ack }
    }

    /** The device's own head at seq, when it still knows it (a held record, or lgmeta's base head: the head before its first held block). */
    private knows(seq: number): boolean {
        return seq >= this.first - 1 && seq < this.w.seq
    }

    /** Upload everything recorded up to `upTo`; false when a reply stops it (never loops forever). */
    async uploadTo(upTo: number): Promise<boolean> {
        for (let guard = 0; guard < 10_000; guard++) {
            let from = this.ackSeq + 1
            let prev = false
            if (from < this.first) {
                from = this.first
                prev = from > 0
            }
            if (from > upTo) return true
            const to = Math.min(upTo, from + this.batch - 1)
            const { status, ack } = await this.post(from, to, prev)
            if (!ack) return false
            const held = ack.ackSeq
            if (status === 200 && held !== null && held > this.ackSeq && this.w.heads[held].equals(ack.head!)) {
                this.ackSeq = held
                this.first = Math.max(this.first, held + 1 - this.keep)
                continue
            }
            if (status !== 409) return false
            // the server holds less than the device's ack: it went back
            const back = held === null ? -1 : held
            if (back >= this.ackSeq) {
                if (back > this.ackSeq && this.w.heads[back].equals(ack.head!))
                    this.ackSeq = back // an ack that was lost
                else return false
                continue
            }
            if (back >= 0 && this.knows(back) && !this.w.heads[back].equals(ack.head!)) return false // another history: stop
            if (back + 1 < this.first) this.lost = { first: back + 1, last: this.first - 1 }
            this.ackSeq = back // resend from back + 1, or from the first held record with PREV
        }
        return false
    }
}
