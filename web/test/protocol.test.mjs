// Unit tests of the page's protocol module. The payload tests read WEB_PROTOCOL_FIXTURES: replies
// and events the Python side produced and checked against schemas/*.json
// (tests/web/test_web_protocol.py writes them and runs this file).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  CommandLineError,
  ProtocolError,
  Transcript,
  buildCommand,
  classifyLine,
  describeConnectError,
  describeEvent,
  describeReply,
  describeTokenError,
  parseEvent,
  parseReply,
  shellWords,
} from '../src/protocol.js';

const fixturesPath = process.env.WEB_PROTOCOL_FIXTURES;
const fixtures = fixturesPath ? JSON.parse(readFileSync(fixturesPath, 'utf8')) : null;
const needsFixtures = fixtures ? {} : { skip: 'WEB_PROTOCOL_FIXTURES is not set: run `uv run pytest tests/web`' };

function reply(name) {
  const found = fixtures.replies[name];
  assert.ok(found, `no reply fixture ${name}`);
  return parseReply(JSON.stringify(found));
}

function event(name) {
  const found = fixtures.events[name];
  assert.ok(found, `no event fixture ${name}`);
  return parseEvent(JSON.stringify(found));
}

test('every reply and event the agent produces is read', needsFixtures, () => {
  for (const [name, payload] of Object.entries(fixtures.replies)) {
    const parsed = parseReply(JSON.stringify(payload));
    assert.equal(parsed.id, payload.id, name);
    const described = describeReply(parsed);
    assert.ok(described.lines.length > 0 && described.lines.every((line) => typeof line === 'string' && line.length), name);
    assert.ok(!described.lines.join('\n').includes('undefined'), `${name}: ${described.lines}`);
  }
  for (const [name, payload] of Object.entries(fixtures.events)) {
    const described = describeEvent(parseEvent(JSON.stringify(payload)));
    assert.ok(described.text && !described.text.includes('undefined'), `${name}: ${described.text}`);
  }
});

test('help lists each command with its usage', needsFixtures, () => {
  const described = describeReply(reply('help'));
  assert.equal(described.ok, true);
  assert.equal(described.title, '/help');
  assert.ok(described.lines.some((line) => line.startsWith('/search <query> — ')), described.lines.join('\n'));
});

test('search results show title, source and preview', needsFixtures, () => {
  const parsed = reply('search');
  const described = describeReply(parsed);
  const first = parsed.data.results[0];
  assert.ok(described.lines[0].includes(first.title) && described.lines[0].includes(first.source), described.lines[0]);
  assert.ok(described.lines[0].endsWith(first.preview));
});

test('an error reply names the code, the message and the usage', needsFixtures, () => {
  const described = describeReply(reply('invalid_arguments'));
  assert.equal(described.ok, false);
  assert.equal(described.title, '/search failed (invalid_arguments)');
  assert.deepEqual(described.lines, ['/search: query is required', 'Usage: /search <query>']);
  const unknown = describeReply(reply('unknown_command'));
  assert.equal(unknown.title, 'command failed (unknown_command)');
});

test('a rate-limited reply says when to try again', needsFixtures, () => {
  const described = describeReply(reply('rate_limited'));
  assert.match(described.lines.at(-1), /^Try again in \d+ s\.$/);
});

test('tool progress pairs start and finish by call id', needsFixtures, () => {
  const started = describeEvent(event('tool_started'));
  const finished = describeEvent(event('tool_finished'));
  assert.equal(started.kind, 'tool');
  assert.equal(started.running, true);
  assert.equal(started.key, finished.key);
  assert.equal(finished.running, false);
  assert.match(finished.text, /done in \d+\.\d\d s$/);
});

test('sources keep the order and the file of each passage', needsFixtures, () => {
  const raw = fixtures.events.sources.data.sources;
  const described = describeEvent(event('sources'));
  assert.equal(described.kind, 'sources');
  assert.deepEqual(described.sources.map((s) => s.title), raw.map((s) => s.title));
  assert.ok(described.sources[0].where.startsWith(raw[0].source));
});

test('the welcome event carries the commands for the chat box', needsFixtures, () => {
  const described = describeEvent(event('welcome'));
  assert.equal(described.kind, 'welcome');
  assert.ok(described.commands.some((c) => c.name === 'help'));
});

test('an agent error event is shown as an error', needsFixtures, () => {
  const described = describeEvent(event('error'));
  assert.equal(described.kind, 'error');
  assert.ok(described.text.startsWith(fixtures.events.error.data.message));
});

test('payloads that break the protocol are refused with a reason', () => {
  assert.throws(() => parseEvent('not json'), ProtocolError);
  assert.throws(() => parseEvent('{"v": 2, "type": "welcome", "ts": 1, "data": {}}'), /version 2/);
  assert.throws(() => parseEvent('{"v": 1, "type": "party", "ts": 1, "data": {}}'), /unknown agent event/);
  assert.throws(() => parseReply('{"v": 1, "id": "a", "ok": false, "command": null}'), /code or message/);
  assert.throws(() => parseReply('[]'), /not a JSON object/);
});

test('chat lines, escaped slashes and commands are told apart', () => {
  assert.deepEqual(classifyLine('  hello '), { kind: 'chat', text: 'hello' });
  assert.deepEqual(classifyLine('//text'), { kind: 'chat', text: '//text' });
  assert.deepEqual(classifyLine('/help'), { kind: 'command', text: '/help' });
  assert.deepEqual(classifyLine('   '), { kind: 'empty' });
});

test('command lines become envelopes; unreadable ones say why', () => {
  assert.deepEqual(buildCommand('/SEARCH  wifi password ', 'r1'), { v: 1, id: 'r1', command: 'search', args: { query: 'wifi password' } });
  assert.deepEqual(buildCommand('/nope a b', 'r2'), { v: 1, id: 'r2', command: 'nope' });
  assert.throws(() => buildCommand('/mode text voice', 'r3'), (e) => e instanceof CommandLineError && e.message === '/mode: expected one word, got 2');
  assert.throws(() => buildCommand('/', 'r4'), CommandLineError);
  assert.throws(() => buildCommand('/Ünïcode', 'r5'), /not a command name/);
});

test('shell words follow POSIX quoting', () => {
  assert.deepEqual(shellWords(`document_qa question="where can I park" x='a b' c\\ d`), ['document_qa', 'question=where can I park', 'x=a b', 'c d']);
  assert.deepEqual(shellWords('a "b\\"c" "d\\e"'), ['a', 'b"c', 'd\\e']);
  assert.deepEqual(shellWords('""'), ['']);
  assert.throws(() => shellWords('a "b'), /No closing quotation/);
});

test('the transcript keeps one entry per segment', () => {
  const transcript = new Transcript();
  transcript.update({ segmentId: 'SG_1', streamId: 's1', speaker: 'you', text: 'what is', final: false });
  transcript.update({ segmentId: 'SG_2', streamId: 's2', speaker: 'agent', text: 'Hel', final: false });
  transcript.update({ segmentId: 'SG_1', streamId: 's3', speaker: 'you', text: 'what is the wifi', final: true });
  transcript.update({ segmentId: 'SG_2', streamId: 's2', speaker: 'agent', text: 'Hello!', final: true });
  assert.deepEqual(
    transcript.entries().map((e) => [e.speaker, e.text, e.final]),
    [['you', 'what is the wifi', true], ['agent', 'Hello!', true]],
  );
});

test('token failures become sentences a person can act on', () => {
  const refused = describeTokenError(
    new Error('Error generating token from endpoint http://127.0.0.1:8080/token: received 401 / {"error":{"code":"unauthenticated","message":"the API key is not valid"}}'),
  );
  assert.equal(refused.code, 'unauthenticated');
  assert.equal(refused.message, 'The token server refused the token (401 unauthenticated): the API key is not valid. Check the API key.');
  const noDevMode = describeTokenError(new Error('x: received 401 / {"error":{"code":"unauthenticated","message":"send Authorization: Bearer <API key or JWT>"}}'), { withKey: false });
  assert.match(noDevMode.message, /not in dev mode: enter an API key\.$/);
  const limited = describeTokenError(new Error('x: received 429 / not json'));
  assert.equal(limited.message, 'The token server refused the token (429 http_429): not json. Wait a moment and try again.');
  const down = describeTokenError(new TypeError('Failed to fetch'));
  assert.equal(down.code, 'token_server_unreachable');
  assert.match(down.message, /python -m token_server/);
  const noServer = describeConnectError(new Error('could not establish signal connection'), 'ws://127.0.0.1:9');
  assert.equal(noServer.code, 'livekit_unreachable');
  assert.match(noServer.message, /^No LiveKit server answered at ws:\/\/127\.0\.0\.1:9 /);
  const refusedByLiveKit = Object.assign(new Error('invalid token'), { status: 401 });
  const wrongKeys = describeConnectError(refusedByLiveKit, 'ws://localhost:7880');
  assert.equal(wrongKeys.code, 'livekit_refused');
  assert.match(wrongKeys.message, /refused the token \(401\): invalid token\. Do LIVEKIT_API_KEY\/LIVEKIT_API_SECRET match/);
});
