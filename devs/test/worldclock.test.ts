import * as ds from "@devicescript/core"
import { describe, test, expect } from "@devicescript/test"
import { WorldClock, WorldSnapshot, WorldSource } from "../sim/world"

/**
 * The simulator's device clock (devs/sim/world.ts) asks the world for wake-ups from several fibers.
 * The world (src/sim/world.ts) holds at the last instant it was asked for, so the LAST request it
 * receives must be the earliest wake-up still pending. In the uplink-faults stall (issue 9) the
 * uploader's nap computed its request (the sample instant), was delayed on the way, and arrived
 * after the sampling fiber's newer request (the conversion wait): the world held at the old
 * instant and both fibers waited forever. This fake world delays the second request it is given,
 * as the runtime's packet throttle did, and records what arrives in which order.
 */
class SlowWorld implements WorldSource {
    readonly now = new WorldSnapshot()
    received: number[] = []
    calls = 0
    async requestWake(utcMs: number): Promise<void> {
        const n = ++this.calls
        if (n === 2) await ds.sleep(80)
        this.received.push(utcMs)
    }
}

const BOOT = 1000000

async function sampler(clock: WorldClock) {
    await clock.sleep(1000)
    // woken at the sample instant: the conversion wait
    await clock.sleep(169)
}

async function uploader(clock: WorldClock) {
    await clock.nap(1000)
}

describe("world clock", () => {
    test("the last wake-up request the world receives is the earliest one still pending", async () => {
        const world = new SlowWorld()
        world.now.utcMs = BOOT
        world.now.speed = 1000
        const clock = new WorldClock(world)
        sampler.start(clock)
        await ds.sleep(20)
        uploader.start(clock) // asks for the sample instant, delivered 80 ms later
        await ds.sleep(20)
        world.now.utcMs = BOOT + 1000 // the world reaches the sample instant
        await ds.sleep(200)
        expect(world.received.length > 0).toBe(true)
        expect(world.received[world.received.length - 1]).toBe(BOOT + 1169)
    })
})
