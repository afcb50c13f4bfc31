import { SimBoard } from "../sim/board"
import { Ublox } from "../sensor/ublox"
import { startColdtrace } from "../app/start"
import { startGnss, GnssConfig } from "../app/gnss"
import { I2cBus } from "../hal/i2c"
import { Rv3028 } from "../sensor/rv3028"
import { Uplink, HttpsUplink } from "../uplink/uplink"
import { UplinkReply } from "../uplink/http"
import { kvGet } from "../flash/kv"

/**
 * Simulator entry point: the same logger as src/main.ts, wired to register-level chip models on the
 * host (src/sim/models, over the bus bridge; SPI and I2C do not run in the VM): the thermocouple
 * converter, the real-time clock and, when the scenario has a route or a recording, the u-blox
 * receiver. Uploads over Wi-Fi (HTTPS). Scenarios with a cellular modem run devs/src/sim-cell.ts.
 */
/** snapshot byte 30, b1: a GNSS receiver is fitted (docs/simulator.md) */
const GPS_PRESENT = 0x02
/** snapshot byte 18, b0: the I2C bus hangs; b1: an upload hangs */
const BUS_HUNG = 0x01
const UPLINK_HUNG = 0x02

const board = new SimBoard()
await board.start()
const world = board.world
const clock = board.clock
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
