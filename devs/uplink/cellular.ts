import { Clock } from "../hal/clock"
import { Notecard, NotecardError, base64Decode, maxNotePayload } from "./notecard"
import { UplinkReply } from "./http"
import { Uplink } from "./uplink"

/*
 * The cellular uplink: a batch goes to Notehub as one Notecard note, the server's acknowledgement
 * comes back as an inbound note (docs/uplink.md).
 *
 *   send(batch):  note.add  batch.qo  {first, n}  payload = the batch (base64), sync:true
 *                 hub.sync
 *                 poll:    note.get ack.qi delete:true  (until the queue is empty)  -> acks
 *                          hub.sync.status               -> did our note go up?
 *                          hub.sync                      (with back-off: inbound notes come down
 *                                                         only during a sync)
 *
 * An inbound ack note carries the server's 84-byte ack as its payload and echoes the batch note's
 * body {first, n} plus the HTTP status ({first, n, status}) in its body. Acks for earlier batches
 * (late, duplicated by the relay) are drained too: the uplink returns the one with the highest seq
 * for this device, {status, body: ack}; the logger authenticates it (parseAck), this uplink only
 * filters by length, magic and devid. Polling stops early once an ack answers this batch (its body
 * echoes our {first, n}, or its seq covers our last record).
 *
 * Throws (the logger then backs off): the batch is larger than one note can carry (maxPayload), the
 * card does not answer or reports an error, the note did not go up within `connectTimeoutMs` (no
 * network: the note is then deleted from the card, so stale batches do not pile up and go out
 * later), no ack at all within `ackTimeoutMs`. All timing is device time (the Clock).
 */

export const BATCH_FILE = "batch.qo"
export const ACK_FILE = "ack.qi"
const ACK_LEN = 84
const ACK_NONE = 0xffffffff

/**
 * Largest batch one note carries: note.add of batch.qo with the largest body this uplink writes,
 * under the Notecard's 8 KB request limit (base64 payload). 6,081 bytes.
 */
export const MAX_CELLULAR_BATCH = maxNotePayload(BATCH_FILE, { first: 4294967295, n: 65535 }, true)

export interface CellularOptions {
    /** the device id: acks for other devices are ignored; also the card's serial number (hex) */
    devid: Buffer
    /** Notehub ProductUID (provisioning setting `ncproduct`) */
    product: string
    clock?: Clock
    /** device ms to wait for an acknowledgement after the note went up, default 600000 (10 min) */
    ackTimeoutMs?: number
    /** device ms for the note to go up before "no network", default 180000 (3 min) */
    connectTimeoutMs?: number
    /** first wait between polls (device ms), doubling up to pollMaxMs; default 5000 */
    pollMinMs?: number
    /** default 60000 */
    pollMaxMs?: number
    /** largest batch accepted, default (and at most) MAX_CELLULAR_BATCH */
    maxPayload?: number
    /** periodic mode: minutes between the card's own outbound / inbound syncs, default 60 / 60 */
    outboundMin?: number
    inboundMin?: number
}

/** one inbound ack note that passed the filter */
class AckNote {
    seq = 0
    status = 200
    answers = false
    body: Buffer = undefined
}

function ackRank(seq: number): number {
    return seq === ACK_NONE ? -1 : seq
}

export class CellularUplink implements Uplink {
    readonly name = "cellular"
    readonly maxPayload: number
    readonly ackTimeoutMs: number
    readonly connectTimeoutMs: number
    readonly pollMinMs: number
    readonly pollMaxMs: number
    /** for status and tests: sends that returned an ack / threw; hub.sync requests; acks seen */
    sent = 0
    failed = 0
    syncRequests = 0
    acksSeen = 0
    /** text of the last failure */
    lastError: string = undefined
    private readonly clock: Clock
    private readonly devid: Buffer
    private readonly sn: string
    private configured = false

    constructor(
        readonly card: Notecard,
        readonly options: CellularOptions,
    ) {
        const o = options
        if (!o.devid || o.devid.length !== 8) throw new Error("cellular: devid must be 8 bytes")
        if (!o.product) throw new Error("cellular: a Notehub product is required")
        this.devid = o.devid
        this.sn = o.devid.toString("hex")
        this.clock = o.clock || new Clock()
        this.maxPayload = Math.min(o.maxPayload ?? MAX_CELLULAR_BATCH, MAX_CELLULAR_BATCH)
        this.ackTimeoutMs = o.ackTimeoutMs ?? 600000
        this.connectTimeoutMs = o.connectTimeoutMs ?? 180000
        this.pollMinMs = o.pollMinMs ?? 5000
        this.pollMaxMs = o.pollMaxMs ?? 60000
    }

    async send(body: Buffer): Promise<UplinkReply> {
        try {
            const r = await this.sendOnce(body)
            this.sent++
            return r
        } catch (e: any) {
            this.failed++
            this.lastError = e && e.message ? e.message : "" + e
            throw e
        }
    }

    private async sendOnce(body: Buffer): Promise<UplinkReply> {
        if (!body || body.length < 49 || body.slice(0, 4).toString() !== "CTB3") throw new Error("cellular: not a batch")
        if (body.length > this.maxPayload)
            throw new Error("cellular: batch of " + body.length + " bytes, one note carries at most " + this.maxPayload)
        const first = body.getAt(24, "u32")
        const n = body.getAt(28, "u16")
        const last = first + n - 1
        const card = this.card
        if (!this.configured) {
            const o = this.options
            await card.hubSet({
                product: o.product,
                sn: this.sn,
                mode: "periodic",
                outbound: o.outboundMin ?? 60,
                inbound: o.inboundMin ?? 60,
            })
            this.configured = true
        }
        const clock = this.clock
        const t0 = clock.now()
        let best: AckNote = undefined
        // acks that came down since the last send (late ones) count too
        best = await this.drainAcks(first, n, last, best)
        try {
            await card.noteAdd(BATCH_FILE, { first, n }, true, body)
        } catch (e: any) {
            // the card's queue is full of batches that never went up: drop them, try once more
            if (!(e instanceof NotecardError && (e as NotecardError).hasCode("{storage}"))) throw e
            await card.request({ req: "file.delete", files: [BATCH_FILE] })
            await card.noteAdd(BATCH_FILE, { first, n }, true, body)
        }
        await this.requestSync()
        let uploadedAt = -1
        let wait = this.pollMinMs
        for (;;) {
            await clock.sleep(wait)
            best = await this.drainAcks(first, n, last, best)
            if (best && best.answers) break
            const now = clock.now()
            if (uploadedAt < 0) {
                const st = await card.hubSyncStatus()
                if (!st.sync) uploadedAt = now
                else if (now - t0 >= this.connectTimeoutMs) {
                    await this.dropQueued()
                    const why = st.syncErr ? st.syncErr : st.status
                    throw new Error("cellular: no network (note not synced after " + Math.round((now - t0) / 1000) + " s: " + why + ")")
                }
            }
            if (uploadedAt >= 0 && now - uploadedAt >= this.ackTimeoutMs) break
            // inbound notes come down only during a sync: one per poll, the polls backing off
            await this.requestSync()
            wait = Math.min(wait * 2, this.pollMaxMs)
        }
        if (!best) throw new Error("cellular: no acknowledgement within " + Math.round(this.ackTimeoutMs / 1000) + " s")
        return { status: best.status, body: best.body }
    }

    private async requestSync() {
        this.syncRequests++
        await this.card.hubSync()
    }

    /** best effort: a batch that never went up is not sent later (the logger resends from its ack) */
    private async dropQueued() {
        try {
            await this.card.request({ req: "file.delete", files: [BATCH_FILE] })
        } catch (e: any) {}
    }

    /**
     * Reads (and deletes) every inbound ack note; returns the best of `best` and those for this
     * device: an ack answering this batch beats one that does not, then the highest seq wins.
     */
    private async drainAcks(first: number, n: number, last: number, best: AckNote): Promise<AckNote> {
        for (;;) {
            let rsp: any
            try {
                rsp = await this.card.request({ req: "note.get", file: ACK_FILE, delete: true })
            } catch (e: any) {
                if (e instanceof NotecardError && (e as NotecardError).hasCode("{note-noexist}")) return best
                throw e
            }
            const a = await this.parseAckNote(rsp, first, n, last)
            if (!a) continue
            this.acksSeen++
            if (!best || (a.answers && !best.answers) || (a.answers === best.answers && ackRank(a.seq) > ackRank(best.seq))) best = a
        }
    }

    private async parseAckNote(rsp: any, first: number, n: number, last: number): Promise<AckNote> {
        if (typeof rsp.payload !== "string" || rsp.payload.length !== 112) return undefined
        let b: Buffer
        try {
            b = await base64Decode(rsp.payload)
        } catch (e: any) {
            return undefined
        }
        if (b.length !== ACK_LEN || b.slice(0, 4).toString() !== "CTA3") return undefined
        for (let i = 0; i < 8; i++) if (b[4 + i] !== this.devid[i]) return undefined
        const a = new AckNote()
        a.body = b
        a.seq = b.getAt(12, "u32")
        const nb = rsp.body
        if (nb && typeof nb === "object" && typeof nb.status === "number") a.status = nb.status
        const echoes = nb && typeof nb === "object" && nb.first === first && nb.n === n
        a.answers = echoes || (a.seq !== ACK_NONE && a.seq >= last)
        return a
    }
}
