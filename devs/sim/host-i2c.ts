import * as ds from "@devicescript/core"
import { I2cBus } from "../hal/i2c"
import { WorldLink } from "./world"

/** a reply the host has not sent by then is a harness bug (the VM's clock stands still meanwhile) */
const REPLY_WAIT_MS = 10000
/** bytes written per console line (the runtime cuts a log line at about 256 characters) */
const LINE_BYTES = 96

/**
 * The I2C bus to the chip models that run on the host (docs/simulator.md, "The bus bridge"). A
 * transaction is a console line `ct:bus seq= addr= rx= tx=` (a long write is split over lines
 * marked `more=1` before the last), which the VM's clock reads synchronously
 * (src/sim/vm/vm-clock.cjs) and hands to the host's model with the world instant;
 * the clock stands still until the answer, the Sim World service's `bus_reply` command, is in.
 * So a transaction costs no world time and its answer does not depend on the host's speed.
 */
export class HostI2c implements I2cBus {
    private seq = 0
    /** answers not yet taken by the fiber waiting for them: their seq, whether a chip acknowledged, the bytes read */
    private readonly seqs: number[] = []
    private readonly acked: boolean[] = []
    private readonly replies: Buffer[] = []
    private readonly arrived = ds.emitter<boolean>()

    constructor(world: WorldLink) {
        const self = this
        world.onBusReply = (seq, status, data) => self.take(seq, status, data)
    }

    /** an answer, kept for the fiber that waits for its seq */
    private take(seq: number, status: number, data: Buffer) {
        this.seqs.push(seq)
        this.acked.push(status === 0)
        this.replies.push(data)
        this.arrived.emit(true)
    }

    async xfer(address: number, tx: Buffer, rxLen: number): Promise<Buffer> {
        const seq = (this.seq = (this.seq % 0xfffe) + 1)
        for (let off = 0; ; off += LINE_BYTES) {
            const last = off + LINE_BYTES >= tx.length
            const part = tx.slice(off, last ? tx.length : off + LINE_BYTES).toString("hex")
            console.log(`ct:bus seq=${seq} addr=${address} rx=${rxLen}${last ? "" : " more=1"} tx=${part}`)
            if (last) break
        }
        for (;;) {
            const i = this.seqs.indexOf(seq)
            if (i >= 0) {
                const acked = this.acked[i]
                const data = this.replies[i]
                this.seqs.insert(i, -1) // DeviceScript: a negative count removes
                this.acked.insert(i, -1)
                this.replies.insert(i, -1)
                if (!acked) throw new Error(`i2c: no ack from ${address}`)
                return data
            }
            if ((await ds.wait(this.arrived, REPLY_WAIT_MS)) === undefined) throw new Error(`i2c: no reply to ${seq}`)
        }
    }
}
