import { UbloxModel } from "../sim/ublox-model"
import { SimBoard } from "../sim/board"
import { WorldSnapshot } from "../sim/world"
import { Ublox } from "../sensor/ublox"
import { startColdtrace } from "../app/start"
import { startGnss, GnssConfig } from "../app/gnss"
import { I2cBus } from "../hal/i2c"
import { Rv3028 } from "../sensor/rv3028"
import { Uplink, HttpsUplink } from "../uplink/uplink"
import { UplinkReply } from "../uplink/http"
import { kvGet } from "../flash/kv"

/**
 * Simulator entry point: the same logger as src/main.ts, wired to register-level chip models fed by
 * the simulated world (SPI/I2C do not run in the VM): thermocouple, real-time clock and, when the
 * scenario has a route, the u-blox receiver. Uploads over Wi-Fi (HTTPS). Scenarios with a cellular
 * modem run devs/src/sim-cell.ts.
 */
const GPS_FIX = 0x01
const GPS_PRESENT = 0x02
const GPS_LOOP = 0x04
/** snapshot byte 18, b0: the I2C bus hangs; b1: an upload hangs (docs/simulator.md) */
const BUS_HUNG = 0x01
const UPLINK_HUNG = 0x02

const board = new SimBoard()
await board.start()
const world = board.world
const clock = board.clock
const gps = new UbloxModel(clock)
board.i2c.attach(0x42, gps)
function feed(w: WorldSnapshot) {
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
}
feed(world.now)
world.onChange(feed)
// a recorded receiver stream (the scenario's gnss.capture) replaces the model's live output
world.onCapture = (capture: Buffer) => {
    gps.replay(capture, (world.now.gpsFlags & GPS_LOOP) !== 0)
    console.log(`ct:gnss-capture bytes=${capture.length}`)
}
/**
 * The scenario's bus hangs (`busHangs`): a transaction started inside one never completes, as when a
 * chip holds SDA low; only a reset frees the bus, so the logger's watchdog must. (Only this build has
 * the code room for it: docs/devicescript-traps.md, "64 KB of code".)
 */
class HangingBus implements I2cBus {
    async xfer(address: number, tx: Buffer, rxLen: number): Promise<Buffer> {
        if ((world.snapshot()[18] & BUS_HUNG) !== 0) await clock.sleep(0x7fffffff)
        return await board.i2c.xfer(address, tx, rxLen)
    }
}
/**
 * The scenario's uplink hangs (`uplinkHangs`): an upload started inside one never returns, as a socket
 * stuck below every deadline would; the watchdog must reset the logger (the upload fiber's STEP_MAX).
 */
class HangingUplink implements Uplink {
    readonly name = "wifi"
    async send(body: Buffer): Promise<UplinkReply> {
        if ((world.snapshot()[18] & UPLINK_HUNG) !== 0) await clock.sleep(0x7fffffff)
        // the provisioned endpoint, as the logger's own HTTPS uplink would have it
        return await new HttpsUplink((await kvGet("endpoint")).toString()).send(body)
    }
}
const bus = new HangingBus()
const parts = board.parts()
parts.uplinks = [new HangingUplink()]
parts.rtc = new Rv3028(bus, clock)
if ((world.now.gpsFlags & GPS_PRESENT) !== 0) parts.gnss = async (cfg: GnssConfig) => await startGnss(new Ublox(bus, { clock }), clock, cfg)
await startColdtrace(parts)
// this fiber is done: the logger's own fibers go on (the world counts them)
clock.fiberEnded()
