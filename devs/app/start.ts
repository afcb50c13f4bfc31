import { Clock } from "../hal/clock"
import { SpiDevice, ReadyLine } from "../hal/spi"
import { Rv3028 } from "../sensor/rv3028"
import { GnssTracker, GnssConfig } from "./gnss"
import { Uplink, HttpsUplink } from "../uplink/uplink"
import { kvGet } from "../flash/kv"
import { Max31856 } from "../sensor/max31856"
import { waitForProvisioning, LoggerConfig } from "./config"
import { Logger, Thermometer, ThermoReading } from "./logger"
import { BatterySense } from "./battery"
import { WakeState } from "./state"
import { Watchdog, DUE_START, START_MAX } from "./watchdog"

/**
 * The thermocouple front end the logger samples: the MAX31856 driver, re-configured with back-off
 * while the chip is missing or has lost its configuration. Faulted readings pass through with
 * their flags; nothing here ever substitutes a value.
 */
export class ThermocoupleFrontEnd implements Thermometer {
    constructor(readonly driver: Max31856) {}

    async read(): Promise<ThermoReading> {
        const d = this.driver
        if (!d.ok) await d.retryConfigure()
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
    /** the GNSS receiver (u-blox on I2C 0x42), when fitted: `startGnss` with its driver */
    gnss?: (cfg: GnssConfig) => Promise<GnssTracker>
    /** the real-time clock's driver (RV-3028 on I2C 0x52), when fitted */
    rtc?: Rv3028
    utcNow?: () => number
    utcSource?: number
    /** flash blocks the log may hold before evicting unsent records (store size / ~220 B) */
    maxBlocks: number
    /** uplinks in order of preference (default: HTTPS to the provisioned endpoint) */
    uplinks?: Uplink[]
    /**
     * a Notecard's uplink (a CellularUplink), when one is fitted: tried after the others, provided the
     * provisioning names a Notehub product (setting `ncproduct`). A factory, so a build without a modem
     * carries none of its code.
     */
    cellular?: (devid: Buffer, product: string) => Promise<Uplink>
    /** false inside radio-off windows */
    radioAllowed?: () => boolean
    /** the cell's voltage through the battery-sense divider */
    battery?: BatterySense
    /** power down below the battery cut-off */
    powerOff?: () => Promise<void>
    /** the board's deep sleep between wakes (Board.sleep): does not return, the program starts again */
    sleep?: (ms: number) => Promise<void>
    /** USB (or a charger) powers the board: the logger stays awake (Board.externalPower) */
    externalPower?: () => boolean
    /** CPU ms at which this run's program started (Board.startedAt) */
    startedAt?: number
    /** after provisioning, before the first boot record (the simulator: the shipment's start) */
    waitForStart?: () => Promise<void>
    /** the lid sensor's level (v2: LID, GPIO4; true: open), when fitted */
    lidOpen?: () => Promise<boolean>
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
            list.push(await parts.cellular(devid, product.toString()))
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
    // armed before any bus is touched: a hang anywhere in this run's start resets the logger
    const st = new WakeState()
    const watchdog = new Watchdog(parts.clock, st)
    watchdog.due[DUE_START] = parts.clock.now() + START_MAX
    watchdog.start()
    // the driver alone, no Jacdac sensor role: nothing reads one, and its server costs code room
    const driver = new Max31856(parts.spi, { ...driverConfig(prov.config), clock: parts.clock, ready: parts.ready })
    try {
        await driver.configure()
    } catch (e: any) {
        // kept in `lastError`: the front end retries with back-off at every sample
    }
    if (!driver.ok) console.log("ct:sensor-fault " + driver.lastError)
    // the sample a wake is for converts while the logger restores its state from flash
    await driver.startEarly()
    const c = prov.config
    const gnss = parts.gnss ? await parts.gnss({ fix: c.fix, fixmv: c.fixmv, stopv: c.stopv, stopt: c.stopt }) : undefined
    const logger = new Logger(
        {
            clock: parts.clock,
            thermo: new ThermocoupleFrontEnd(driver),
            utcNow: parts.utcNow,
            utcSource: parts.utcSource,
            gnss,
            uplinks: await buildUplinks(parts, prov.devid, prov.endpoint),
            radioAllowed: parts.radioAllowed,
            rtc: parts.rtc,
            maxBlocks: parts.maxBlocks,
            battery: parts.battery,
            powerOff: parts.powerOff,
            sleep: parts.sleep,
            externalPower: parts.externalPower,
            startedAt: parts.startedAt,
            lidOpen: parts.lidOpen,
        },
        prov,
        st,
        watchdog,
    )
    await logger.start()
    return logger
}
