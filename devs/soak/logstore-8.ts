import { runLongRuns, LongRunPlan } from "./longruns"

// npm test (test/logstore-longrun.test.ts): the short version, 8 days of each profile, a 3-day outage
// every 4 days with 2 blocks held (evictions on every profile)
const plan = new LongRunPlan()
plan.days = 8
plan.every = 2
plan.outageEvery = 4
plan.outageDays = 3
plan.maxBlocks = 2
await runLongRuns(plan)
