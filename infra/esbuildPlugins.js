// esbuild plugins for serverless-esbuild (serverless.yml: custom.esbuild.plugins).

const { writeFileSync } = require('node:fs');
const { basename, join } = require('node:path');

/**
 * `serverless invoke local` loads a handler with require(), trying `.js` then `.cjs`: it cannot load
 * our ES module entries (`.mjs`, awaiting the stage secret at the top level). Beside each entry this
 * writes a CommonJS shim that imports it. Only the local build has it: the zips take `*.mjs` only, and
 * Lambda runs the module itself.
 */
const invokeLocalShim = {
  name: 'invoke-local-shim',
  setup(build) {
    build.onEnd((result) => {
      const { outdir, entryPoints } = build.initialOptions;
      if (result.errors.length > 0 || !outdir || !Array.isArray(entryPoints)) return;
      for (const entry of entryPoints) {
        const name = basename(String(entry)).replace(/\.[^.]+$/, '');
        writeFileSync(
          join(outdir, `${name}.cjs`),
          `// serverless invoke local only: see infra/esbuildPlugins.js\nexports.handler = async (event, context) => (await import('./${name}.mjs')).handler(event, context);\n`,
        );
      }
    });
  },
};

module.exports = [invokeLocalShim];
