import * as ds from "@devicescript/core"
import { WorldLink, WorldClock } from "../sim/world"
import { waitForProvisioning } from "../app/config"
import { Logger, Thermometer } from "../app/logger"
import { TIME_SOURCE_SIM } from "../record/record"

/**
 * Simulator entry point: the same logger as src/main.ts, wired to chip models fed by the simulated
 * world instead of real buses (SPI/I2C do not run in the VM).
 */
async function main() {
    const world = new WorldLink()
    await world.waitFirst()
    const clock = new WorldClock(world)
    // TEMPORARY until the MAX31856 model lands: reads the world probe directly
    const thermo: Thermometer = {
        read: async () => ({ tc: Math.round(world.now.probeC * 128), cj: Math.round(world.now.boardC * 64), sr: 0, sflags: 0 }),
    }
    console.log("ct:waiting-provisioning")
    const prov = await waitForProvisioning()
    const logger = new Logger(
        { clock, thermo, utcNow: () => world.now.utcMs, utcSource: TIME_SOURCE_SIM, maxBlocks: 30 },
        prov
    )
    await logger.start()
}
await main()
