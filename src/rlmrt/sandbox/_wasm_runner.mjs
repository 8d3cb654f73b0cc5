// The Deno side of Sandbox("wasm") (see rlmrt/sandbox/wasm.py): loads Pyodide from a
// local folder and runs rlmrt's kernel (kernel.py, `serve_embedded`) inside it, moving
// the kernel's frames over this process's stdin/stdout.
//
//   deno run <no permissions but --allow-read of these files> _wasm_runner.mjs \
//       PYODIDE_DIR SNAPSHOT serve KERNEL_PY SHARE_DIR CONFIG_JSON
//   deno run <... and --allow-write=SNAPSHOT> _wasm_runner.mjs PYODIDE_DIR SNAPSHOT make
//
// `make` (run by the host, no user code) boots Python once and saves Pyodide's memory
// snapshot; `serve` starts from it when it exists, which takes a tenth of the CPU of a
// full boot.
//
// Deno's permissions are the boundary: Python reaches JavaScript through the `js`
// module, so everything here is reachable from user code, and nothing here may rely on
// being hidden. Frames are a 4-byte big-endian length and UTF-8 JSON, as in kernel.py.
// Everything user code prints goes to capture files in Pyodide's in-memory file system:
// only writeFrame writes to stdout.

import * as fs from "node:fs";
import * as path from "node:path";
import * as crypto from "node:crypto";
import * as tty from "node:tty";

const [pyodideDir, snapshotPath, mode, kernelPath, shareDir, configText] = Deno.args;
const stdin = Deno.stdin;
const stdout = Deno.stdout;
const stderr = Deno.stderr;
const exit = Deno.exit;
const MAX_FRAME = 256 * 1024 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Pyodide sees Deno's Node compatibility and takes its Node path, where Emscripten's
// code calls `require`. Only these modules exist; there is no child_process (os.system
// answers "command not found") and no `ws` (sockets fail, and Deno has no network).
// Emscripten's NODEFS (the /rlmrt mount) turns errors into errno by their `code`; Deno's
// refusals have none and would be fatal to Pyodide, so they become EACCES here.
const guardedFs = { ...fs };
for (const [name, fn] of Object.entries(fs)) {
  if (!name.endsWith("Sync") || typeof fn !== "function") continue;
  guardedFs[name] = (...args) => {
    try {
      return fn.apply(fs, args);
    } catch (error) {
      if (error instanceof Error && !("code" in error && error.code)) error.code = "EACCES";
      throw error;
    }
  };
}
const nodeModules = {
  fs: guardedFs, path, crypto, tty,
  "node:fs": guardedFs, "node:path": path, "node:crypto": crypto, "node:tty": tty,
  child_process: { spawnSync: () => ({ status: 127, signal: null }) },
};
globalThis.require = (name) => {
  if (name in nodeModules) return nodeModules[name];
  throw new Error(`${name} is not available in the wasm sandbox`);
};
globalThis.__dirname = pyodideDir;

// -- frames ---------------------------------------------------------------------------

function readExactly(size) {
  const out = new Uint8Array(size);
  let have = 0;
  while (have < size) {
    const got = stdin.readSync(out.subarray(have));
    if (got === null) exit(0); // the host went away
    have += got;
  }
  return out;
}

function readFrame() {
  const header = readExactly(4);
  const size = new DataView(header.buffer).getUint32(0);
  if (size > MAX_FRAME) {
    stderr.writeSync(encoder.encode(`runner: frame of ${size} bytes is over the cap\n`));
    exit(3);
  }
  return decoder.decode(readExactly(size));
}

function writeFrame(text) {
  const data = encoder.encode(String(text));
  const frame = new Uint8Array(4 + data.length);
  new DataView(frame.buffer).setUint32(0, data.length);
  frame.set(data, 4);
  let done = 0;
  while (done < frame.length) done += stdout.writeSync(frame.subarray(done));
}

// -- the wall-time timer --------------------------------------------------------------
// Python runs on this thread and blocks it, so a worker keeps the time: it writes
// SIGALRM into Pyodide's interrupt buffer, and the kernel's handler raises into the
// code. `control[0]` is the current arming; a timeout of an older one does nothing.

const interrupt = new Int32Array(new SharedArrayBuffer(4));
const control = new Int32Array(new SharedArrayBuffer(4));
const SIGALRM = 14;
const timerSource = `
let timer;
self.onmessage = (event) => {
  const [interrupt, control, generation, ms] = event.data;
  clearTimeout(timer);
  if (ms === null) return;
  timer = setTimeout(() => {
    if (Atomics.load(control, 0) === generation) Atomics.store(interrupt, 0, ${SIGALRM});
  }, ms);
};
self.postMessage("ready");
`;
const timerWorker = new Worker(
  URL.createObjectURL(new Blob([timerSource], { type: "text/javascript" })),
  { type: "module" },
);
await new Promise((resolve) => (timerWorker.onmessage = resolve));

function armTimer(seconds) {
  const generation = Atomics.add(control, 0, 1) + 1;
  Atomics.store(interrupt, 0, 0);
  timerWorker.postMessage([interrupt, control, generation, Math.ceil(seconds * 1000)]);
}

function disarmTimer() {
  const generation = Atomics.add(control, 0, 1) + 1;
  timerWorker.postMessage([interrupt, control, generation, null]);
}

// Emscripten's sleep spins (time.sleep(6) used 6 s of CPU): Python's time.sleep waits
// here instead, blocked in Atomics.wait, which uses no CPU; slices of at most 50 ms let
// the wall-time timer's interrupt land.
const sleeper = new Int32Array(new SharedArrayBuffer(4));
function waitSeconds(seconds) {
  Atomics.wait(sleeper, 0, 0, Math.max(0, Number(seconds) * 1000));
}

// -- Pyodide --------------------------------------------------------------------------

// Packages in Pyodide's lock file whose wheel is not in the local folder come from the
// CDN: importing one must fail at once, naming it, instead of trying the network.
const lock = JSON.parse(fs.readFileSync(path.join(pyodideDir, "pyodide-lock.json"), "utf8"));
const offline = {};
for (const [name, pkg] of Object.entries(lock.packages ?? {})) {
  if (fs.existsSync(path.join(pyodideDir, pkg.file_name ?? ""))) continue;
  for (const module of pkg.imports ?? []) offline[module] = name;
}

const discard = () => {};
const { loadPyodide } = await import(new URL(`file://${pyodideDir}/pyodide.mjs`).href);
const options = {
  indexURL: `${pyodideDir}/`,
  stdout: discard,
  stderr: discard,
  env: { HOME: "/home/pyodide", LANG: "C.UTF-8" },
};
if (mode === "make") {
  const pyodide = await loadPyodide({ ...options, _makeSnapshot: true });
  // what the kernel imports, so that it is in the snapshot
  pyodide.runPython("import ast, json, keyword, select, signal, struct, time, traceback, types");
  fs.writeFileSync(snapshotPath, pyodide.makeMemorySnapshot());
  exit(0);
}
const snapshot = snapshotPath && fs.existsSync(snapshotPath) ? fs.readFileSync(snapshotPath) : null;
const pyodide = await loadPyodide(snapshot ? { ...options, _loadSnapshot: snapshot } : options);
pyodide.setInterruptBuffer(interrupt);
// The host's per-sandbox folder (contexts) at /rlmrt; Deno refuses writes to it.
pyodide.FS.mkdirTree("/rlmrt");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: shareDir }, "/rlmrt");

const boot = pyodide.runPython(`
import sys
import types


class _Unavailable:
    """Refuses imports that cannot work offline in WebAssembly, at once and by name."""

    no_processes = ("subprocess", "multiprocessing", "pty")

    def __init__(self, offline):
        self.offline = offline

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in self.no_processes:
            raise ModuleNotFoundError(
                f"{top} is not available in the wasm sandbox: WebAssembly has no processes",
                name=name,
            )
        if top in self.offline:
            raise ModuleNotFoundError(
                f"No module named {name!r}: {self.offline[top]!r} is a Pyodide package that"
                " is downloaded from the Pyodide CDN, and the wasm sandbox is offline"
                " (only the standard library is available)",
                name=name,
            )
        return None


def _sleep_without_spinning(wait):
    import time

    spin, monotonic = time.sleep, time.monotonic

    def sleep(seconds):
        seconds = float(seconds)
        if seconds != seconds or seconds < 0:
            raise ValueError("sleep length must be non-negative")
        deadline = monotonic() + seconds
        while True:
            left = deadline - monotonic()
            if left <= 0:
                return
            wait(min(left, 0.05))
            spin(0)  # runs pending signal handlers: the kernel's timeout raises here

    sleep.__doc__ = spin.__doc__
    time.sleep = sleep


def boot(source, kernel_path, offline_json, config, read, write, arm, disarm, wait):
    import json

    _sleep_without_spinning(wait)

    sys.meta_path.insert(0, _Unavailable(json.loads(offline_json)))
    for name in list(sys.modules):
        if name.partition(".")[0] in _Unavailable.no_processes:
            del sys.modules[name]
    kernel = types.ModuleType("_rlmrt_kernel")
    kernel.__file__ = kernel_path
    sys.modules[kernel.__name__] = kernel
    exec(compile(source, kernel_path, "exec"), kernel.__dict__)
    kernel.serve_embedded(config, read, write, arm, disarm)


boot
`);

const kernelSource = fs.readFileSync(kernelPath, "utf8");
try {
  boot(
    kernelSource,
    kernelPath,
    JSON.stringify(offline),
    configText,
    readFrame,
    writeFrame,
    armTimer,
    disarmTimer,
    waitSeconds,
  );
} catch (error) {
  const text = String(error?.message ?? error);
  const code = /SystemExit: (\d+)/.exec(text);
  if (code) exit(Number(code[1]));
  stderr.writeSync(encoder.encode(`runner: the kernel failed: ${text.slice(-2000)}\n`));
  exit(1);
}
exit(0);
