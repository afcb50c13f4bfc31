/**
 * The chips whose register-level models run on the host, as the VM's I2C bus reaches them through
 * the bus bridge (docs/simulator.md, "The bus bridge"): each transaction comes with the world
 * instant it happens at, so a model is a function of its state and that instant, whatever the
 * host's speed.
 */
export interface I2cChip {
    /**
     * Write `tx` then, with a repeated start, read `rxLen` bytes, at world `utc` (ms); undefined:
     * the chip does not acknowledge (a NACK).
     */
    xfer(tx: Buffer, rxLen: number, utc: number): Buffer | undefined | Promise<Buffer | undefined>
}

export class ChipBus {
    private readonly chips = new Map<number, I2cChip>()
    /** one transaction at a time, in the order they came, as on a wire */
    private last: Promise<unknown> = Promise.resolve()

    attach(address: number, chip: I2cChip) {
        this.chips.set(address, chip)
    }

    /** the bytes read, or undefined when nobody acknowledges the address (a NACK) */
    transfer(address: number, tx: Buffer, rxLen: number, utc: number): Promise<Buffer | undefined> {
        const run = async () => {
            const chip = this.chips.get(address)
            const rx = chip && (await chip.xfer(tx, rxLen, utc))
            if (rx && rx.length !== rxLen) throw new Error(`chip 0x${address.toString(16)} answered ${rx.length} bytes, not ${rxLen}`)
            return rx
        }
        const done = this.last.then(run, run)
        this.last = done.catch(() => {})
        return done
    }
}

/** a `bus` control message from the VM's clock (src/sim/vm/vm-clock.cjs) */
export interface BusRequest {
    seq: number
    addr: number
    rx: number
    /** bytes written, hex */
    tx: string
    /** world UTC (ms) of the transaction */
    at: number
}

/** the answer: status 0 and the bytes read (hex), or status 1 (no ack) */
export interface BusReply {
    seq: number
    status: 0 | 1
    data: string
}

export async function answerBus(bus: ChipBus, m: BusRequest): Promise<BusReply> {
    const rx = await bus.transfer(m.addr, Buffer.from(m.tx, "hex"), m.rx, m.at)
    return { seq: m.seq, status: rx ? 0 : 1, data: rx ? rx.toString("hex") : "" }
}
