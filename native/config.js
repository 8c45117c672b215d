'use strict';
// Prints the compiler and linker settings binding.gyp needs for the libtorch we build against:
// Debian's libtorch-dev by default, or the folder named by LIBTORCH (the official libtorch archive,
// or the torch/ folder of a pip install), which is how CUDA builds are made elsewhere.
const fs = require('fs');
const path = require('path');

// Debian's libtorch-dev puts the C++ API headers here.
const DEBIAN_API_INCLUDE = '/usr/include/torch/csrc/api/include';
// native/build.js writes the stand-in for the distributed-autograd context header here (see
// src/dist_autograd_context.h); searched after every other folder, so a real one wins.
const DIST_COMPAT_INCLUDE = path.join(__dirname, 'build', 'dist_compat');

/**
 * Whether the dist module can be built with Gloo against the libtorch headers in includeRoot:
 * libtorch's c10d Gloo header and Gloo's own headers (Debian's libgloo-dev, or a libtorch folder
 * that bundles them). Without them the addon still builds; its dist functions say why they cannot run.
 */
function glooSupport(includeRoot) {
  const c10dGloo = path.join(includeRoot, 'torch/csrc/distributed/c10d/ProcessGroupGloo.hpp');
  if (!fs.existsSync(c10dGloo)) return { gloo: false, reason: `this libtorch has no c10d Gloo headers (${c10dGloo})` };
  const glooConfig = [path.join(includeRoot, 'gloo/config.h'), '/usr/include/gloo/config.h'].find((f) => fs.existsSync(f));
  if (!glooConfig) return { gloo: false, reason: "Gloo's headers are missing: install Debian's libgloo-dev (apt-get install libgloo-dev)" };
  return { gloo: true, reason: null };
}

function distFlags(includeRoot) {
  const flags = [`-idirafter${DIST_COMPAT_INCLUDE}`];
  if (glooSupport(includeRoot).gloo) flags.push('-DUSE_C10D_GLOO');
  return flags;
}

/** Compiler and linker settings; throws one line naming what is missing when libtorch is not found. */
function settings() {
  const root = process.env.LIBTORCH;
  if (!root) {
    if (!fs.existsSync(path.join(DEBIAN_API_INCLUDE, 'torch', 'torch.h'))) {
      throw new Error(`libtorch not found: install Debian's libtorch-dev (apt-get install libtorch-dev), or set LIBTORCH to a libtorch folder with include/ and lib/`);
    }
    return {
      include_dirs: [DEBIAN_API_INCLUDE],
      libraries: ['-ltorch', '-ltorch_cpu', '-lc10'],
      cflags: ['-std=c++17', '-D_GLIBCXX_USE_CXX11_ABI=1', ...distFlags('/usr/include')],
      ldflags: [],
    };
  }
  const inc = path.join(root, 'include');
  const lib = path.join(root, 'lib');
  for (const p of [inc, lib]) {
    if (!fs.existsSync(p)) throw new Error(`LIBTORCH=${root}: missing ${p} (expected a libtorch folder with include/ and lib/)`);
  }
  const has = (name) => fs.existsSync(path.join(lib, name));
  for (const name of ['libtorch.so', 'libc10.so']) {
    if (!has(name)) throw new Error(`LIBTORCH=${root}: missing ${path.join(lib, name)} (expected a libtorch folder with include/ and lib/)`);
  }
  const libraries = ['-ltorch', '-ltorch_cpu', '-lc10'];
  // Without --no-as-needed the linker drops libtorch_cuda (nothing references it by symbol) and
  // CUDA kernels never register.
  const ldflags = [`-L${lib}`, `-Wl,-rpath,${lib}`];
  if (has('libtorch_cuda.so')) {
    ldflags.push('-Wl,--no-as-needed');
    libraries.push('-ltorch_cuda', '-lc10_cuda');
  }
  const versionH = path.join(inc, 'torch/csrc/api/include/torch/version.h');
  const major = fs.existsSync(versionH)
    ? Number((/TORCH_VERSION_MAJOR (\d+)/.exec(fs.readFileSync(versionH, 'utf8')) || [])[1] || 1)
    : 1;
  const std = process.env.TORCH_CXX_STD || (major >= 2 ? 'c++20' : 'c++17');
  // Older pip wheels use the pre-C++11 std::string ABI; the library's own symbols tell which.
  let abi = process.env.TORCH_CXX11_ABI;
  if (abi === undefined) {
    const c10 = fs.readFileSync(path.join(lib, 'libc10.so'));
    abi = c10.includes('St7__cxx11') || c10.includes('NSt7__cxx11') ? '1' : '0';
  }
  return {
    include_dirs: [inc, path.join(inc, 'torch/csrc/api/include')],
    libraries,
    cflags: [`-std=${std}`, `-D_GLIBCXX_USE_CXX11_ABI=${abi}`, ...distFlags(inc)],
    ldflags,
  };
}

/** The include root of the libtorch settings() builds against (where torch/csrc/... lives). */
function includeRoot() {
  return process.env.LIBTORCH ? path.join(process.env.LIBTORCH, 'include') : '/usr/include';
}

module.exports = { settings, glooSupport: () => glooSupport(includeRoot()), DIST_COMPAT_INCLUDE };

// binding.gyp runs `node config.js KEY` for each setting.
if (require.main === module) {
  const key = process.argv[2];
  const s = settings();
  if (!(key in s)) throw new Error(`config.js: unknown key ${key}`);
  process.stdout.write(s[key].join(' '));
}
