// A serverless plugin: what a package or a deploy refuses before it starts.
// - Settings the functions would refuse at their cold start (a SHOP_WEBHOOK_URL over http, a missing
//   NOTIFY_BASE_URL, …): checked by the functions' own loadConfig (lib/config.ts) before anything is
//   built, so a typo fails the command, not every function of a live stage.
// - DYNAMODB_ENDPOINT comes from the shell (the local stack sets it); left over in a deploying shell,
//   every function would send its reads and writes there, and none would reach the table.
class DeployGuards {
  constructor(serverless) {
    const environment = () => serverless.service.provider.environment ?? {};
    const guard = () => refuseLocalEndpoint(environment());
    const settings = () => refuseBadSettings(environment());
    this.hooks = {
      'before:package:initialize': settings,
      'before:deploy:function:initialize': settings,
      'before:deploy:deploy': guard,
      'before:deploy:function:deploy': guard,
    };
  }
}

function refuseLocalEndpoint(environment) {
  if (environment.DYNAMODB_ENDPOINT) throw new Error('DYNAMODB_ENDPOINT is set in this shell (the local database): unset it, then deploy');
}

/** Throws what loadConfig throws: the names of the bad settings, never their values. */
function refuseBadSettings(environment) {
  const { loadConfig } = requireTypeScript('../lib/config.ts');
  const asText = Object.fromEntries(
    Object.entries(environment).map(([name, value]) => [name, value === undefined || value === null ? undefined : String(value)]),
  );
  try {
    loadConfig(asText);
  } catch (error) {
    throw new Error(`the functions would refuse these settings at their cold start: ${error.message}`);
  }
}

/**
 * serverless runs on plain Node: the module is bundled by esbuild in memory (nothing written, no hook
 * left on require) and run as a module of its own.
 */
function requireTypeScript(path) {
  const Module = require('node:module');
  const { dirname, resolve } = require('node:path');
  const file = resolve(__dirname, path);
  const [bundle] = require('esbuild').buildSync({ entryPoints: [file], bundle: true, platform: 'node', format: 'cjs', write: false }).outputFiles;
  const loaded = new Module(file, module);
  loaded.filename = file;
  loaded.paths = Module._nodeModulePaths(dirname(file));
  loaded._compile(bundle.text, file);
  return loaded.exports;
}

module.exports = DeployGuards;
module.exports.refuseLocalEndpoint = refuseLocalEndpoint;
module.exports.refuseBadSettings = refuseBadSettings;
