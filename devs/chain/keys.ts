import { evolveKey, sealMac } from "./chain"
import { kvGet, kvSet, kvDelete } from "../flash/kv"

/**
 * The forward-secure epoch key (docs/format.md sections 1, 3.2 and 5.2). Flash holds only k[epoch]:
 * evolving overwrites it, so a key read out of a captured logger cannot seal an earlier epoch.
 *   ep = epoch u32 | k[epoch] 32 | seal_seq u32 | start u32 (device time the epoch began)
 */
const EKEY = "ep"
const NONE = 0xffffffff

export class EpochKeys {
    epoch = 0
    /** seq of the seal that ended the previous epoch (NONE for epoch 0) */
    sealSeq = NONE
    /** device time (s) this epoch began */
    start = 0
    private key: Buffer

    /**
     * Load k[epoch]; on the first boot take k0 from the provisioning key and erase that. `now`: device
     * time. `wake`: a wake from a sleep, which a boot that finished the move preceded. `read`: the
     * `ep` value when the caller has just read it (provisioning does), saving a read per wake.
     */
    async load(now: number, wake = false, read?: Buffer): Promise<boolean> {
        const e = read ? read : await kvGet(EKEY)
        if (e && e.length === 44) {
            this.epoch = e.getAt(0, "u32")
            this.key = e.slice(4, 36)
            this.sealSeq = e.getAt(36, "u32")
            this.start = e.getAt(40, "u32")
            // a power cut between writing ekey and deleting devkey (below) would leave k0 in
            // flash for good: finish the move at every boot
            if (!wake && (await kvGet("devkey"))) await kvDelete("devkey")
            return true
        }
        const k0 = await kvGet("devkey")
        if (!k0 || k0.length !== 32) return false
        this.epoch = 0
        this.key = k0
        this.sealSeq = NONE
        this.start = now
        await this.write()
        await kvDelete("devkey")
        return true
    }

    /** records since the last seal, for a seal at `seq` */
    countAt(seq: number): number {
        return this.sealSeq === NONE ? seq : seq - this.sealSeq - 1
    }

    seal(devid: Buffer, seq: number, prevHead: Buffer, count: number): Buffer {
        return sealMac(this.key, devid, this.epoch, seq, prevHead, count)
    }

    /** MAC16 with the current epoch key (batches) */
    current(): Buffer {
        return this.key
    }

    /** After the seal of this epoch (at `sealSeq`) is in flash: move to k[epoch+1], erase k[epoch]. */
    async evolve(sealSeq: number, now: number): Promise<void> {
        this.key = evolveKey(this.key, this.epoch + 1)
        this.epoch++
        this.sealSeq = sealSeq
        this.start = now
        await this.write()
    }

    private async write() {
        const b = Buffer.alloc(44)
        b.setAt(0, "u32", this.epoch)
        b.blitAt(4, this.key, 0, 32)
        b.setAt(36, "u32", this.sealSeq)
        b.setAt(40, "u32", this.start >>> 0)
        await kvSet(EKEY, b)
    }
}
