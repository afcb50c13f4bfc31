import type { SettingsClient } from "jacdac-ts"
import { readSetting } from "../provision/settings.js"
import { blockKey, decodeBlock, decodeLogAck, decodeLogMeta, LOG_ACK_KEY, LOG_META_KEY } from "../format/index.js"
import type { ChainEntry } from "../verify/chain.js"

export interface DeviceExport {
    boot: number
    ackSeq: number | null
    entries: ChainEntry[]
}

/**
 * Read the record log out of a logger's flash over Jacdac (docs/format.md section 4), the way the
 * firmware finds it after a restart: lgmeta, then the blocks it names (and one past it), then lgack.
 */
export async function exportDeviceLog(client: SettingsClient): Promise<DeviceExport> {
    const metaBuf = await readSetting(client, LOG_META_KEY)
    const ackBuf = await readSetting(client, LOG_ACK_KEY)
    const entries: ChainEntry[] = []
    if (!metaBuf) return { boot: 0, ackSeq: null, entries }
    const meta = decodeLogMeta(metaBuf)
    for (let n = meta.firstBlock; n <= meta.lastBlock + 1; n++) {
        const v = await readSetting(client, blockKey(n))
        if (!v) continue
        const blk = decodeBlock(v)
        blk.recordBytes.forEach((bytes, i) => entries.push({ seq: blk.firstSeq + i, bytes }))
    }
    return { boot: meta.boot, ackSeq: ackBuf ? decodeLogAck(ackBuf).ackSeq : null, entries }
}
