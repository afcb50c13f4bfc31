import { WorldLink, WorldClock, WorldSnapshot } from "./world"
import { Max31856Model, Max31856Fault } from "./max31856-model"
import { HostI2c } from "./host-i2c"
import { SimI2cBus } from "./i2c-bus"
import { Rv3028, RV3028_ADDR } from "../sensor/rv3028"
import { BoardParts } from "../app/start"
import { TIME_SOURCE_SIM } from "../record/record"
import { DIVIDER_RATIO } from "../app/battery"

/**
 * What every simulator build shares (devs/src/sim.ts with the GNSS receiver, devs/src/sim-cell.ts
 * with the Notecard: one program cannot hold both models, docs/devicescript-traps.md "64 KB of
 * code"): the world link and clock, the thermocouple model fed by the world, the I2C bus with the
 * chips whose models run on the host (the real-time clock), and the board parts the logger starts with.
 */
const FAULTS: Max31856Fault[] = ["none", "open", "short_vcc", "short_gnd", "dead", "stuck0"]
export const NET_UP = 0x01
export const RADIO_OFF = 0x02

export class SimBoard {
    readonly world = new WorldLink()
    readonly clock = new WorldClock()
    readonly i2c = new SimI2cBus()
    tc: Max31856Model
    /** the bus to the chips whose models run on the host (one per world link: it takes its replies) */
    host: HostI2c

    /** Wait for the world's first snapshot, then build the models (the world holds until it is seen). */
    async start(): Promise<void> {
        const world = this.world
        const clock = this.clock
        while (!world.seen) await clock.sleep(20)
        // the simulator's ground truth (no real logger knows this): world UTC at this boot's uptime 0
        console.log(`ct:world-boot utc=${world.utcAt(0)}`)
        this.tc = new Max31856Model(clock)
        // the clock chip outlives the VM: its model is the world's (src/sim/models/rv3028.ts)
        this.host = new HostI2c(world)
        this.i2c.attach(RV3028_ADDR, this.host)
        this.feed(world.now)
        const self = this
        world.onChange(w => self.feed(w))
    }

    private feed(w: WorldSnapshot) {
        this.tc.setInputs({ probeC: w.probeC, boardC: w.boardC, fault: FAULTS[w.tcFault] || "none" })
    }

    /** the logger's board parts common to every simulator build */
    parts(): BoardParts {
        const world = this.world
        const clock = this.clock
        return {
            // a provisioned logger waits on the shelf until the shipment starts
            waitForStart: async () => {
                const start = world.now.startUtc - world.now.originUtc
                if (start > clock.now()) await clock.sleep(start - clock.now())
            },
            clock,
            spi: this.tc,
            ready: this.tc,
            rtc: new Rv3028(this.i2c, clock),
            // without a GNSS, UTC comes from the simulator's world (a stand-in for network time)
            utcNow: () => world.utcAt(clock.now()),
            utcSource: TIME_SOURCE_SIM,
            radioAllowed: () => (world.now.netFlags & RADIO_OFF) === 0,
            // the divider's pin as the world's cell model has it (the ADC itself is not modelled)
            battery: { readMv: async () => world.now.vbatPinMv * DIVIDER_RATIO },
            // the board's deep sleep below the cut-off: the world's energy ledger takes the sleep floor
            powerOff: async () => console.log("ct:standby"),
            // the simulator's settings store has an 8 KB header area (platform notes); a block costs at
            // most 248 B there (24 B entry + 224 B value): 20 blocks plus keys leave room to compact
            maxBlocks: 20,
        }
    }
}
