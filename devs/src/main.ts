import * as ds from "@devicescript/core"
import { pins } from "@dsboard/coldtrace_v1"
import { spi } from "@devicescript/spi"
import { i2c } from "@devicescript/i2c"
import "@devicescript/gpio" // adds setMode/write/value to the board pins
import { Clock } from "../hal/clock"
import { SpiDevice, ReadyLine } from "../hal/spi"
import { I2cBus } from "../hal/i2c"
import { startColdtrace } from "../app/start"
import { Ublox } from "../sensor/ublox"
import { startGnss, GnssConfig } from "../app/gnss"
import { Rv3028 } from "../sensor/rv3028"
import { standby } from "@devicescript/runtime"
import { BatterySense, DIVIDER_RATIO } from "../app/battery"

/**
 * Hardware entry point for the coldtrace v1 board (hardware/coldtrace_v1.board.json): the MAX31856
 * on the VSPI pins with its chip select and DRDY on GPIOs, the u-blox GNSS on the board's I2C bus
 * (the runtime configures SDA/SCL from the board definition). UTC comes from the GNSS.
 */
class BoardSpi implements SpiDevice {
    constructor(readonly cs: ds.OutputPin) {}
    async transfer(tx: Buffer): Promise<Buffer> {
        // the runtime does not drive chip select: frame every transaction, released on every path
        this.cs.write(0)
        try {
            return await spi.transfer(tx)
        } finally {
            this.cs.write(1)
        }
    }
}

/** The runtime's I2C controller as the drivers' injected bus (write, repeated start, read). */
class BoardI2c implements I2cBus {
    async xfer(address: number, tx: Buffer, rxLen: number): Promise<Buffer> {
        return await i2c.xfer(address, tx, rxLen)
    }
}

class DrdyLine implements ReadyLine {
    constructor(readonly pin: ds.InputPin) {}
    isReady(): boolean {
        return this.pin.value === 0 // DRDY is active low
    }
}

/**
 * The cell through the divider on GPIO35 (ADC1: readable while Wi-Fi is on). The runtime gives the
 * pin as a fraction of the ADC's full scale, taken as 3.3 V at 11 dB; calibrate on the bench
 * (hardware/power.md, "What to measure first").
 */
class AdcBattery implements BatterySense {
    constructor(readonly pin: ds.InputPin) {
        pin.setMode(ds.GPIOMode.AnalogIn)
    }
    async readMv(): Promise<number> {
        return Math.round((this.pin.value as number) * 3300 * DIVIDER_RATIO)
    }
}

spi.configure({ miso: pins.MISO, mosi: pins.MOSI, sck: pins.SCK, mode: 1, hz: 1_000_000 })
pins.TC_CS.setMode(ds.GPIOMode.OutputHigh)
pins.TC_DRDY.setMode(ds.GPIOMode.InputPullUp)

const DAY_MS = 24 * 3_600_000
const clock = new Clock()
const boardI2c = new BoardI2c()
await startColdtrace({
    clock,
    spi: new BoardSpi(pins.TC_CS),
    ready: new DrdyLine(pins.TC_DRDY),
    gnss: async (cfg: GnssConfig) => await startGnss(new Ublox(boardI2c, { clock }), clock, cfg),
    rtc: new Rv3028(boardI2c, clock),
    // 16 KB settings header on the ESP32 (platform notes): 60 blocks of at most 248 B in flash
    // (24 B entry + 224 B value; 14,880 B) plus keys, config, lgmeta and the open block's tail
    // (~900 B) leave one largest value of room for compaction; the ring has 64 keys
    maxBlocks: 60,
    battery: new AdcBattery(pins.VBAT),
    // below the cut-off: deep sleep until USB (a reset) wakes it; each timer wake looks at the cell again
    powerOff: async () => await standby(DAY_MS),
    // between wakes: deep sleep, the ESP32 resets at the timer's wake and the program starts again
    sleep: async (ms: number) => await standby(ms),
})
