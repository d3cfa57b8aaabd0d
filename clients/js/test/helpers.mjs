// Helpers of the SDK tests.  They run against a real gateway started by
// t/044-sdk-js.t (nginx with conf/chat.conf, the sample configuration of
// `make run`), which passes:
//   CHAT_URL        ws://127.0.0.1:<port>/chat
//   CHAT_HTTP       http://127.0.0.1:<port> (token endpoint, media)
//   CHAT_NGINX_PID  the nginx master (for reloads and worker kills)
// Without them, or with the gateway down, every test fails: nothing is
// skipped.  No test sleeps to synchronise: each waits, bounded, for the
// event or state it needs.

import { readFileSync, readdirSync } from 'node:fs';
import { ChatClient } from '../src/index.js';

function env(name) {
    const v = process.env[name];
    if (!v) {
        throw new Error(name + ' is not set: run the SDK tests through'
            + ' t/044-sdk-js.t (prove), which starts a gateway');
    }
    return v;
}

export const WS_URL = () => env('CHAT_URL');
export const HTTP = () => env('CHAT_HTTP');

let unique = 0;

/** A user id of its own for each call (users' rate limits stay apart). */
export function uid(name) {
    unique++;
    return name + '-' + process.pid + '-' + unique;
}

export async function mint(user, device) {
    const res = await fetch(HTTP() + '/chat/admin/token', {
        method: 'POST', body: JSON.stringify({ user, device }),
    });
    if (!res.ok) {
        throw new Error('token endpoint answered ' + res.status);
    }
    return (await res.json()).token;
}

const clients = new Set();

/** A client with a token minted per connection; closed by closeAll(). */
export function client(user, device, opts = {}) {
    const c = new ChatClient(Object.assign({
        url: WS_URL(),
        token: () => mint(user, device),
        requestTimeoutMs: 10000,
    }, opts));
    clients.add(c);
    return c;
}

export function closeAll() {
    for (const c of clients) {
        c.close();
    }
    clients.clear();
}

export function withTimeout(p, ms, what) {
    let t;
    return Promise.race([
        p,
        new Promise((resolve, reject) => {
            t = setTimeout(() => reject(new Error('timed out after ' + ms
                + ' ms: ' + what)), ms);
        }),
    ]).finally(() => clearTimeout(t));
}

export async function connected(user, device, opts = {}) {
    const c = client(user, device, opts);
    await withTimeout(c.connect(), 10000, user + '/' + device
        + ' connects');
    return c;
}

/**
 * Resolves once cond() is true, re-checked whenever one of the client's
 * events fires (and on a short poll for state kept outside the client).
 */
export function until(c, cond, ms, what) {
    return withTimeout(new Promise((resolve) => {
        const offs = [];
        const check = () => {
            if (cond()) {
                offs.forEach((f) => f());
                clearInterval(iv);
                resolve();
                return true;
            }
            return false;
        };
        for (const name of ['message', 'chatUpdate', 'state', 'chats',
            'close', 'event']) {
            offs.push(c.on(name, () => { setImmediate(check); }));
        }
        const iv = setInterval(check, 20);
        check();
    }), ms || 10000, what || 'condition');
}

/** Messages a client's handler got, in arrival order, by messageId too. */
export function collect(c, opts = {}) {
    const got = { list: [], ids: new Map(), calls: 0 };
    c.on('message', async (m) => {
        got.calls++;
        got.list.push(m);
        got.ids.set(m.messageId, (got.ids.get(m.messageId) || 0) + 1);
        if (opts.hold) {
            await opts.hold(m);
        }
    });
    return got;
}

// ------------------------------------------------------------------ nginx

export function masterPid() {
    return Number(env('CHAT_NGINX_PID'));
}

/** The pids of the nginx master's worker processes. */
export function workerPids() {
    const master = masterPid();
    const out = [];
    for (const d of readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) {
            continue;
        }
        let stat;
        try {
            stat = readFileSync('/proc/' + d + '/stat', 'utf8');
        } catch (e) {
            continue;
        }
        const m = /^\d+ \(.*\) (\S) (\d+) /.exec(stat);
        if (m && Number(m[2]) === master && m[1] !== 'Z') {
            const cmd = readFileSync('/proc/' + d + '/cmdline', 'utf8');
            if (cmd.startsWith('nginx: worker')) {
                out.push(Number(d));
            }
        }
    }
    return out;
}
