import { describeReact } from './react-suite.js';

/** @tickwire/react in headless Chromium with the React of this repository (19): see react-suite.ts. */
describeReact(19);
