// Bundles what tsc compiled into the two entry points naq ships:
//
// 1. The CLI (dist/cli/main.js) as one CommonJS file, dist/cli-bundle/naq-<hash>.cjs, that
//    bin/naq compiles through vm.Script with a V8 code cache (see bin/naq).
// 2. The library (dist/index.js) as one ES module, dist/lib/naq.js, the package's import
//    entry. zod and croner are inlined and tree-shaken: `zod/mini` as a package loads all of
//    zod, its 50 locales included (~3 MB of heap in every process that imports naq, and
//    a larger young generation from the burst of objects at start-up); bundled, only the
//    schema builders config/schema.ts uses remain. A worker process at 500 jobs/s: 81 -> 69
//    MiB RSS. nats.js stays external (an app's own nats.js objects and errors must be the
//    same classes as naq's), as do what naq imports lazily (cosmiconfig, prom-client).
//
// V8 loses the dynamic-import hook of a script compiled from a code cache ("A dynamic import
// callback was not specified"), so every import() esbuild cannot bundle (handler modules,
// .js/.mjs config files loaded by cosmiconfig, the optional `typescript`) is rewritten to
// call __naqImport, a function bin/naq passes in from its own ES module. The build fails if
// one is left.
//   node scripts/bundle.mjs
import { readFile, readdir, rm } from "node:fs/promises";
import { build } from "esbuild";

const OUT = "dist/cli-bundle";
/** import( not followed by a relative path: what esbuild leaves as a real import(). */
const UNBUNDLED_IMPORT = /(?<![\w$.])import\((?!\s*["'`]\.{1,2}\/)/g;

const rewriteImports = {
  name: "naq-dynamic-import",
  setup(b) {
    b.onLoad({ filter: /[\\/](cosmiconfig[\\/]dist[\\/]loaders|dist[\\/]worker[\\/]handlers)\.js$/ }, async (args) => ({
      contents: (await readFile(args.path, "utf8")).replace(UNBUNDLED_IMPORT, "__naqImport("),
      loader: "js",
    }));
  },
};

/**
 * commander loads node:child_process (and with it dgram) on start, for git-style external
 * subcommands naq does not have: load it only if commander ever spawns one.
 */
const CHILD_PROCESS = "const childProcess = require('node:child_process');";
const lazyChildProcess = {
  name: "naq-lazy-child-process",
  setup(b) {
    b.onLoad({ filter: /[\\/]commander[\\/]lib[\\/]command\.js$/ }, async (args) => {
      const text = await readFile(args.path, "utf8");
      if (!text.includes(CHILD_PROCESS)) console.warn(`scripts/bundle.mjs: "${CHILD_PROCESS}" not found in ${args.path}; commander loads node:child_process at start`);
      return { contents: text.replace(CHILD_PROCESS, "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };"), loader: "js" };
    });
  },
};

await rm(OUT, { recursive: true, force: true });
await build({
  entryPoints: ["dist/cli/main.js"],
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  outdir: OUT,
  entryNames: "naq-[hash]",
  outExtension: { ".js": ".cjs" },
  external: ["typescript"],
  minify: true,
  legalComments: "none",
  logLevel: "warning",
  plugins: [rewriteImports, lazyChildProcess],
});

const LIB_OUT = "dist/lib";
await rm(LIB_OUT, { recursive: true, force: true });
await build({
  entryPoints: { naq: "dist/index.js" },
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  outdir: LIB_OUT,
  external: ["@nats-io/*", "cosmiconfig", "prom-client", "typescript"],
  // Not minified: an app's stack traces through naq stay readable.
  minify: false,
  legalComments: "none",
  logLevel: "warning",
});

const files = (await readdir(OUT)).filter((f) => f.endsWith(".cjs"));
if (files.length !== 1) throw new Error(`expected one bundle in ${OUT}, found ${files.join(", ") || "none"}`);
const left = (await readFile(`${OUT}/${files[0]}`, "utf8")).match(/(?<![\w$.])import\(.{0,40}/g);
if (left) throw new Error(`${OUT}/${files[0]}: import() the code cache would break; route it through __naqImport (scripts/bundle.mjs): ${left.join(" | ")}`);
