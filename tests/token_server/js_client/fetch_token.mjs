// Fetches a token the way a web app does: livekit-client's TokenSource.endpoint.
// usage: node fetch_token.mjs <endpoint-url> <api-key> <agent-name> <agent-metadata> <participant-name>
import { TokenSource } from 'livekit-client';

const [url, apiKey, agentName, agentMetadata, participantName] = process.argv.slice(2);
const source = TokenSource.endpoint(url, { headers: { Authorization: `Bearer ${apiKey}` } });
try {
  const response = await source.fetch({ agentName, agentMetadata, participantName });
  process.stdout.write(JSON.stringify(response));
} catch (error) {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
