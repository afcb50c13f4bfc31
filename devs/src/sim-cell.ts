import { SimBoard } from "../sim/board"
import { Notecard } from "../uplink/notecard"
import { CellularUplink } from "../uplink/cellular"
import { startColdtrace } from "../app/start"

/**
 * Simulator entry point for a logger with a Notecard (cellular): the thermocouple model, and the
 * real-time clock and the Notecard on the host (their models are the world's: src/sim/models, over
 * the bus bridge); uploads over Wi-Fi first, then cellular. No GNSS model (docs/devicescript-traps.md,
 * "64 KB of code"). The card syncs with the host's Notehub stand-in; the logger uses the modem only
 * when the provisioning names a product (`ncproduct`).
 */
const NOTECARD_ADDR = 0x17

const board = new SimBoard()
await board.start()
const clock = board.clock
board.i2c.attach(NOTECARD_ADDR, board.host)
const parts = board.parts()
parts.cellular = async (devid: Buffer, product: string) => new CellularUplink(new Notecard(board.i2c, { clock }), { devid, product, clock })
await startColdtrace(parts)
clock.fiberEnded()
