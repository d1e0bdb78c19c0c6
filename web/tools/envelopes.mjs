// Prints the envelope the page builds for each slash line (a JSON array on stdin), or the
// page's reason for not sending it, so tests/web can compare them with the agent's parser.
import { readFileSync } from 'node:fs';
import { CommandLineError, buildCommand } from '../src/protocol.js';

const lines = JSON.parse(readFileSync(0, 'utf8'));
const results = lines.map((line, index) => {
  try {
    return { line, envelope: buildCommand(line, `t-${index}`) };
  } catch (error) {
    if (!(error instanceof CommandLineError)) throw error;
    return { line, error: error.message };
  }
});
process.stdout.write(JSON.stringify(results));
