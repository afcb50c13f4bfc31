import * as ds from "@devicescript/core"
import { pins } from "@dsboard/coldtrace_v1"
import { spi } from "@devicescript/spi"
import "@devicescript/gpio" // adds setMode/write/value to the board pins
import { Clock } from "../hal/clock"
import { SpiDevice, ReadyLine } from "../hal/spi"
import { startColdtrace } from "../app/start"

/**
 * Hardware entry point for the coldtrace v1 board (hardware/coldtrace_v1.board.json): the MAX31856
 * on the VSPI pins with its chip select and DRDY on GPIOs. No UTC source yet on the board: records
 * carry boot + uptime until the GNSS driver provides time.
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

class DrdyLine implements ReadyLine {
    constructor(readonly pin: ds.InputPin) {}
    isReady(): boolean {
        return this.pin.value === 0 // DRDY is active low
    }
}

spi.configure({ miso: pins.MISO, mosi: pins.MOSI, sck: pins.SCK, mode: 1, hz: 1_000_000 })
pins.TC_CS.setMode(ds.GPIOMode.OutputHigh)
pins.TC_DRDY.setMode(ds.GPIOMode.InputPullUp)

await startColdtrace({
    clock: new Clock(),
    spi: new BoardSpi(pins.TC_CS),
    ready: new DrdyLine(pins.TC_DRDY),
    // 16 KB settings header on the ESP32 (platform notes): 56 blocks of at most 216 B in flash
    // (24 B entry + 192 B value) plus keys and config leave room for compaction
    maxBlocks: 56,
})
