// A simple model of the logger's cell for the simulator's battery-sense and the low-battery policy:
// the rest (open-circuit) voltage from the state of charge, the capacity from the temperature, an IR
// drop under load, the divider's scaling to the ADC pin, and the firmware's threshold levels. Pure
// functions over the `battery` section of hardware/power.json (load it with loadPowerModel()).
//
//   capacity(T)   = nominal_mAh x capacityVsTemperature(T)
//   soc           = 1 - mAhUsed / capacity(T)            (clamped to 0..1)
//   V(used, T, I) = OCV(soc) - I x R(T)                    (I in A, R from resistanceOhm)
//   V_adc         = V x rBottom / (rTop + rBottom)         (both boards: 1/2, GPIO35, ADC1_CH7)
//
// The cold only makes less of the charge available (it comes back when the cell warms): a cell that
// gave 1000 mAh at 25 C reads the OCV of soc = 1 - 1000 / capacity(T) at T. Tables are linearly
// interpolated and held constant outside their range.

export type Point = [number, number]

export interface BatteryDivider {
    gpio: number
    adcChannel: string
    rTopOhm: number
    rBottomOhm: number
    switched: boolean
    source: string
}

export interface ThresholdLevel {
    id: string
    /** entered when the rest voltage falls below this (V) */
    belowV: number
    action: string
}

export interface BatteryModel {
    cell: string
    chemistry: string
    nominal_mAh: number
    nominalV: number
    cutoffV: number
    cutoffSource: string
    ocv: { points: Point[]; source: string; estimate?: boolean }
    capacityVsTemperature: { points: Point[]; source: string; estimate?: boolean }
    resistanceOhm: { points: Point[]; source: string; estimate?: boolean }
    dividers: Record<string, BatteryDivider>
    thresholds: { hysteresisV: number; levels: ThresholdLevel[] }
}

/** Linear interpolation in a table sorted by x; clamps outside it. */
export function interpolate(points: readonly Point[], x: number): number {
    if (points.length === 0) throw new Error("empty table")
    if (x <= points[0][0]) return points[0][1]
    const last = points[points.length - 1]
    if (x >= last[0]) return last[1]
    for (let i = 1; i < points.length; i++) {
        const [x1, y1] = points[i]
        if (x <= x1) {
            const [x0, y0] = points[i - 1]
            return y0 + ((y1 - y0) * (x - x0)) / (x1 - x0)
        }
    }
    return last[1]
}

/** Charge the full cell can give at a temperature (mAh), down to an empty cell (soc 0). */
export function capacityMah(model: BatteryModel, temperatureC: number): number {
    return model.nominal_mAh * interpolate(model.capacityVsTemperature.points, temperatureC)
}

/** State of charge 0..1 after `mAhUsed` drawn from a full cell, at a temperature. */
export function stateOfCharge(model: BatteryModel, mAhUsed: number, temperatureC: number): number {
    const soc = 1 - mAhUsed / capacityMah(model, temperatureC)
    return Math.min(1, Math.max(0, soc))
}

/** Rest (open-circuit) voltage at a state of charge. */
export function restVoltage(model: BatteryModel, soc: number): number {
    return interpolate(model.ocv.points, Math.min(1, Math.max(0, soc)))
}

/** State of charge at a rest voltage (the OCV table read backwards; it rises monotonically). */
export function socAtVoltage(model: BatteryModel, volts: number): number {
    const inverse = model.ocv.points.map(([soc, v]) => [v, soc] as Point)
    return interpolate(inverse, volts)
}

/** Cell resistance (ohm) at a temperature. */
export function resistanceOhm(model: BatteryModel, temperatureC: number): number {
    return interpolate(model.resistanceOhm.points, temperatureC)
}

/**
 * Terminal voltage of the cell after `mAhUsed` from full, at `temperatureC`, while `loadMa` flows
 * (0: the rest voltage the firmware reads at a wake before any radio use).
 */
export function cellVoltage(model: BatteryModel, mAhUsed: number, temperatureC: number, loadMa = 0): number {
    const v = restVoltage(model, stateOfCharge(model, mAhUsed, temperatureC))
    return v - (loadMa / 1000) * resistanceOhm(model, temperatureC)
}

/** Fraction of the nominal charge available above the cut-off at a temperature (for the life figures). */
export function usableFraction(model: BatteryModel, temperatureC: number): number {
    const capacity = interpolate(model.capacityVsTemperature.points, temperatureC)
    return capacity * (1 - socAtVoltage(model, model.cutoffV))
}

/** Voltage at the ADC pin of a board's battery-sense divider (V). */
export function adcPinVoltage(model: BatteryModel, boardId: string, cellVolts: number): number {
    const d = model.dividers[boardId]
    if (!d) throw new Error(`no battery divider for board ${boardId}`)
    return (cellVolts * d.rBottomOhm) / (d.rTopOhm + d.rBottomOhm)
}

/** Cell voltage from the ADC pin voltage (what the firmware computes after its ADC calibration). */
export function cellFromAdcPin(model: BatteryModel, boardId: string, adcVolts: number): number {
    const d = model.dividers[boardId]
    if (!d) throw new Error(`no battery divider for board ${boardId}`)
    return (adcVolts * (d.rTopOhm + d.rBottomOhm)) / d.rBottomOhm
}

/**
 * The low-battery level for a rest voltage, with hysteresis: `current` is the level the logger is in
 * ("normal" or a level id); it leaves a level only when the voltage is `hysteresisV` above its bound.
 * Levels only get worse while discharging; recovery (a charged cell) steps back through the bounds.
 */
export function batteryLevel(model: BatteryModel, restVolts: number, current = "normal"): string {
    const levels = [...model.thresholds.levels].sort((a, b) => b.belowV - a.belowV)
    let level = "normal"
    for (const l of levels) if (restVolts < l.belowV) level = l.id
    const rank = (id: string) => (id === "normal" ? -1 : levels.findIndex(l => l.id === id))
    if (rank(level) < rank(current)) {
        // recovering: stay in `current` unless the voltage clears its bound by the hysteresis
        const bound = levels[rank(current)].belowV
        if (restVolts < bound + model.thresholds.hysteresisV) return current
    }
    return level
}
