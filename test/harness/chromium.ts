/** The explorer test's browser: Debian's Chromium (apt-get install chromium), driven by playwright-core. */
export const CHROMIUM_LEG = 'chromium';
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
