import * as ds from "@devicescript/core"
import { settings } from "@devicescript/settings"

/**
 * Raw Buffer access to the settings store, the only flash API (platform notes). Values must stay
 * under ~200 bytes: longer ones can be written but not read back.
 */
export const MAX_VALUE = 192

export async function kvGet(key: string): Promise<Buffer> {
    const pkt = await ds.actionReport(
        settings,
        "get",
        async () => await settings.get(key),
        (p: ds.Packet) => p.decode()[0] === key,
    )
    const b: Buffer = pkt.decode()[1]
    return b && b.length ? b : undefined
}

/**
 * Write and read back. The settings store drops a write silently when even a compaction cannot make
 * room (platform notes), so a value counts as written only once it reads back.
 */
export async function kvSet(key: string, value: Buffer): Promise<void> {
    if (value.length > MAX_VALUE) throw new RangeError(`${key}: ${value.length} bytes > ${MAX_VALUE}`)
    await settings.set(key, value)
    const back = await kvGet(key)
    if (!back || back.length !== value.length) throw new Error(`flash: ${key} did not stick (store full?)`)
    for (let i = 0; i < value.length; ++i) if (back[i] !== value[i]) throw new Error(`flash: ${key} read back different`)
}

export async function kvDelete(key: string): Promise<void> {
    await settings.delete(key)
}
