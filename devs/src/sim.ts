import { WorldLink, WorldClock, WorldSnapshot } from "../sim/world"
import { Max31856Model, Max31856Fault } from "../sim/max31856-model"
import { UbloxModel } from "../sim/ublox-model"
import { SimI2cBus } from "../sim/i2c-bus"
import { NotecardModel, SimHubCloud } from "../sim/notecard-model"
import { startColdtrace } from "../app/start"
import { TIME_SOURCE_SIM } from "../record/record"

/**
 * Simulator entry point: the same logger as src/main.ts, wired to register-level chip models fed by
 * the simulated world instead of real buses (SPI/I2C do not run in the VM).
 */
const FAULTS: Max31856Fault[] = ["none", "open", "short_vcc", "short_gnd", "dead", "stuck0"]
const GPS_FIX = 0x01
const GPS_PRESENT = 0x02
const GPS_LOOP = 0x04
const NET_UP = 0x01
const RADIO_OFF = 0x02

const world = new WorldLink()
const clock = new WorldClock()
// the world sends a snapshot at every jump: ask for one now (the world holds until this boot sees it)
while (!world.seen) await clock.sleep(20)
// the simulator's ground truth (no real logger knows this): world UTC at this boot's uptime 0, so
// tests can check the time base end to end
console.log(`ct:world-boot utc=${world.utcAt(0)}`)
const tc = new Max31856Model(clock)
const gps = new UbloxModel(clock)
const i2c = new SimI2cBus()
i2c.attach(0x42, gps)
// the Notecard (cellular): syncs go to the host's Notehub stand-in (setting `simhub`); the firmware
// uses it only when the provisioning names a product (`ncproduct`), see devs/app/start.ts
// (it keeps only the last few request lines: the VM heap is ~58 KB for firmware and models together)
const notecard = new NotecardModel(clock, { keepLines: 8, keepLineChars: 160 })
notecard.cloud = new SimHubCloud()
i2c.attach(0x17, notecard)
function feed(w: WorldSnapshot) {
    tc.setInputs({ probeC: w.probeC, boardC: w.boardC, fault: FAULTS[w.tcFault] || "none" })
    gps.setInputs({
        utcMs: w.utcMs,
        // the instant the snapshot describes, on this VM's clock: the model moves on from there
        atMs: w.utcMs - w.originUtc,
        lat: w.lat / 1e7,
        lon: w.lon / 1e7,
        latRate: w.latRate / 1e7,
        lonRate: w.lonRate / 1e7,
        speedMps: w.groundSpeed / 100,
        fix: (w.gpsFlags & GPS_FIX) !== 0,
        numSV: (w.gpsFlags & GPS_FIX) !== 0 ? 9 : 0,
    })
    // cellular coverage: the world's network flag (outages cut it too); the radio is off in flights
    notecard.setInputs({ connected: (w.netFlags & NET_UP) !== 0 && (w.netFlags & RADIO_OFF) === 0, utcMs: w.utcMs })
}
feed(world.now)
world.onChange(feed)
// a recorded receiver stream (the scenario's gnss.capture) replaces the model's live output
world.onCapture = (capture: Buffer) => {
    gps.replay(capture, (world.now.gpsFlags & GPS_LOOP) !== 0)
    console.log(`ct:gnss-capture bytes=${capture.length}`)
}
const withGps = (world.now.gpsFlags & GPS_PRESENT) !== 0
await startColdtrace({
    // a provisioned logger waits on the shelf until the shipment starts
    waitForStart: async () => {
        const start = world.now.startUtc - world.now.originUtc
        if (start > clock.now()) await clock.sleep(start - clock.now())
    },
    clock,
    spi: tc,
    ready: tc,
    i2c: withGps ? i2c : undefined,
    cellular: i2c,
    // without a GNSS on the route, UTC comes from the simulator's world (a stand-in for network time)
    utcNow: () => world.utcAt(clock.now()),
    utcSource: TIME_SOURCE_SIM,
    radioAllowed: () => (world.now.netFlags & RADIO_OFF) === 0,
    // the simulator's settings store has an 8 KB header area (platform notes); a block costs at most
    // 216 B there (24 B entry + 192 B value): 24 blocks plus keys and config leave room to compact
    maxBlocks: 24,
})
// this fiber is done: the logger's own fibers go on (the world counts them)
clock.fiberEnded()
