import * as ds from "@devicescript/core"
import { describe, test, expect } from "@devicescript/test"
import { WorldClock } from "../sim/world"
import { Signal } from "../hal/clock"

/**
 * The simulator's device clock (devs/sim/world.ts) tells the VM's clock (src/sim/vm/vm-clock.cjs)
 * how many firmware fibers are busy and the earliest wake-up of those that wait; the world jumps
 * only when none is busy. Each state is printed synchronously when it changes (no packet, no
 * await), so the last line is always the current state: the uplink stall of issue 9 (a request
 * computed before an await, delivered after a newer one) cannot happen. These tests record what
 * the clock says.
 */
class Said {
    lines: string[] = []
    last(): { busy: number; wake: number } {
        const l = this.lines[this.lines.length - 1]
        const busy = parseInt(l.slice(l.indexOf("busy=") + 5))
        const wake = parseInt(l.slice(l.indexOf("wake=") + 5))
        return { busy, wake }
    }
}

function recordingClock(said: Said): WorldClock {
    const clock = new WorldClock()
    clock.say = (line: string) => {
        said.lines.push(line)
    }
    return clock
}

async function sleeper(c: WorldClock) {
    await c.sleep(300)
}

let raised = false
async function waiter(arg: any[]) {
    const c: WorldClock = arg[0]
    raised = await c.sleepOr(100000, arg[1])
}

describe("world clock", () => {
    test("reports the earliest wake-up and no busy fiber once every fiber waits", async () => {
        const said = new Said()
        const clock = recordingClock(said)
        const t0 = clock.now()
        clock.spawn(sleeper, clock)
        await ds.sleep(20)
        expect(said.last().busy).toBe(1) // this fiber
        // the sleeper's wake-up: 300 ms after it started (a few ms after t0)
        expect(said.last().wake >= t0 + 300 && said.last().wake <= t0 + 320).toBe(true)
        await clock.sleep(100)
        // the line said when this fiber went to sleep too: nobody busy, the earliest wake-up
        const asleep = said.lines[said.lines.length - 1]
        expect(asleep.indexOf("busy=0") > 0).toBe(true)
        const w = said.last().wake
        expect(w >= t0 + 100 && w < t0 + 300).toBe(true)
        await ds.sleep(400) // the sleeper ends
        expect(said.lines[said.lines.length - 1].indexOf("busy=1") > 0).toBe(true)
    })

    test("a fiber woken by a signal counts as busy before it runs again", async () => {
        const said = new Said()
        const clock = recordingClock(said)
        const sig = new Signal()
        clock.spawn(waiter, [clock, sig])
        await ds.sleep(20)
        expect(said.last().busy).toBe(1) // only this fiber; the waiter waits
        clock.raise(sig)
        // said before the waiter ran: it is busy from the moment it was woken
        expect(said.last().busy).toBe(2)
        await ds.sleep(20)
        expect(raised).toBe(true)
    })
})
