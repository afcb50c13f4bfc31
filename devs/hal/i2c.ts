/**
 * One I2C bus, as the u-blox DDC and the Notecard use it. Injected so the same drivers run against
 * `@devicescript/i2c` on the board and against register-level chip models in the simulator.
 */
export interface I2cBus {
    /** write `tx` (may be empty) then, with a repeated start, read `rxLen` bytes (0 = write only) */
    xfer(address: number, tx: Buffer, rxLen: number): Promise<Buffer>
}
