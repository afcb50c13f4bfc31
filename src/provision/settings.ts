import { JDBus, JDDevice, SettingsClient, SRV_SETTINGS } from "jacdac-ts"

/**
 * Talking to a logger's settings store over Jacdac: the USB link of a real board (serialport) or the
 * hub of the simulator. The same code provisions both, and reads the log back for export.
 */
export async function findLogger(bus: JDBus, timeoutMs = 10_000, exclude?: (d: JDDevice) => boolean): Promise<SettingsClient> {
    const t0 = Date.now()
    for (;;) {
        const dev = bus
            .devices({ serviceClass: SRV_SETTINGS, announced: true, lost: false })
            .find((d: JDDevice) => !(exclude && exclude(d)))
        if (dev) return new SettingsClient(dev.services({ serviceClass: SRV_SETTINGS })[0])
        if (Date.now() - t0 > timeoutMs) throw new Error(`no logger with a settings service on the bus after ${timeoutMs} ms`)
        await new Promise(r => setTimeout(r, 50))
    }
}

/** One value as bytes; undefined when the key is not set. */
export async function readSetting(client: SettingsClient, key: string): Promise<Buffer | undefined> {
    // the answer to someone else's read (the logger's own program reads its settings too: a wake's
    // restore) comes back to every client; jacdac-ts then gives undefined, where a key that is not
    // set gives an empty value: ask again
    for (let i = 0; i < READ_TRIES; i++) {
        const v = await client.getValue(key)
        if (v !== undefined) return v.length ? Buffer.from(v) : undefined
    }
    return undefined
}

/** reads of one key before it counts as not set: each lost only to another reader's answer */
const READ_TRIES = 8
