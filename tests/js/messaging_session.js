#!/usr/bin/env node
// The official Amazon Chime SDK for JavaScript's DefaultMessagingSession
// against a Chime SDK Messaging endpoint (tidings-chime-local in tests), as a
// line-oriented child process for test drivers (tests/js/README.md).
//
//   node messaging_session.js --endpoint http://127.0.0.1:PORT --user USER_ARN
//                             [--session-id ID] [--region us-east-1]
//
// Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (the SDK's default
// chain). The WebSocket's certificate is trusted through NODE_EXTRA_CA_CERTS.
// stdout: one JSON object per line:
//   {"event":"started"}                  SESSION_ESTABLISHED reached the observer
//   {"event":"message","type":T,"headers":{...},"payload":OBJ|null}
//   {"event":"stopped","code":N}         the session ended (no reconnect)
//   {"event":"failed","code":N,...}      start() was rejected
//   {"event":"sent","id":ID,"messageId":M} / {"event":"error","id":ID,"error":"..."}
// stdin: one JSON command per line:
//   {"id":ID,"send":{"ChannelArn":...,"Content":...,"Persistence":"PERSISTENT",...}}
//     SendChannelMessage through @aws-sdk/client-chime-sdk-messaging, as USER_ARN
//   {"id":ID,"update":{"ChannelArn":...,"MessageId":...,"Content":...}}
//   {"id":ID,"redact":{"ChannelArn":...,"MessageId":...}}
//   {"stop":true}                         stop the session and exit 0
'use strict';

const readline = require('readline');
const { randomUUID } = require('crypto');

// Node 20 has no global WebSocket or CloseEvent; the SDK expects a browser's.
globalThis.WebSocket = globalThis.WebSocket || require('ws');
if (typeof globalThis.CloseEvent === 'undefined') {
  globalThis.CloseEvent = class CloseEvent extends Event {
    constructor(type, init = {}) {
      super(type);
      this.code = init.code;
      this.reason = init.reason;
      this.wasClean = init.wasClean;
    }
  };
}

const {
  ChimeSDKMessagingClient,
  SendChannelMessageCommand,
  UpdateChannelMessageCommand,
  RedactChannelMessageCommand,
} = require('@aws-sdk/client-chime-sdk-messaging');
const {
  DefaultMessagingSession,
  MessagingSessionConfiguration,
  LogLevel,
} = require('amazon-chime-sdk-js');

function args() {
  const out = { region: 'us-east-1' };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!['endpoint', 'user', 'session-id', 'region'].includes(key) || argv[i + 1] === undefined) {
      process.stderr.write(`messaging_session.js: unknown or incomplete option ${argv[i]}\n`);
      process.exit(2);
    }
    out[key] = argv[i + 1];
  }
  if (!out.endpoint || !out.user) {
    process.stderr.write('usage: messaging_session.js --endpoint URL --user USER_ARN\n');
    process.exit(2);
  }
  return out;
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// The SDK's Logger interface, to stderr (stdout is the event stream).
const logger = {
  level: LogLevel.WARN,
  info(m) { if (this.level <= LogLevel.INFO) process.stderr.write(`[info] ${m}\n`); },
  warn(m) { if (this.level <= LogLevel.WARN) process.stderr.write(`[warn] ${m}\n`); },
  error(m) { process.stderr.write(`[error] ${m}\n`); },
  debug(m) { if (this.level <= LogLevel.DEBUG) process.stderr.write(`[debug] ${typeof m === 'function' ? m() : m}\n`); },
  setLogLevel(l) { this.level = l; },
  getLogLevel() { return this.level; },
};

async function main() {
  const opt = args();
  const client = new ChimeSDKMessagingClient({ region: opt.region, endpoint: opt.endpoint });
  const config = new MessagingSessionConfiguration(
    opt.user, opt['session-id'] || randomUUID(), undefined, client);
  const session = new DefaultMessagingSession(config, logger);
  session.addObserver({
    messagingSessionDidStart: () => emit({ event: 'started' }),
    messagingSessionDidReceiveMessage: (message) => {
      let payload = null;
      try {
        payload = message.payload ? JSON.parse(message.payload) : null;
      } catch (e) {
        payload = { unparsed: message.payload };
      }
      emit({ event: 'message', type: message.type, headers: message.headers, payload });
    },
    messagingSessionDidStop: (event) => emit({ event: 'stopped', code: event.code }),
  });

  const commands = readline.createInterface({ input: process.stdin });
  commands.on('line', async (line) => {
    if (!line.trim()) return;
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      return emit({ event: 'error', error: `not JSON: ${line}` });
    }
    if (cmd.stop) {
      session.stop();
      setTimeout(() => process.exit(0), 100);
      return;
    }
    const bearer = { ChimeBearer: opt.user };
    try {
      let response;
      if (cmd.send) {
        response = await client.send(new SendChannelMessageCommand({
          Type: 'STANDARD', Persistence: 'PERSISTENT', ClientRequestToken: randomUUID(),
          ...cmd.send, ...bearer,
        }));
      } else if (cmd.update) {
        response = await client.send(new UpdateChannelMessageCommand({ ...cmd.update, ...bearer }));
      } else if (cmd.redact) {
        response = await client.send(new RedactChannelMessageCommand({ ...cmd.redact, ...bearer }));
      } else {
        return emit({ event: 'error', id: cmd.id, error: 'unknown command' });
      }
      emit({ event: 'sent', id: cmd.id, messageId: response.MessageId });
    } catch (e) {
      emit({ event: 'error', id: cmd.id, error: `${e.name}: ${e.message}` });
    }
  });
  commands.on('close', () => {
    session.stop();
    setTimeout(() => process.exit(0), 100);
  });

  try {
    await session.start();
  } catch (event) {
    emit({ event: 'failed', code: event && event.code, reason: event && event.reason });
    process.exit(1);
  }
}

main().catch((e) => {
  process.stderr.write(`messaging_session.js: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
