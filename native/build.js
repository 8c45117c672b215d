'use strict';
// Builds the addon with node-gyp against the libtorch config.js finds. The one build step for both
// routes: scripts/setup.sh in a checkout, and `adafilter setup` where the package is installed as
// a dependency (npm runs no install scripts of dependencies, so nothing builds it at install time).
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { settings, DIST_COMPAT_INCLUDE } = require('./config');

const ADDON = path.join(__dirname, 'build', 'Release', 'adafilter.node');

/** A prerequisite of the build is missing; the message names it and how to get it, in one line. */
class MissingPrerequisite extends Error {}

// node-gyp downloads Node's headers from the internet unless pointed at them; they ship with Node
// itself (<prefix>/include/node) for Debian's nodejs, the nodejs.org archives and nvm.
function nodeDir() {
  return process.env.npm_config_nodedir || path.dirname(path.dirname(process.execPath));
}

function runs(cmd) {
  const r = spawnSync(cmd, ['--version'], { stdio: 'ignore' });
  return r.status === 0;
}

function resolveHere(id) {
  try {
    return require.resolve(id, { paths: [__dirname] });
  } catch {
    return null;
  }
}

/** The first missing prerequisite, as one line saying what and how to get it; null when all are there. */
function missingPrerequisite() {
  try {
    settings();
  } catch (e) {
    return e.message;
  }
  // The Makefile node-gyp writes compiles with $(CXX), make's default being g++.
  const cxx = process.env.CXX || 'g++';
  if (!runs(cxx)) return `no C++ compiler ('${cxx} --version' fails): install build-essential (Debian/Ubuntu) or set CXX`;
  if (!runs('make')) return "no 'make': install build-essential (Debian/Ubuntu)";
  const python = process.env.PYTHON || 'python3';
  if (!runs(python)) return `no Python 3 ('${python} --version' fails; node-gyp runs gyp with it): install python3 or set PYTHON`;
  const header = path.join(nodeDir(), 'include', 'node', 'node_api.h');
  if (!fs.existsSync(header)) {
    return `Node's headers are missing (${header}): install your distribution's Node.js headers, or set npm_config_nodedir to a Node headers folder`;
  }
  for (const id of ['node-gyp/bin/node-gyp.js', 'node-addon-api']) {
    if (!resolveHere(id)) return `npm package '${id.split('/')[0]}' is missing: reinstall adafilter (npm install)`;
  }
  return null;
}

/** Builds the addon (node-gyp's output goes to stderr); throws MissingPrerequisite or an Error. */
function build({ jobs = os.availableParallelism?.() ?? os.cpus().length } = {}) {
  const problem = missingPrerequisite();
  if (problem) throw new MissingPrerequisite(problem);
  const gyp = resolveHere('node-gyp/bin/node-gyp.js');
  const gypStep = (steps) => {
    const r = spawnSync(process.execPath, [gyp, ...steps, '--loglevel=warn', `--nodedir=${nodeDir()}`, '-j', String(jobs)],
      { cwd: __dirname, stdio: ['ignore', 2, 2] });
    if (r.status !== 0) throw new Error(`node-gyp ${steps.join(' ')} failed (${r.error ? r.error.message : `exit ${r.status}`}); its output is above`);
  };
  // node-gyp's rebuild, split so the stand-in header lands in build/ after clean has emptied it.
  gypStep(['clean', 'configure']);
  writeDistCompatHeader();
  gypStep(['build']);
}

/**
 * Puts src/dist_autograd_context.h where reducer.hpp looks for the distributed-autograd context
 * header, under DIST_COMPAT_INCLUDE (searched last, so a libtorch shipping the header uses its own).
 */
function writeDistCompatHeader() {
  const target = path.join(DIST_COMPAT_INCLUDE, 'torch', 'csrc', 'distributed', 'autograd', 'context', 'context.h');
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.copyFileSync(path.join(__dirname, 'src', 'dist_autograd_context.h'), target);
}

/**
 * Why the built addon cannot be used (missing, or libtorch does not load), or null with its
 * libtorch version. Checked in a child process: this process may hold an older build of the file.
 */
function addonStatus() {
  if (!fs.existsSync(ADDON)) return { problem: `${ADDON} is missing` };
  const r = spawnSync(process.execPath, ['-e', `process.stdout.write(require(${JSON.stringify(ADDON)}).version())`], { encoding: 'utf8' });
  if (r.status !== 0) {
    const line = (r.stderr || '').split('\n').find((l) => /Error/.test(l)) || `exit ${r.status}`;
    return { problem: `${ADDON} does not load: ${line.trim()}` };
  }
  return { problem: null, version: r.stdout.trim() };
}

module.exports = { ADDON, MissingPrerequisite, missingPrerequisite, build, addonStatus };

// `node native/build.js [--jobs N]`, as scripts/setup.sh runs it.
if (require.main === module) {
  const i = process.argv.indexOf('--jobs');
  try {
    build(i > 0 ? { jobs: Number(process.argv[i + 1]) } : {});
  } catch (e) {
    process.stderr.write(`native/build.js: ${e.message}\n`);
    process.exit(e instanceof MissingPrerequisite ? 2 : 1);
  }
}
