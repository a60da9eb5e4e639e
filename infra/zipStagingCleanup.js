// A serverless plugin that removes the folders serverless-esbuild 1.57.2 leaves in the system's temp
// folder. Its zip() copies each function into `<tmpdir>/<function>-<pid>-<ms>-<8 hex>` and then removes
// that folder without `recursive`, which fails on a folder that is not empty, and swallows the error
// (floydspace/serverless-esbuild#589): every `package` or `deploy` left 9 folders, about 30 MB.
// Only this process's folders are removed: their names carry its pid.

const { readdirSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

class ZipStagingCleanup {
  constructor(serverless) {
    const names = new Set([serverless.service.service, ...serverless.service.getAllFunctions()]);
    const cleanup = () => {
      const staging = new RegExp(`^(.+)-${process.pid}-\\d+-[0-9a-f]{8}$`);
      for (const entry of readdirSync(tmpdir())) {
        const match = staging.exec(entry);
        if (match && names.has(match[1])) rmSync(join(tmpdir(), entry), { recursive: true, force: true });
      }
    };
    this.hooks = {
      'after:package:createDeploymentArtifacts': cleanup,
      'after:deploy:function:packageFunction': cleanup,
    };
  }
}

module.exports = ZipStagingCleanup;
