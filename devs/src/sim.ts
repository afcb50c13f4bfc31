import { WorldLink, WorldClock, WorldSnapshot } from "../sim/world"
import { Max31856Model, Max31856Fault } from "../sim/max31856-model"
import { startColdtrace } from "../app/start"
import { TIME_SOURCE_SIM } from "../record/record"

/**
 * Simulator entry point: the same logger as src/main.ts, wired to register-level chip models fed by
 * the simulated world instead of real buses (SPI/I2C do not run in the VM).
 */
const FAULTS: Max31856Fault[] = ["none", "open", "short_vcc", "short_gnd", "dead", "stuck0"]

const world = new WorldLink()
await world.waitFirst()
const clock = new WorldClock(world)
const tc = new Max31856Model(clock)
function feed(w: WorldSnapshot) {
    tc.setInputs({ probeC: w.probeC, boardC: w.boardC, fault: FAULTS[w.tcFault] || "none" })
}
feed(world.now)
world.onChange(feed)
await startColdtrace({
    clock,
    spi: tc,
    ready: tc,
    utcNow: () => world.now.utcMs,
    utcSource: TIME_SOURCE_SIM,
    // the simulator's settings store has an 8 KB header area (platform notes); a block costs at most
    // 216 B there (24 B entry + 192 B value): 24 blocks plus keys and config leave room to compact
    maxBlocks: 24,
})
