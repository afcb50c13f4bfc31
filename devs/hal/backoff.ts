/**
 * Retry timing for a peripheral that stopped answering: after a failure wait 1 s, then 2 s, 4 s ...
 * up to 60 s of device time; a success starts over. Shared by the sensor drivers' retryConfigure().
 */
export class Backoff {
    private at = 0
    private delay: number

    constructor(
        readonly minMs = 1000,
        readonly maxMs = 60000,
    ) {
        this.delay = minMs
    }

    /** whether a retry is due at device time `now` */
    due(now: number): boolean {
        return now >= this.at
    }

    failed(now: number) {
        this.at = now + this.delay
        this.delay = Math.min(this.delay * 2, this.maxMs)
    }

    reset() {
        this.at = 0
        this.delay = this.minMs
    }
}
