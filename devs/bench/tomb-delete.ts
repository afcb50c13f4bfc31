import * as ds from "@devicescript/core"
import { tombstoneProbe } from "./tombstone"

await tombstoneProbe(60)
ds.restart()
