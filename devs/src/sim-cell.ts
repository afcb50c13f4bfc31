import { NotecardModel, SimHubCloud } from "../sim/notecard-model"
import { SimBoard, NET_UP, RADIO_OFF } from "../sim/board"
import { WorldSnapshot } from "../sim/world"
import { Notecard } from "../uplink/notecard"
import { CellularUplink } from "../uplink/cellular"
import { startColdtrace } from "../app/start"

/**
 * Simulator entry point for a logger with a Notecard (cellular): thermocouple, real-time clock and
 * Notecard models; uploads over Wi-Fi first, then cellular. No GNSS model: both receiver and modem
 * models do not fit one program (docs/devicescript-traps.md, "64 KB of code").
 */
const board = new SimBoard()
await board.start()
const world = board.world
const clock = board.clock
// syncs go to the host's Notehub stand-in (setting `simhub`); the logger uses the modem only when the
// provisioning names a product (`ncproduct`). It keeps only the last few request lines (VM heap).
const notecard = new NotecardModel(clock, { keepLines: 8, keepLineChars: 160 })
notecard.cloud = new SimHubCloud()
board.i2c.attach(0x17, notecard)
function feed(w: WorldSnapshot) {
    // cellular coverage: the world's network flag (outages cut it too); the radio is off in flights
    notecard.setInputs({ connected: (w.netFlags & NET_UP) !== 0 && (w.netFlags & RADIO_OFF) === 0, utcMs: w.utcMs })
}
feed(world.now)
world.onChange(feed)
const parts = board.parts()
parts.cellular = async (devid: Buffer, product: string) => new CellularUplink(new Notecard(board.i2c, { clock }), { devid, product, clock })
await startColdtrace(parts)
clock.fiberEnded()
