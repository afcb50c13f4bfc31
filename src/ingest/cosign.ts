// The ingest server's side of the witness (docs/witness.md): after a checkpoint is committed, its
// device is queued; the cosigner posts the device's newest checkpoint with the records that link it
// to the last one the witness cosigned, and stores the cosignature (or the refusal) with the
// checkpoint. It never holds up an ack: a witness that is down or slow leaves checkpoints
// uncosigned until it answers (retried with backoff, and after a restart from the store).
import type { CosignRequest, CosignResult, ProofRun } from "../witness/witness.js"
import { MAX_PROOF_RECORDS } from "../witness/witness.js"
import type { IngestStore } from "./store/store.js"

export interface WitnessOptions {
    /** the witness's base URL (http://host:port) */
    url: string
    /** the bearer token the witness expects */
    token: string
    /** first retry after a failure to reach the witness, doubled up to maxRetryMs (default 5 s, 10 min) */
    retryMs?: number
    maxRetryMs?: number
    /** per request (default 30 s) */
    timeoutMs?: number
}

export class Cosigner {
    private queue = new Set<string>()
    private retry = new Map<string, { timer: NodeJS.Timeout; delay: number }>()
    private running: Promise<void> | null = null
    private witnessId: string | null = null
    private closed = false
    /** answers stored, failures to reach the witness */
    readonly stats = { cosigned: 0, refused: 0, unreachable: 0 }

    constructor(
        private readonly store: IngestStore,
        private readonly o: WitnessOptions,
        private readonly log: (line: object) => void,
    ) {}

    /** Learns the witness's key id and queues the devices left uncosigned (a restart, a witness that was down). */
    async start(): Promise<void> {
        try {
            this.witnessId = await this.keyId()
            for (const d of await this.store.awaitingCosign(this.witnessId)) this.notify(d)
        } catch (e) {
            this.log({ witness: "unreachable", detail: (e as Error).message })
        }
    }

    private async keyId(): Promise<string> {
        const r = await fetch(`${this.o.url}/v1/key`, { signal: AbortSignal.timeout(this.o.timeoutMs ?? 30_000) })
        if (!r.ok) throw new Error(`witness /v1/key: ${r.status}`)
        return ((await r.json()) as { witness: string }).witness
    }

    /** A checkpoint of this device was committed: cosign it soon (never awaited by the request). */
    notify(devid: string): void {
        if (this.closed) return
        const r = this.retry.get(devid)
        if (r) {
            clearTimeout(r.timer)
            this.retry.delete(devid)
        }
        this.queue.add(devid)
        this.running ??= this.drain().finally(() => (this.running = null))
    }

    /** Resolves once the queue is empty (devices waiting for a retry are not waited for). */
    async settle(): Promise<void> {
        while (this.running) await this.running
    }

    /** Devices whose newest checkpoint waits for a retry. */
    get waiting(): string[] {
        return [...this.retry.keys()]
    }

    close(): void {
        this.closed = true
        for (const r of this.retry.values()) clearTimeout(r.timer)
        this.retry.clear()
        this.queue.clear()
    }

    private async drain(): Promise<void> {
        while (this.queue.size && !this.closed) {
            const devid = this.queue.values().next().value as string
            this.queue.delete(devid)
            try {
                await this.cosignDevice(devid)
                this.retry.delete(devid)
            } catch (e) {
                this.stats.unreachable++
                const delay = Math.min((this.retry.get(devid)?.delay ?? (this.o.retryMs ?? 5000) / 2) * 2, this.o.maxRetryMs ?? 600_000)
                this.log({ witness: "unreachable", devid, detail: (e as Error).message, retryMs: delay })
                if (!this.closed) this.retry.set(devid, { delay, timer: setTimeout(() => this.notify(devid), delay).unref() })
            }
        }
    }

    /** The device's newest checkpoint to the witness, with its proof; the answer stored with it. */
    private async cosignDevice(devid: string): Promise<void> {
        this.witnessId ??= await this.keyId()
        const witness = this.witnessId
        const cp = await this.store.latestCheckpoint(devid)
        if (!cp || cp.seq === null || !cp.head) return
        const answers = (await this.store.cosignatures(devid)).filter(c => c.witness === witness)
        if (answers.some(c => c.checkpointId === cp.id)) return
        const cosigned = answers.filter(c => c.status === "cosigned").map(c => c.seq)
        const anchor = Math.max(-1, ...cosigned.filter(q => q <= cp.seq!))
        const end = Math.max(cp.seq, ...cosigned)
        const req: CosignRequest = {
            devid,
            seq: cp.seq,
            head: cp.head.toString("hex"),
            boot: cp.boot,
            epoch: cp.epoch,
            proof: { runs: await this.proof(devid, anchor, end) },
        }
        const res = await fetch(`${this.o.url}/v1/cosign`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${this.o.token}` },
            body: JSON.stringify(req),
            signal: AbortSignal.timeout(this.o.timeoutMs ?? 30_000),
        })
        if (res.status >= 500) throw new Error(`witness answered ${res.status}`)
        const out = (await res.json()) as CosignResult
        if (out.status === "cosigned") {
            this.stats.cosigned++
            await this.store.addCosignature(devid, {
                checkpointId: cp.id,
                seq: cp.seq,
                head: cp.head,
                witness,
                status: "cosigned",
                at: out.at,
                sig: Buffer.from(out.sig, "hex"),
                reason: null,
            })
            this.log({ witness: "cosigned", devid, seq: cp.seq })
        } else {
            this.stats.refused++
            await this.store.addCosignature(devid, {
                checkpointId: cp.id,
                seq: cp.seq,
                head: cp.head,
                witness,
                status: "refused",
                at: Date.now(),
                sig: null,
                reason: out.reason,
            })
            this.log({ witness: "refused", devid, seq: cp.seq, reason: out.reason })
        }
    }

    /** The stored records anchor+1..end as runs; a run after a gap starts at a PREV segment's stated head. */
    private async proof(devid: string, anchor: number, end: number): Promise<ProofRun[]> {
        const runs: ProofRun[] = [{ start: anchor + 1, records: [] }]
        if (end <= anchor) return runs
        const segments = await this.store.segments(devid)
        let next = anchor + 1
        let n = 0
        for (let from = anchor + 1; from <= end;) {
            const page = await this.store.records(devid, from, end, 10_000)
            if (!page.length) break
            for (const r of page) {
                if (r.seq !== next) {
                    const seg = segments.find(s => s.startSeq === r.seq)
                    if (!seg) return runs // nothing states the head after this gap: the proof ends here
                    runs.push({ start: r.seq, prevHead: seg.prevHead.toString("hex"), records: [] })
                }
                runs[runs.length - 1].records.push(r.bytes.toString("hex"))
                next = r.seq + 1
                if (++n >= MAX_PROOF_RECORDS) return runs
            }
            from = page[page.length - 1].seq + 1
        }
        return runs
    }
}
