import * as ds from "@devicescript/core"
import { settings } from "@devicescript/settings"
import { Mutex } from "../hal/mutex"

/**
 * Raw Buffer access to the settings store, the only flash API (platform notes). A value is read back
 * in one Jacdac report holding the key, a NUL and the value: measured, key + 1 + value must stay
 * within 230 bytes, and reading a longer one aborts the VM. The log's keys are at most 4 characters,
 * so its values (blocks, tail) may take 224 bytes.
 */
export const MAX_VALUE = 224
const MAX_KEY_AND_VALUE = 229

/**
 * One settings request at a time, from every fiber. The runtime answers a `get` with a report that
 * every fiber waiting for that key takes as its own; one that arrives while another fiber is still
 * sending its own request of the same key resumes it before it suspended (RangeError: fiber not
 * suspended, the program panics: docs/devicescript-traps.md).
 */
const flash = new Mutex()

export async function kvGet(key: string): Promise<Buffer> {
    await flash.acquire()
    try {
        return await getLocked(key)
    } finally {
        flash.release()
    }
}

async function getLocked(key: string): Promise<Buffer> {
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
    if (value.length > MAX_VALUE || key.length + value.length > MAX_KEY_AND_VALUE)
        throw new RangeError(`${key}: ${value.length} bytes, more than a read-back can hold`)
    await flash.acquire()
    let back: Buffer
    try {
        await settings.set(key, value)
        back = await getLocked(key)
    } finally {
        flash.release()
    }
    if (!back || back.length !== value.length) throw new Error(`flash: ${key} did not stick (store full?)`)
    for (let i = 0; i < value.length; ++i) if (back[i] !== value[i]) throw new Error(`flash: ${key} read back different`)
}

export async function kvDelete(key: string): Promise<void> {
    await flash.acquire()
    try {
        await settings.delete(key)
    } finally {
        flash.release()
    }
}

/** Where a LogStore keeps its values: the settings store, or (the bench) a RAM model of it. */
export interface Kv {
    get(key: string): Promise<Buffer>
    set(key: string, value: Buffer): Promise<void>
    del(key: string): Promise<void>
}

/** The settings store as a Kv. */
export class SettingsKv implements Kv {
    async get(key: string): Promise<Buffer> {
        return await kvGet(key)
    }
    async set(key: string, value: Buffer): Promise<void> {
        await kvSet(key, value)
    }
    async del(key: string): Promise<void> {
        await kvDelete(key)
    }
}
