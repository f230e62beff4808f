/**
 * Jest configuration, as in jupyterlab/extension-template: @jupyterlab/testing's
 * preset (ts-jest, a jsdom environment with fetch), tests in src/__tests__/.
 */
const jestJupyterLab = require('@jupyterlab/testing/lib/jest-config');

// Local-time tests run in a zone with a half-hour offset (and no DST), so a
// formatter that ignores the zone or its minutes fails. Workers inherit this.
process.env.TZ = 'Asia/Kolkata';

const esModules = [
  '@codemirror',
  '@jupyter/react-components',
  '@jupyter/web-components',
  '@jupyter/ydoc',
  '@jupyterlab/',
  '@marijn',
  '@microsoft',
  'color',
  'exenv-es6',
  'lib0',
  'marked',
  'nanoid',
  'vscode-ws-jsonrpc',
  'y-protocols',
  'y-websocket',
  'yjs'
].join('|');

const baseConfig = jestJupyterLab(__dirname);

module.exports = {
  ...baseConfig,
  automock: false,
  roots: ['<rootDir>/src'],
  modulePathIgnorePatterns: [
    '<rootDir>/.venv',
    '<rootDir>/infinstor_jlab/labextension',
    '<rootDir>/ui-tests',
    '<rootDir>/lib'
  ],
  collectCoverageFrom: [
    'src/**/*.{ts,tsx}',
    '!src/**/*.d.ts',
    '!src/**/.ipynb_checkpoints/*'
  ],
  coverageReporters: ['lcov', 'text-summary'],
  reporters: ['default'],
  testRegex: 'src/.*/.*.spec.ts[x]?$',
  transformIgnorePatterns: [`/node_modules/(?!${esModules}).+`]
};
