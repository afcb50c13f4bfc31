import { runLongRuns, LongRunPlan } from "./longruns"

// npm run soak (test/soak/logstore.soak.ts): 400 days of each profile, a 3-day outage every 10 days
// with 2 blocks held, so every profile's store fills and evicts (about 2.5 days of the stable one fit)
const plan = new LongRunPlan()
plan.outageDays = 3
plan.maxBlocks = 2
await runLongRuns(plan)
