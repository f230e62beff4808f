/**
 * Configuration for Playwright using default from @jupyterlab/galata.
 *
 * Browsers are never downloaded: the tests drive Debian's Chromium
 * (apt-get install chromium) with PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1.
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

// GALATA_PORT runs the seeded server on another port (two suites side by side);
// Galata's fixtures find it through TARGET_URL.
const port = process.env.GALATA_PORT || '8888';
process.env.TARGET_URL = process.env.TARGET_URL || `http://localhost:${port}`;

module.exports = {
  ...baseConfig,
  // One browser at a time: the suite shares one seeded server, and CI has two cores.
  workers: 1,
  retries: process.env.CI ? 1 : 0,
  use: {
    ...baseConfig.use,
    // Video recording needs Playwright's own ffmpeg download; traces do not.
    video: 'off',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        // Let the benchmark measure memory (after a collection) precisely.
        '--js-flags=--expose-gc',
        '--enable-precise-memory-info'
      ]
    }
  },
  webServer: {
    command: `jlpm start --ServerApp.port=${port}`,
    url: `http://localhost:${port}/lab`,
    timeout: 120 * 1000,
    reuseExistingServer: !process.env.CI
  }
};
