/**
 * One SPI device behind its own chip select. `transfer` asserts CS, clocks `tx` out while reading the
 * same number of bytes in, and releases CS, so one call is one bus transaction (one consistent snapshot).
 * On the board it is `@devicescript/spi` plus a GPIO for CS; in the simulator it is a chip model.
 */
export interface SpiDevice {
    transfer(tx: Buffer): Promise<Buffer>
}

/** Optional data-ready line (MAX31856 DRDY is active low). `undefined` where it is not wired. */
export interface ReadyLine {
    /** true when the chip says a conversion is ready */
    isReady(): boolean
}
