// The page's side of the agent's data-channel protocol (docs/data-channel.md, schemas/*.json):
// reading events and replies, building command envelopes from slash lines, and turning
// token-server and connection failures into sentences. No DOM and no livekit-client here,
// so `node --test` can check it on the payloads the Python side produces.

export const PROTOCOL_VERSION = 1;
export const TOPICS = Object.freeze({
  chat: 'lk.chat',
  command: 'agent.command',
  reply: 'agent.reply',
  event: 'agent.event',
  transcription: 'lk.transcription',
});
export const AGENT_STATE_ATTRIBUTE = 'lk.agent.state';

const EVENT_TYPES = new Set([
  'welcome',
  'tool_started',
  'tool_finished',
  'sources',
  'workflow_progress',
  'reply_mode',
  'thread_reset',
  'error',
]);
const COMMAND_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
const MAX_ID_CHARS = 128;

function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readJson(text, what) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProtocolError(`${what} is not JSON`);
  }
  if (!isObject(value)) throw new ProtocolError(`${what} is not a JSON object`);
  if (value.v !== PROTOCOL_VERSION) throw new ProtocolError(`${what} has protocol version ${JSON.stringify(value.v)}, expected ${PROTOCOL_VERSION}`);
  return value;
}

export class ProtocolError extends Error {}

/** An `agent.event` payload → `{type, ts, data}`; ProtocolError for anything else. */
export function parseEvent(text) {
  const event = readJson(text, 'agent event');
  if (!EVENT_TYPES.has(event.type)) throw new ProtocolError(`unknown agent event type ${JSON.stringify(event.type)}`);
  if (typeof event.ts !== 'number' || !isObject(event.data)) throw new ProtocolError(`agent event ${event.type} lacks ts or data`);
  return { type: event.type, ts: event.ts, data: event.data };
}

/** An `agent.reply` payload → `{id, ok, command, data | error}`; ProtocolError otherwise. */
export function parseReply(text) {
  const reply = readJson(text, 'command reply');
  if (typeof reply.ok !== 'boolean') throw new ProtocolError('command reply lacks ok');
  if (reply.id !== null && typeof reply.id !== 'string') throw new ProtocolError('command reply has no usable id');
  if (reply.ok) {
    if (!isObject(reply.data)) throw new ProtocolError('command reply lacks data');
    return { id: reply.id, ok: true, command: reply.command, data: reply.data };
  }
  if (!isObject(reply.error) || typeof reply.error.code !== 'string' || typeof reply.error.message !== 'string') {
    throw new ProtocolError('command error reply lacks code or message');
  }
  return { id: reply.id, ok: false, command: reply.command ?? null, error: reply.error };
}

// -- slash commands -------------------------------------------------------------------------

export class CommandLineError extends Error {}

/** What to do with a line typed in the chat box: a chat message, or a command envelope. */
export function classifyLine(line) {
  const text = line.trim();
  if (!text) return { kind: 'empty' };
  // `//text` is the escaped literal: the agent unescapes it, so it goes on lk.chat unchanged
  if (!text.startsWith('/') || text.startsWith('//')) return { kind: 'chat', text };
  return { kind: 'command', text };
}

function splitHead(text) {
  const match = /^\/(\S*)\s*([\s\S]*)$/.exec(text);
  return { name: (match?.[1] ?? '').toLowerCase(), rest: (match?.[2] ?? '').trim() };
}

function freeText(field) {
  return (rest) => (rest ? { [field]: rest } : {});
}

function oneWord(field) {
  return (rest) => {
    const words = rest.split(/\s+/).filter(Boolean);
    if (words.length > 1) throw new CommandLineError(`expected one word, got ${words.length}`);
    return words.length ? { [field]: words[0] } : {};
  };
}

function noArgs(rest) {
  if (rest) throw new CommandLineError('this command takes no arguments');
  return {};
}

function resetArgs(rest) {
  const word = rest.toLowerCase();
  if (!word) return {};
  if (word === 'confirm' || word === 'yes') return { confirm: true };
  throw new CommandLineError("the only argument is 'confirm'");
}

/** Shell-like words, as Python's shlex.split in POSIX mode reads them (quotes, backslashes). */
export function shellWords(text) {
  const words = [];
  let word = null;
  let quote = null;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (quote === "'") {
      if (ch === "'") quote = null;
      else word += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = null;
      else if (ch === '\\' && i + 1 < text.length && (text[i + 1] === '\\' || text[i + 1] === '"')) word += text[++i];
      else word += ch;
    } else if (' \t\r\n'.includes(ch)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word ??= '';
      if (ch === "'" || ch === '"') quote = ch;
      else if (ch === '\\') {
        if (i + 1 >= text.length) throw new CommandLineError('could not read the arguments (No escaped character)');
        word += text[++i];
      } else word += ch;
    }
  }
  if (quote !== null) throw new CommandLineError('could not read the arguments (No closing quotation)');
  if (word !== null) words.push(word);
  return words;
}

function workflowArgs(rest) {
  const bare = [];
  const pairs = {};
  for (const word of shellWords(rest)) {
    const at = word.indexOf('=');
    if (at < 0) {
      bare.push(word);
      continue;
    }
    const key = word.slice(0, at);
    if (!key) throw new CommandLineError(`'${word}' needs a name before '='`);
    if (Object.hasOwn(pairs, key)) throw new CommandLineError(`${key} is given twice`);
    pairs[key] = word.slice(at + 1);
  }
  if (bare.length > 1) {
    throw new CommandLineError(
      `expected one workflow name and key=value parameters, got ${bare.length} words (quote values with spaces: question="where can I park")`,
    );
  }
  const args = {};
  if (bare.length) args.name = bare[0];
  if (Object.hasOwn(pairs, 'answer')) {
    args.answer = pairs.answer;
    delete pairs.answer;
  }
  if (Object.keys(pairs).length) args.params = pairs;
  return args;
}

// How each command reads the rest of its line: the same readers as the agent's `from_text`.
const READERS = {
  help: oneWord('command'),
  search: freeText('query'),
  embed: freeText('text'),
  analyze: freeText('text'),
  workflow: workflowArgs,
  status: noArgs,
  reset: resetArgs,
  mode: oneWord('mode'),
};

/**
 * A slash line → the `agent.command` envelope `{v, id, command, args}`.
 * Unknown command names are sent as they are: the agent answers `unknown_command` with the
 * list of commands the sender may use. Lines the page cannot read throw CommandLineError.
 */
export function buildCommand(line, id) {
  if (typeof id !== 'string' || id.length < 1 || id.length > MAX_ID_CHARS) throw new Error('request id must be 1-128 characters');
  const { name, rest } = splitHead(line.trim());
  if (!name) throw new CommandLineError('type a command name after /, for example /help');
  if (!COMMAND_NAME.test(name)) throw new CommandLineError(`/${name.slice(0, 40)} is not a command name`);
  const reader = READERS[name];
  if (reader === undefined) return { v: PROTOCOL_VERSION, id, command: name };
  try {
    return { v: PROTOCOL_VERSION, id, command: name, args: reader(rest) };
  } catch (error) {
    if (error instanceof CommandLineError) throw new CommandLineError(`/${name}: ${error.message}`);
    throw error;
  }
}

// -- readable text for replies and events ----------------------------------------------------

function score(value) {
  return typeof value === 'number' ? value.toFixed(2) : '?';
}

function describeData(command, data) {
  switch (command) {
    case 'help':
      return data.commands.map((c) => `${c.usage} — ${c.summary}${c.access === 'staff' ? ' (staff)' : ''}`);
    case 'search':
      if (!data.results.length) return [`Nothing relevant found for “${data.query}”.`];
      return data.results.map((r) => `${r.title}${r.section ? ` › ${r.section}` : ''} (${r.source}, chunk ${r.chunk}, score ${score(r.score)}): ${r.preview}`);
    case 'embed':
      return [
        `${data.model}: ${data.dimensions} dimensions, norm ${data.norm === null ? 'n/a' : score(data.norm)}`,
        ...data.nearest.map((n) => `${score(n.score)} ${n.title} (${n.source}): ${n.preview}`),
      ];
    case 'analyze':
      return [`Summary: ${data.summary}`, ...data.key_points.map((p) => `• ${p}`), `Sentiment: ${data.sentiment}`];
    case 'workflow':
      if (Array.isArray(data.workflows)) {
        if (!data.workflows.length) return ['No workflows are available.'];
        return data.workflows.map((w) => `${w.name} ${w.params.map((p) => (p.required ? `${p.name}=…` : `[${p.name}=…]`)).join(' ')}`.trim() + ` — ${w.description}`);
      }
      return [`${data.workflow} (${data.status}): ${data.text}`];
    case 'status': {
      const lines = [
        `agent ${data.agent_state}, caller ${data.user_state}, conversation ${data.conversation_id}`,
        `turns ${data.turns}, resets ${data.resets}, reply mode ${data.reply_mode}`,
        `providers: ${Object.entries(data.providers).map(([k, v]) => `${k}=${v}`).join(', ')}`,
      ];
      const latency = data.last_turn_latency;
      if (latency) lines.push(`last turn: ${score(latency.total_time)} s total, ${latency.tool_calls} tool call(s)`);
      return lines;
    }
    case 'reset':
      return data.status === 'reset'
        ? [`New conversation ${data.conversation_id} started.`]
        : [`Send /reset confirm within ${Math.round(data.expires_in_s ?? 60)} s to start a new conversation.`];
    case 'mode':
      return [`Typed messages are answered by ${data.mode}${data.changed ? ' (changed)' : ''}.`];
    default:
      return [JSON.stringify(data)];
  }
}

/** A parsed reply → `{ok, title, lines}` for the transcript. */
export function describeReply(reply) {
  const title = reply.command ? `/${reply.command}` : 'command';
  if (reply.ok) return { ok: true, title, lines: describeData(reply.command, reply.data) };
  const { code, message, usage, retry_after_s: retry } = reply.error;
  const lines = [message];
  if (usage) lines.push(`Usage: ${usage}`);
  if (typeof retry === 'number') lines.push(`Try again in ${Math.ceil(retry)} s.`);
  return { ok: false, title: `${title} failed (${code})`, lines };
}

/** A parsed event → what the activity panel shows: `{kind, key?, text, sources?}`. */
export function describeEvent(event) {
  const d = event.data;
  switch (event.type) {
    case 'welcome':
      return { kind: 'welcome', text: `${d.agent ?? 'The agent'} joined; replies to typed messages: ${d.reply_mode}.`, commands: d.commands };
    case 'tool_started':
      return { kind: 'tool', key: d.call_id, running: true, text: `${d.name}(${d.args_summary}) …` };
    case 'tool_finished':
      return {
        kind: 'tool',
        key: d.call_id,
        running: false,
        ok: d.ok,
        text: `${d.name} ${d.ok ? 'done' : `failed: ${d.error ?? 'error'}`} in ${d.duration_s.toFixed(2)} s`,
      };
    case 'sources':
      return {
        kind: 'sources',
        text: `${d.sources.length} source(s)`,
        sources: d.sources.map((s) => ({ title: s.title, where: `${s.source}${s.chunk === null ? '' : ` #${s.chunk}`}`, score: score(s.score), preview: s.preview })),
      };
    case 'workflow_progress':
      return { kind: 'workflow', key: d.run_id, text: `${d.workflow}: ${d.status}${d.step ? ` (${d.step})` : ''}${d.message ? ` — ${d.message}` : ''}` };
    case 'reply_mode':
      return { kind: 'info', text: `Typed messages are now answered by ${d.mode}.` };
    case 'thread_reset':
      return { kind: 'info', text: `New conversation ${d.conversation_id} (was ${d.previous_conversation_id}).` };
    case 'error':
      return { kind: 'error', text: `${d.message}${d.source ? ` (${d.source})` : ''}${d.recoverable ? '' : ' This part of the call cannot recover.'}` };
    default:
      return { kind: 'info', text: event.type };
  }
}

// -- transcript ------------------------------------------------------------------------------

/**
 * Live transcript on `lk.transcription`: one entry per segment. A segment's text is the text
 * of the latest stream that carried it: the agent streams deltas into one stream, while
 * interim user transcripts arrive as new streams with the whole text so far.
 */
export class Transcript {
  constructor() {
    this.segments = new Map();
  }

  /** Record `text` (all of one stream so far) for a segment; returns the entry. */
  update({ segmentId, streamId, speaker, text, final }) {
    const key = segmentId || streamId;
    let entry = this.segments.get(key);
    if (!entry) {
      entry = { key, speaker, text: '', final: false, order: this.segments.size };
      this.segments.set(key, entry);
    }
    entry.text = text;
    entry.final = entry.final || final;
    return entry;
  }

  entries() {
    return [...this.segments.values()].sort((a, b) => a.order - b.order);
  }
}

// -- errors a person can act on ----------------------------------------------------------------

/**
 * A token request failure (from livekit-client's TokenSource.endpoint or fetch) → a sentence.
 * TokenSource reports HTTP errors as "... received <status> / <body>"; the body is our JSON
 * error `{"error": {"code", "message"}}`. `withKey` says whether the page sent an API key.
 */
export function describeTokenError(error, { withKey = true } = {}) {
  const text = String(error?.message ?? error);
  const match = /received (\d{3}) \/ ([\s\S]*)$/.exec(text);
  if (!match) {
    return { code: 'token_server_unreachable', message: `The token server did not answer (${text}). Is python -m token_server running?` };
  }
  const status = Number(match[1]);
  let code = `http_${status}`;
  let detail = match[2].trim().slice(0, 300);
  try {
    const body = JSON.parse(match[2]);
    if (isObject(body?.error)) {
      code = String(body.error.code ?? code);
      detail = String(body.error.message ?? detail);
    }
  } catch {
    // not our JSON error: keep the raw text
  }
  let hint = '';
  if (status === 401) hint = withKey ? ' Check the API key.' : ' This server is not in dev mode: enter an API key.';
  else if (status === 429) hint = ' Wait a moment and try again.';
  return { code, status, message: `The token server refused the token (${status} ${code}): ${detail}.${hint}` };
}

/** A `room.connect` failure → a sentence naming the LiveKit server. */
export function describeConnectError(error, serverUrl) {
  const text = String(error?.message ?? error);
  const status = typeof error?.status === 'number' ? error.status : undefined;
  if (status === 401 || status === 403) {
    return { code: 'livekit_refused', message: `The LiveKit server at ${serverUrl} refused the token (${status}): ${text}. Do LIVEKIT_API_KEY/LIVEKIT_API_SECRET match the server's keys?` };
  }
  return {
    code: 'livekit_unreachable',
    message: `No LiveKit server answered at ${serverUrl} (${text}). Start one (livekit-server --config livekit.yaml) or check LIVEKIT_URL.`,
  };
}
