// The page: sign in, fetch a token from this server's POST /token, join the room with the
// microphone, and show the agent's state, the transcript, chat, command replies and events.
import { DisconnectReason, Room, RoomEvent, Track, TokenSource } from 'livekit-client';
import {
  AGENT_STATE_ATTRIBUTE,
  TOPICS,
  CommandLineError,
  Transcript,
  buildCommand,
  classifyLine,
  describeConnectError,
  describeEvent,
  describeReply,
  describeTokenError,
  parseEvent,
  parseReply,
} from './protocol.js';

const $ = (id) => document.getElementById(id);
const ui = {
  signin: $('signin'),
  join: $('join'),
  name: $('name'),
  apiKey: $('api-key'),
  room: $('room'),
  error: $('error'),
  call: $('call'),
  connection: $('connection'),
  agentState: $('agent-state'),
  transcript: $('transcript'),
  chat: $('chat'),
  chatInput: $('chat-input'),
  activity: $('activity'),
  sources: $('sources'),
  mute: $('mute'),
  leave: $('leave'),
};

let room = null;
let transcript = new Transcript();
const transcriptItems = new Map();
const activityItems = new Map();
let requestCounter = 0;

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = false;
}

function clearError() {
  ui.error.hidden = true;
  ui.error.textContent = '';
}

function setPill(element, state, text) {
  element.dataset.state = state;
  element.textContent = text;
}

function scrollDown() {
  ui.transcript.scrollTop = ui.transcript.scrollHeight;
}

function transcriptLine(speaker, who, text, extra = {}) {
  const item = document.createElement('li');
  item.dataset.speaker = speaker;
  for (const [key, value] of Object.entries(extra)) item.dataset[key] = String(value);
  const label = document.createElement('span');
  label.className = 'who';
  label.textContent = who;
  const body = document.createElement('span');
  body.textContent = text;
  item.append(label, body);
  ui.transcript.append(item);
  scrollDown();
  return item;
}

function showTranscript(entry, who) {
  let item = transcriptItems.get(entry.key);
  if (!item) {
    item = transcriptLine(entry.speaker, who, '');
    transcriptItems.set(entry.key, item);
  }
  item.lastChild.textContent = entry.text;
  item.dataset.final = String(entry.final);
  scrollDown();
}

function showActivity(described) {
  let item = described.key ? activityItems.get(described.key) : undefined;
  if (!item) {
    item = document.createElement('li');
    ui.activity.prepend(item);
    if (described.key) activityItems.set(described.key, item);
  }
  item.dataset.kind = described.kind;
  item.dataset.running = String(Boolean(described.running));
  item.textContent = described.text;
}

function showSources(sources) {
  ui.sources.replaceChildren(
    ...sources.map((source) => {
      const item = document.createElement('li');
      const title = document.createElement('strong');
      title.textContent = source.title;
      const where = document.createElement('small');
      where.textContent = `${source.where} · score ${source.score}`;
      const preview = document.createElement('span');
      preview.textContent = source.preview;
      item.append(title, where, preview);
      return item;
    }),
  );
}

function speakerOf(identity) {
  return room && identity === room.localParticipant.identity ? 'you' : 'agent';
}

function nameOf(identity) {
  if (!room) return identity;
  if (identity === room.localParticipant.identity) return 'You';
  return room.remoteParticipants.get(identity)?.name || identity;
}

function showAgentState() {
  const agent = [...room.remoteParticipants.values()].find((p) => p.isAgent);
  if (!agent) {
    setPill(ui.agentState, 'none', 'agent: waiting to join…');
    return;
  }
  const state = agent.attributes[AGENT_STATE_ATTRIBUTE] ?? 'joined';
  setPill(ui.agentState, state, `agent: ${state}`);
}

function nextRequestId() {
  requestCounter += 1;
  return `web-${requestCounter}-${Math.random().toString(36).slice(2, 10)}`;
}

async function readStream(reader, onText) {
  let text = '';
  for await (const chunk of reader) {
    text += chunk;
    onText(text);
  }
  return text;
}

function registerHandlers(current) {
  current.registerTextStreamHandler(TOPICS.transcription, async (reader, participant) => {
    const attributes = reader.info.attributes ?? {};
    const identity = participant.identity;
    const base = { segmentId: attributes['lk.segment_id'], streamId: reader.info.id, speaker: speakerOf(identity) };
    const update = (text, final) => showTranscript(transcript.update({ ...base, text, final }), nameOf(identity));
    const text = await readStream(reader, (soFar) => update(soFar, false));
    update(text, (reader.info.attributes ?? attributes)['lk.transcription_final'] === 'true');
  });
  current.registerTextStreamHandler(TOPICS.chat, async (reader, participant) => {
    const text = await reader.readAll();
    if (text) transcriptLine(speakerOf(participant.identity), nameOf(participant.identity), text);
  });
  current.registerTextStreamHandler(TOPICS.reply, async (reader) => {
    try {
      const reply = parseReply(await reader.readAll());
      const described = describeReply(reply);
      transcriptLine('reply', described.title, described.lines.join('\n'), { ok: described.ok });
    } catch (error) {
      showActivity({ kind: 'error', text: `Unreadable reply from the agent: ${error.message}` });
    }
  });
  current.registerTextStreamHandler(TOPICS.event, async (reader) => {
    try {
      const described = describeEvent(parseEvent(await reader.readAll()));
      if (described.kind === 'sources') showSources(described.sources);
      if (described.kind === 'welcome' && described.commands?.length) {
        ui.chatInput.placeholder = `Type a message, or ${described.commands.map((c) => `/${c.name}`).join(' ')}`;
      }
      showActivity(described);
    } catch (error) {
      showActivity({ kind: 'error', text: `Unreadable event from the agent: ${error.message}` });
    }
  });
  current
    .on(RoomEvent.ParticipantConnected, showAgentState)
    .on(RoomEvent.ParticipantDisconnected, showAgentState)
    .on(RoomEvent.ParticipantAttributesChanged, showAgentState)
    .on(RoomEvent.TrackSubscribed, (track) => {
      if (track.kind === Track.Kind.Audio) document.body.append(track.attach());
    })
    .on(RoomEvent.TrackUnsubscribed, (track) => track.detach().forEach((element) => element.remove()))
    .on(RoomEvent.Reconnecting, () => setPill(ui.connection, 'reconnecting', 'reconnecting…'))
    .on(RoomEvent.Reconnected, () => setPill(ui.connection, 'connected', 'connected'))
    .on(RoomEvent.Disconnected, (reason) => {
      if (room !== current) return;
      endCall();
      setPill(ui.connection, 'idle', 'disconnected');
      if (reason !== undefined && reason !== DisconnectReason.CLIENT_INITIATED) {
        showError(`The call ended: ${DisconnectReason[reason] ?? reason}.`);
      }
    });
}

function endCall() {
  room = null;
  ui.call.hidden = true;
  ui.join.disabled = false;
  setPill(ui.agentState, 'none', 'agent: —');
  document.querySelectorAll('audio').forEach((element) => element.remove());
}

async function join(event) {
  event.preventDefault();
  clearError();
  ui.join.disabled = true;
  const key = ui.apiKey.value.trim();
  const options = {};
  if (ui.name.value.trim()) options.participantName = ui.name.value.trim();
  if (ui.room.value.trim()) options.roomName = ui.room.value.trim();
  setPill(ui.connection, 'working', key ? 'signing in…' : 'signing in (dev mode)…');
  let details;
  try {
    const tokens = TokenSource.endpoint(new URL('token', window.location.href).href, key ? { headers: { Authorization: `Bearer ${key}` } } : {});
    details = await tokens.fetch(options);
  } catch (error) {
    const described = describeTokenError(error, { withKey: Boolean(key) });
    setPill(ui.connection, 'failed', described.code === 'token_server_unreachable' ? 'no token server' : 'token refused');
    showError(described.message);
    ui.join.disabled = false;
    return;
  }
  setPill(ui.connection, 'working', `connecting to ${details.serverUrl}…`);
  const current = new Room({ adaptiveStream: true, dynacast: true });
  room = current;
  transcript = new Transcript();
  transcriptItems.clear();
  activityItems.clear();
  ui.transcript.replaceChildren();
  ui.activity.replaceChildren();
  ui.sources.replaceChildren();
  registerHandlers(current);
  try {
    await current.connect(details.serverUrl, details.participantToken);
  } catch (error) {
    room = null;
    const described = describeConnectError(error, details.serverUrl);
    setPill(ui.connection, 'failed', 'no LiveKit server');
    showError(described.message);
    ui.join.disabled = false;
    return;
  }
  setPill(ui.connection, 'connected', `connected · ${current.name}`);
  ui.call.hidden = false;
  showAgentState();
  await current.startAudio().catch(() => undefined);
  try {
    await current.localParticipant.setMicrophoneEnabled(true);
  } catch (error) {
    showError(`The microphone is not available (${error.message}); typed chat still works.`);
  }
}

async function send(event) {
  event.preventDefault();
  if (!room) return;
  const line = classifyLine(ui.chatInput.value);
  if (line.kind === 'empty') return;
  try {
    if (line.kind === 'chat') {
      await room.localParticipant.sendText(line.text, { topic: TOPICS.chat });
      transcriptLine('you', 'You', line.text);
    } else {
      const envelope = buildCommand(line.text, nextRequestId());
      await room.localParticipant.sendText(JSON.stringify(envelope), { topic: TOPICS.command });
      transcriptLine('you', 'You', line.text);
    }
    ui.chatInput.value = '';
  } catch (error) {
    if (error instanceof CommandLineError) transcriptLine('reply', 'not sent', error.message, { ok: false });
    else showError(`Could not send: ${error.message}`);
  }
}

ui.signin.addEventListener('submit', join);
window.addEventListener('pagehide', () => room?.disconnect());
ui.chat.addEventListener('submit', send);
ui.leave.addEventListener('click', async () => {
  const current = room;
  endCall();
  setPill(ui.connection, 'idle', 'left the call');
  await current?.disconnect();
});
ui.mute.addEventListener('click', async () => {
  if (!room) return;
  const enabled = room.localParticipant.isMicrophoneEnabled;
  await room.localParticipant.setMicrophoneEnabled(!enabled);
  ui.mute.textContent = enabled ? 'Unmute' : 'Mute';
});
