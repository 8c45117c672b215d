#!/usr/bin/env node
'use strict';
// A reader that stops early (`adafilter models list | head`) closes the pipe: that is not an error.
for (const s of [process.stdout, process.stderr]) {
  s.on('error', (e) => { if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0); else throw e; });
}
require('../dist/src/cli/main.js').main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
