// Reference token endpoint on the official livekit-server-sdk: the benchmark anchor for
// token_server. Same work per request: API-key check (sha256 + map lookup), body cap and
// JSON parse, identity = principal, agent allow-list, fresh room name, least-privilege
// grants, TTL, and the agent dispatch in roomConfig.
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { AccessToken, RoomAgentDispatch, RoomConfiguration, TrackSource } from 'livekit-server-sdk';

const env = process.env;
const port = Number(env.PORT ?? 8090);
const livekitUrl = env.LIVEKIT_URL;
const apiKey = env.LIVEKIT_API_KEY;
const apiSecret = env.LIVEKIT_API_SECRET;
const ttl = Number(env.TOKEN_TTL_SECONDS ?? 900);
const principals = new Map(Object.entries(JSON.parse(env.TOKEN_API_KEYS ?? '{}')));
const allowedAgents = (env.TOKEN_ALLOWED_AGENTS ?? 'voice-agent').split(',');
const MAX_BODY = 16 * 1024;
const ROOM_NAME = /^[A-Za-z0-9_.:-]{1,128}$/;

function reply(res, status, body) {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

function fail(res, status, code, message) {
  reply(res, status, { error: { code, message } });
}

async function mint(req, res, body) {
  const auth = req.headers.authorization ?? '';
  if (!auth.startsWith('Bearer ')) return fail(res, 401, 'unauthenticated', 'missing key');
  const digest = createHash('sha256').update(auth.slice(7).trim()).digest('hex');
  const principal = principals.get(digest);
  if (!principal) return fail(res, 401, 'unauthenticated', 'invalid key');
  let request = {};
  if (body.length) {
    try {
      request = JSON.parse(body);
    } catch {
      return fail(res, 400, 'invalid_json', 'body is not JSON');
    }
  }
  if (request.participant_identity && request.participant_identity !== principal.sub) {
    return fail(res, 403, 'identity_mismatch', 'identity must be your subject');
  }
  let room = request.room_name;
  if (room && !ROOM_NAME.test(room)) return fail(res, 422, 'invalid_field', 'room_name');
  room = room || `room-${randomBytes(8).toString('hex')}`;
  const requested = request.room_config?.agents ?? [{}];
  const agents = [];
  for (const agent of requested) {
    const agentName = agent.agent_name || allowedAgents[0];
    if (!allowedAgents.includes(agentName)) {
      return fail(res, 403, 'agent_not_allowed', 'agent not allowed');
    }
    const metadata = agent.metadata ? JSON.parse(agent.metadata) : {};
    agents.push(
      new RoomAgentDispatch({ agentName, metadata: JSON.stringify({ ...metadata, ...principal.context }) }),
    );
  }
  const name = request.participant_name || principal.sub;
  const token = new AccessToken(apiKey, apiSecret, { identity: principal.sub, name, ttl });
  token.addGrant({
    room,
    roomJoin: true,
    canPublish: true,
    canSubscribe: true,
    canPublishData: true,
    canUpdateOwnMetadata: false,
    canPublishSources: [TrackSource.MICROPHONE],
  });
  token.roomConfig = new RoomConfiguration({ agents });
  const participantToken = await token.toJwt();
  reply(res, 201, { server_url: livekitUrl, participant_token: participantToken, room_name: room, participant_name: name });
}

const server = createServer((req, res) => {
  if (req.url !== '/token') return fail(res, 404, 'not_found', 'no such route');
  if (req.method !== 'POST') return fail(res, 405, 'method_not_allowed', 'use POST');
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) {
      fail(res, 413, 'body_too_large', 'too large');
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    mint(req, res, Buffer.concat(chunks).toString('utf8')).catch((err) => {
      console.error(err);
      fail(res, 500, 'internal', 'internal error');
    });
  });
});
server.keepAliveTimeout = 5000;
server.listen(port, '127.0.0.1', () => console.log(`node reference on http://127.0.0.1:${port}`));
