import { I2cBus } from "../hal/i2c"
import { SpiDevice, ReadyLine } from "../hal/spi"
import { Clock } from "../hal/clock"

/** bytes after an SPI answer on the bridge: DRDY now (u8), ms until it asserts (u32, 0xFFFFFFFF: never) */
const DRDY_TAIL = 5
const NEVER = 0xffffffff

/**
 * An SPI device whose model runs on the host, over the bus bridge (docs/simulator.md): a transfer is
 * one bridge transaction at the device's bridge address (0x100 + its chip select). The answer ends
 * with the state of the device's data-ready line, so `isReady()` answers at once from the last
 * answer and the device clock, as reading a pin would.
 */
export class HostSpi implements SpiDevice, ReadyLine {
    private ready = false
    /** device ms at which DRDY asserts without another transfer; -1: it does not */
    private readyAt = -1

    constructor(
        readonly bus: I2cBus,
        readonly address: number,
        readonly clock: Clock,
    ) {}

    async transfer(tx: Buffer): Promise<Buffer> {
        const r = await this.bus.xfer(this.address, tx, tx.length + DRDY_TAIL)
        const inMs = r.getAt(tx.length + 1, "u32")
        this.ready = r[tx.length] !== 0
        this.readyAt = inMs === NEVER ? -1 : this.clock.now() + inMs
        return r.slice(0, tx.length)
    }

    isReady(): boolean {
        return this.ready || (this.readyAt >= 0 && this.clock.now() >= this.readyAt)
    }
}
