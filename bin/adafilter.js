#!/usr/bin/env node
'use strict';
// A reader that stops early (`adafilter models list | head`) closes the pipe: that is not an error.
for (const s of [process.stdout, process.stderr]) {
  s.on('error', (e) => { if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0); else throw e; });
}
// The CLI is composed here: the library's commands plus `bench`, which lives in bench/ so that
// src/ never imports the benchmarks.
const { main, COMMANDS } = require('../dist/src/cli/main.js');
const { benchCommand } = require('../dist/bench/command.js');
const commands = [...COMMANDS];
commands.splice(commands.findIndex((c) => c.name === 'models') + 1, 0, benchCommand);
main(process.argv.slice(2), commands).then((code) => { process.exitCode = code; });
