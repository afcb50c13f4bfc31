import { Clock } from "../hal/clock"
import { SpiDevice, ReadyLine } from "../hal/spi"
import { I2cBus } from "../hal/i2c"
import { Ublox } from "../sensor/ublox"
import { GnssTracker } from "./gnss"
import { Uplink, HttpsUplink } from "../uplink/uplink"
import { Notecard } from "../uplink/notecard"
import { CellularUplink } from "../uplink/cellular"
import { kvGet } from "../flash/kv"
import { startMax31856, Max31856 } from "../sensor/max31856"
import { waitForProvisioning, LoggerConfig } from "./config"
import { Logger, Thermometer, ThermoReading } from "./logger"

/**
 * The thermocouple front end the logger samples: the MAX31856 driver, re-configured with back-off
 * while the chip is missing or has lost its configuration. Faulted readings pass through with
 * their flags; nothing here ever substitutes a value.
 */
export class ThermocoupleFrontEnd implements Thermometer {
    constructor(readonly driver: Max31856) {}

    async read(): Promise<ThermoReading> {
        const d = this.driver
        if (!d.ok && (await d.retryConfigure())) console.log("ct:sensor-ok configured")
        const wasOk = d.ok
        const r = await d.read()
        if (wasOk && !d.ok) console.log("ct:sensor-fault " + d.lastError)
        return r
    }
}

export interface BoardParts {
    clock: Clock
    spi: SpiDevice
    ready?: ReadyLine
    /** the I2C bus with the GNSS receiver (0x42), when fitted */
    i2c?: I2cBus
    utcNow?: () => number
    utcSource?: number
    /** flash blocks the log may hold before evicting unsent records (store size / ~220 B) */
    maxBlocks: number
    /** uplinks in order of preference (default: HTTPS to the provisioned endpoint) */
    uplinks?: Uplink[]
    /**
     * the I2C bus with a Notecard (0x17), when fitted: a CellularUplink is tried after the others,
     * provided the provisioning names a Notehub product (setting `ncproduct`)
     */
    cellular?: I2cBus
    /** false inside radio-off windows */
    radioAllowed?: () => boolean
    /** after provisioning, before the first boot record (the simulator: the shipment's start) */
    waitForStart?: () => Promise<void>
}

/**
 * The uplinks in order of preference: `parts.uplinks` (default: HTTPS to the provisioned endpoint,
 * over Wi-Fi), then cellular through the Notecard when one is fitted and a product is provisioned.
 */
export async function buildUplinks(parts: BoardParts, devid: Buffer, endpoint: string): Promise<Uplink[]> {
    const list: Uplink[] = parts.uplinks ? parts.uplinks.slice(0) : [new HttpsUplink(endpoint)]
    if (parts.cellular) {
        const product = await kvGet("ncproduct")
        if (product) {
            const card = new Notecard(parts.cellular, { clock: parts.clock })
            list.push(new CellularUplink(card, { devid, product: product.toString(), clock: parts.clock }))
            console.log("ct:uplinks " + list.map(u => u.name).join(","))
        } else console.log("ct:cellular-off no ncproduct setting")
    }
    return list
}

function driverConfig(c: LoggerConfig) {
    return { tcType: c.tc as any, averaging: c.avg, notch: c.notch, ocMode: c.oc }
}

/** Everything after the hardware wiring: provisioning, the sensor role, the logger. */
export async function startColdtrace(parts: BoardParts): Promise<Logger> {
    console.log("ct:waiting-provisioning")
    const prov = await waitForProvisioning()
    if (parts.waitForStart) await parts.waitForStart()
    const { driver } = await startMax31856(parts.spi, {
        ...driverConfig(prov.config),
        clock: parts.clock,
        ready: parts.ready,
    })
    if (!driver.ok) console.log("ct:sensor-fault " + driver.lastError)
    let gnss: GnssTracker = undefined
    if (parts.i2c) {
        const gps = new Ublox(parts.i2c, { clock: parts.clock })
        await gps.retryConfigure()
        if (!gps.ok) console.log("ct:gnss-fault " + gps.lastError)
        const c = prov.config
        gnss = new GnssTracker(gps, parts.clock, { fix: c.fix, fixmv: c.fixmv, stopv: c.stopv, stopt: c.stopt })
    }
    const logger = new Logger(
        {
            clock: parts.clock,
            thermo: new ThermocoupleFrontEnd(driver),
            utcNow: parts.utcNow,
            utcSource: parts.utcSource,
            gnss,
            uplinks: await buildUplinks(parts, prov.devid, prov.endpoint),
            radioAllowed: parts.radioAllowed,
            maxBlocks: parts.maxBlocks,
        },
        prov,
    )
    await logger.start()
    return logger
}
