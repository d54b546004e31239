// The ES module entry point (`import { Engine } from 'hotplex'`): the same
// objects as the CommonJS one (index.js), re-exported by name. index.js
// builds its exports at run time, which Node cannot see statically, hence
// the explicit list; __test__/async.test.js checks it against index.js.

import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const hotplex = require('./index.js')

export const {
  Detector,
  Engine,
  ErrorCode,
  TurnStream,
  registerPromClient,
  sessionCeiling,
  setLogger,
  supervisorMode,
  version,
} = hotplex
export default hotplex
