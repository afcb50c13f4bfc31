import { WorldLink, WorldClock } from "./world"
import { HostI2c } from "./host-i2c"
import { HostSpi } from "./host-spi"
import { Rv3028 } from "../sensor/rv3028"
import { BoardParts } from "../app/start"
import { TIME_SOURCE_SIM } from "../record/record"
import { DIVIDER_RATIO } from "../app/battery"
import * as ds from "@devicescript/core"

/**
 * What every simulator build shares (devs/src/sim.ts with the GNSS receiver, devs/src/sim-cell.ts
 * with the Notecard): the world link and clock, the buses to the chips, whose models all run on
 * the host (src/sim/models, over the bus bridge: the thermocouple converter on SPI, the real-time
 * clock on I2C), and the board parts the logger starts with.
 */
/** the thermocouple converter's address on the bus bridge (SPI, chip select 0) */
const MAX31856_SPI = 0x100
export const NET_UP = 0x01
export const RADIO_OFF = 0x02
/** snapshot byte 19: b0 the lid is open (the Hall switch's output on LID), b1 a lid sensor is fitted */
const LID_OPEN = 0x01
const LID_FITTED = 0x02

export class SimBoard {
    readonly world = new WorldLink()
    readonly clock = new WorldClock()
    /**
     * The board's I2C bus: every chip on it is modelled on the host, which acknowledges the
     * addresses of the chips the scenario fits (one per world link: it takes the link's replies)
     */
    i2c: HostI2c
    /** the thermocouple converter on SPI */
    tc: HostSpi
    /** clock ms when the program started (at a wake: the wake's instant) */
    startedAt = 0
    /** clock ms when the program had the world (the board's program start; the world link's wait before it is the simulator's) */
    upAt = 0

    /** Wait for the world's first snapshot, then build the models (the world holds until it is seen). */
    async start(): Promise<void> {
        const world = this.world
        const clock = this.clock
        this.startedAt = clock.now()
        while (!world.seen) await clock.sleep(20)
        // the simulator's ground truth (no real logger knows this): world UTC at this boot's uptime 0
        console.log(`ct:world-boot utc=${world.utcAt(0)}`)
        this.i2c = new HostI2c(world)
        this.tc = new HostSpi(this.i2c, MAX31856_SPI, clock)
        this.upAt = clock.now()
    }

    /** the logger's board parts common to every simulator build */
    parts(): BoardParts {
        const world = this.world
        const clock = this.clock
        const upAt = this.upAt
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
            externalPower: () => world.now.usbPower,
            startedAt: this.startedAt,
            // a deep sleep really loses RAM: the runtime restarts the program, which the VM's clock
            // holds until the world reaches the wake (docs/simulator.md, "Sleep")
            sleep: async (ms: number) => {
                const now = clock.now()
                console.log(`ct:sleep until=${now + ms} awake=${now - upAt}`)
                ds.restart()
                await ds.sleep(ms)
            },
            // the lid's level as the world has it (its edges reach the clock's model on the host)
            lidOpen: world.snapshot()[19] & LID_FITTED ? async () => (world.snapshot()[19] & LID_OPEN) !== 0 : undefined,
            // the simulator's settings store has an 8 KB header area (platform notes); a block costs at
            // most 248 B there (24 B entry + 224 B value): 20 blocks plus keys leave room to compact
            maxBlocks: 20,
        }
    }
}
