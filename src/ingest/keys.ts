// Epoch keys on the server (docs/security.md, key custody). The store holds one MAC key per
// device: k[E] of the newest accepted epoch E. A batch under a later epoch e is checked with k[e],
// derived forward from k[E] (k[e+1] = HMAC-SHA256(k[e], "coldtrace-evolve-v2" || u32 (e+1)));
// an epoch before E cannot be checked at all: its key was erased. This cache only saves
// re-deriving: per device, the keys from the stored epoch upwards at every 256th epoch and the
// newest one derived, dropped (and zeroed) once the stored key moves on.
import { evolveKey } from "../format/index.js"

const STEP = 256

class Ladder {
    /** keys derived by this ladder (HMAC-SHA256 evolutions), for EpochKeyCache.derivations */
    derived = 0
    /** k[base + STEP i] */
    private rungs: Buffer[]
    private newest: { epoch: number; key: Buffer }
    constructor(
        readonly base: number,
        readonly baseKey: Buffer,
    ) {
        this.rungs = [Buffer.from(baseKey)]
        this.newest = { epoch: base, key: this.rungs[0] }
    }
    get(e: number): Buffer {
        if (e < this.base) throw new RangeError(`epoch ${e} is before the stored epoch ${this.base}: its key is gone`)
        if (e === this.newest.epoch) return this.newest.key
        let { epoch, key } = this.newest
        if (e < epoch) {
            const i = Math.floor((e - this.base) / STEP)
            epoch = this.base + i * STEP
            key = this.rungs[i]
        }
        while (epoch < e) {
            key = evolveKey(key, ++epoch)
            this.derived++
            const i = (epoch - this.base) / STEP
            if (Number.isInteger(i) && i === this.rungs.length) this.rungs.push(key)
        }
        if (e > this.newest.epoch) this.newest = { epoch: e, key }
        return key
    }
    wipe(): void {
        for (const k of this.rungs) k.fill(0)
        this.baseKey.fill(0)
        this.newest.key.fill(0)
    }
}

export class EpochKeyCache {
    private ladders = new Map<string, Ladder>()
    /** keys derived so far (each one HMAC-SHA256): work counted, so tests need no wall clock */
    derivations = 0
    /** `devices`: how many devices' ladders to keep (least recently used go first) */
    constructor(private readonly devices = 10_000) {}

    /** k[e] of a device whose store holds k[storedEpoch] = storedKey; e >= storedEpoch. A copy: callers may keep it. */
    get(devid: string, storedEpoch: number, storedKey: Buffer, e: number): Buffer {
        let l = this.ladders.get(devid)
        if (l && (l.base !== storedEpoch || !l.baseKey.equals(storedKey))) {
            this.ladders.delete(devid)
            l.wipe()
            l = undefined
        }
        if (l)
            this.ladders.delete(devid) // re-inserted below: most recently used last
        else l = new Ladder(storedEpoch, Buffer.from(storedKey))
        this.ladders.set(devid, l)
        if (this.ladders.size > this.devices) {
            const [oldest, ladder] = this.ladders.entries().next().value as [string, Ladder]
            this.ladders.delete(oldest)
            ladder.wipe()
        }
        const before = l.derived
        const key = Buffer.from(l.get(e))
        this.derivations += l.derived - before
        return key
    }
}
