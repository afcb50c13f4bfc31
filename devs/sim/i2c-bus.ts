import { I2cBus } from "../hal/i2c"

/** The simulated board's I2C bus: routes each transaction to the chip model at that address. */
export class SimI2cBus implements I2cBus {
    private addrs: number[] = []
    private chips: I2cBus[] = []

    attach(address: number, chip: I2cBus) {
        this.addrs.push(address)
        this.chips.push(chip)
    }

    async xfer(address: number, tx: Buffer, rxLen: number): Promise<Buffer> {
        const i = this.addrs.indexOf(address)
        // nobody acknowledges the address: a real controller reports a NACK
        if (i < 0) throw new Error(`i2c: no ack from 0x${Buffer.from([address]).toString("hex")}`)
        return await this.chips[i].xfer(address, tx, rxLen)
    }
}
