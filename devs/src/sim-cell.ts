import { SimBoard } from "../sim/board"
import { Notecard } from "../uplink/notecard"
import { CellularUplink } from "../uplink/cellular"
import { startColdtrace } from "../app/start"

/**
 * Simulator entry point for a logger with a Notecard (cellular): the chips' models are on the host
 * (src/sim/models, over the bus bridge); uploads over Wi-Fi first, then cellular. No GNSS receiver:
 * a scenario has a route or a modem (docs/simulator.md). The card syncs with the host's Notehub
 * stand-in; the logger uses the modem only when the provisioning names a product (`ncproduct`).
 */
const board = new SimBoard()
await board.start()
const clock = board.clock
const parts = board.parts()
parts.cellular = async (devid: Buffer, product: string) => new CellularUplink(new Notecard(board.i2c, { clock }), { devid, product, clock })
await startColdtrace(parts)
clock.fiberEnded()
