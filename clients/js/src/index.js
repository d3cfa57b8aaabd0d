// ngx-chat-client: the JavaScript SDK of ngx_chat (docs/protocol.md,
// docs/media.md).  One ES module, no dependencies in the browser; in Node
// it uses the built-in WebSocket when there is one, else the "ws" package.
//
// What it does for the application, as the protocol's "Client guidance"
// asks: reconnects with jittered exponential backoff (1001: after a random
// 0-2 s), resends unanswered sendMessage commands with the same
// clientMessageId after a reconnect, drops duplicate events by eventId,
// acks an event (in batches) only once the application's handlers have
// stored it, refetches the chat list with getChats on every (re)connect,
// waits retryAfterMs on rate_limited, keeps a bounded number of commands
// in flight, and hashes attachments (SHA-256) before uploading them.

export const VERSION = '0.1.0';

const DEFINITE = new Set(['bad_request', 'unknown_type', 'forbidden',
    'not_found', 'limit_exceeded', 'internal_error']);

// commands that may be sent again after a reconnect without changing what
// they do (sendMessage: thanks to its clientMessageId)
const RESENDABLE = new Set(['ping', 'sendMessage', 'ack', 'getChats',
    'createAttachment', 'getAttachmentUrl', 'ackAttachment']);

// close codes after which reconnecting is pointless
const FINAL_CLOSES = new Map([
    [4001, 'replaced'],     // the same device connected elsewhere
    [4004, 'removed'],      // this device was removed
]);

/** An error answered by the server, or one of the SDK's own. */
export class ChatError extends Error {
    constructor(code, message, extra = {}) {
        super(message || code);
        this.name = 'ChatError';
        this.code = code;
        if (extra.retryAfterMs !== undefined) {
            this.retryAfterMs = extra.retryAfterMs;
        }
        if (extra.status !== undefined) {
            this.status = extra.status;
        }
        if (extra.response !== undefined) {
            this.response = extra.response;
        }
    }
}

function base64UrlDecode(s) {
    const b = s.replace(/-/g, '+').replace(/_/g, '/')
        + '==='.slice((s.length + 3) % 4);
    if (typeof atob === 'function') {
        return decodeURIComponent(Array.from(atob(b),
            (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0'))
            .join(''));
    }
    return Buffer.from(b, 'base64').toString('utf8');
}

/** The claims of a JWT (not verified: the server does that). */
export function tokenClaims(token) {
    try {
        return JSON.parse(base64UrlDecode(String(token).split('.')[1]));
    } catch (e) {
        return {};
    }
}

function toHex(buf) {
    return Array.from(new Uint8Array(buf),
        (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Bytes of a Blob, ArrayBuffer, typed array, Node Buffer or string. */
export async function toBytes(data) {
    if (data instanceof Uint8Array) {
        return data;
    }
    if (data instanceof ArrayBuffer) {
        return new Uint8Array(data);
    }
    if (ArrayBuffer.isView(data)) {
        return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    }
    if (typeof data === 'string') {
        return new TextEncoder().encode(data);
    }
    if (data && typeof data.arrayBuffer === 'function') {
        return new Uint8Array(await data.arrayBuffer());
    }
    throw new TypeError('expected a Blob, ArrayBuffer, typed array or string');
}

/** SHA-256 of bytes, 64 lowercase hex digits (WebCrypto, or node:crypto). */
export async function sha256Hex(data) {
    const bytes = await toBytes(data);
    const subtle = globalThis.crypto && globalThis.crypto.subtle;
    if (subtle) {
        return toHex(await subtle.digest('SHA-256', bytes));
    }
    const { createHash } = await import('node:crypto');
    return createHash('sha256').update(bytes).digest('hex');
}

async function defaultWebSocket() {
    if (typeof globalThis.WebSocket === 'function') {
        return { ctor: globalThis.WebSocket, headers: false };
    }
    let mod;
    try {
        mod = await import('ws');
    } catch (e) {
        throw new ChatError('no_websocket', 'no WebSocket: install the "ws"'
            + ' package, or pass options.WebSocket');
    }
    return { ctor: mod.WebSocket || mod.default, headers: true };
}

/**
 * Messages of one chat in display order: by seq (the chat's authoritative
 * order), each messageId once; messages being sent (no seq yet) last, in
 * the order they were sent.
 */
export class Timeline {
    constructor() {
        this.messages = [];
        this._keys = new Map();     // key -> message
    }

    /** Adds or updates a message; returns true when it was new. */
    add(m) {
        const keys = [];
        if (m.messageId !== undefined) {
            keys.push('m:' + m.messageId);
        }
        if (m.clientMessageId !== undefined) {
            keys.push('c:' + m.clientMessageId);
        }
        let old;
        for (const k of keys) {
            old = old || this._keys.get(k);
        }
        if (old) {
            const i = this.messages.indexOf(old);
            this.messages.splice(i, 1);
            m = Object.assign(old, m);
        }
        for (const k of keys) {
            this._keys.set(k, m);
        }
        this._insert(m);
        return !old;
    }

    _insert(m) {
        const list = this.messages;
        if (typeof m.seq !== 'number') {
            list.push(m);
            return;
        }
        // after the last message with a smaller seq, before pending ones
        let lo = 0;
        let hi = list.length;
        while (lo < hi && typeof list[hi - 1].seq !== 'number') {
            hi--;
        }
        while (lo < hi) {
            const mid = (lo + hi) >> 1;
            if (list[mid].seq < m.seq) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        list.splice(lo, 0, m);
    }

    get(messageId) {
        return this._keys.get('m:' + messageId);
    }

    get length() {
        return this.messages.length;
    }
}

// one async iterator of events (ChatClient.events())
class EventStream {
    constructor(client) {
        this.client = client;
        this.items = [];        // { event, done } not yet taken
        this.waiter = null;     // resolve of a pending next()
        this.current = null;    // done() of the event the consumer holds
        this.closed = false;
    }

    push(event) {
        return new Promise((resolve, reject) => {
            const item = { event, done: resolve, fail: reject };
            if (this.waiter) {
                const w = this.waiter;
                this.waiter = null;
                this.current = item;
                w({ value: event, done: false });
            } else {
                this.items.push(item);
            }
        });
    }

    next() {
        // asking for the next event means the last one was handled
        if (this.current) {
            this.current.done();
            this.current = null;
        }
        if (this.closed) {
            return Promise.resolve({ value: undefined, done: true });
        }
        if (this.items.length) {
            this.current = this.items.shift();
            return Promise.resolve({ value: this.current.event, done: false });
        }
        return new Promise((resolve) => { this.waiter = resolve; });
    }

    return() {
        if (this.current) {
            this.current.done();
            this.current = null;
        }
        this.closed = true;
        for (const it of this.items) {
            it.fail(new ChatError('not_consumed', 'the iterator was closed'));
        }
        this.items = [];
        if (this.waiter) {
            this.waiter({ value: undefined, done: true });
            this.waiter = null;
        }
        this.client._streams.delete(this);
        return Promise.resolve({ value: undefined, done: true });
    }

    [Symbol.asyncIterator]() {
        return this;
    }
}

/**
 * A connection of one device to an ngx_chat gateway.
 *
 *   const chat = new ChatClient({ url: 'ws://127.0.0.1:8080/chat',
 *                                 token: () => fetchToken() });
 *   chat.on('message', async (m) => { await store(m); });  // then acked
 *   await chat.connect();
 */
export class ChatClient {
    constructor(options = {}) {
        if (!options.url) {
            throw new TypeError('options.url (ws://.../chat) is required');
        }
        if (!options.token) {
            throw new TypeError('options.token (a JWT or a function'
                + ' returning one) is required');
        }
        this.url = String(options.url);
        this.options = Object.assign({
            autoAck: true,
            ackDelayMs: 50,
            maxInflight: 32,
            dedupeSize: 5000,
            initialBackoffMs: 500,
            maxBackoffMs: 30000,
            requestTimeoutMs: 20000,
            heartbeatMs: 25000,
            fetchChats: true,
            random: Math.random,
        }, options);
        this.state = 'idle';
        this.user = undefined;
        this.device = undefined;
        /** chatId -> { chatId, name, participants, admin, lastSeq } */
        this.chats = new Map();
        this.stats = { connects: 0, reconnects: 0, resent: 0,
            duplicatesDropped: 0, acked: 0 };
        this.lastClose = null;

        this._listeners = new Map();
        this._streams = new Set();
        this._ws = null;
        this._wsInfo = null;
        this._attempt = 0;
        this._timer = null;
        this._heartbeat = null;
        this._nextId = 1;
        this._nextSeq = 1;
        this._queue = [];               // entries not sent yet
        this._inflight = new Map();     // id -> entry
        this._seen = new Map();         // eventId -> 'pending' | 'done'
        this._acks = new Set();         // eventIds to ack
        this._ackTimer = null;
        this._connectWaiters = [];
        this._stopped = false;
        this._online = null;
        this._gen = 0;
        this._fetching = false;
        this._final = null;
        this._httpBase = this.url.replace(/^ws(s?):/i, 'http$1:');

        const t = typeof options.token === 'string' ? options.token : null;
        if (t) {
            this._claims(t);
        }
    }

    // ---------------------------------------------------------------- events

    /**
     * Listens to 'message' (newMessage), 'chatUpdate', 'event' (any event),
     * 'chats' (the list after each (re)connect), 'state', 'close',
     * 'error'.  A handler of an event may return a promise: the event is
     * acked once every handler's promise has resolved.  Returns a function
     * that removes the handler.
     */
    on(name, fn) {
        if (!this._listeners.has(name)) {
            this._listeners.set(name, new Set());
        }
        this._listeners.get(name).add(fn);
        return () => this.off(name, fn);
    }

    off(name, fn) {
        const set = this._listeners.get(name);
        if (set) {
            set.delete(fn);
        }
    }

    _emit(name, ...args) {
        const out = [];
        for (const fn of this._listeners.get(name) || []) {
            try {
                out.push(fn(...args));
            } catch (e) {
                out.push(Promise.reject(e));
            }
        }
        return out;
    }

    _hasListeners(name) {
        const set = this._listeners.get(name);
        return !!(set && set.size);
    }

    /**
     * The events as an async iterator.  An event is acked once the loop
     * asks for the next one (so store it inside the loop body).  Create it
     * before connect() to see the events waiting in the inbox.
     */
    events() {
        const s = new EventStream(this);
        this._streams.add(s);
        return s;
    }

    _setState(state) {
        if (this.state !== state) {
            this.state = state;
            this._emit('state', state);
        }
    }

    // ------------------------------------------------------------ connection

    /**
     * Connects, and keeps reconnecting until close().  Resolves once
     * connected (and, with fetchChats, once the chat list is fetched).
     */
    connect() {
        this._stopped = false;
        this._final = null;
        const p = new Promise((resolve, reject) => {
            this._connectWaiters.push({ resolve, reject });
        });
        if (this.state === 'connected' && !this._fetching) {
            this._settleConnect(null);
        } else if (!this._ws && !this._timer) {
            this._watchOnline();
            this._open();
        }
        return p;
    }

    _settleConnect(err) {
        const waiters = this._connectWaiters;
        this._connectWaiters = [];
        for (const w of waiters) {
            if (err) {
                w.reject(err);
            } else {
                w.resolve();
            }
        }
    }

    /** Closes the connection for good (no reconnect). */
    close() {
        this._stopped = true;
        clearTimeout(this._timer);
        this._timer = null;
        this._stopHeartbeat();
        this._flushAcks();
        const ws = this._ws;
        this._detach();
        if (ws) {
            try {
                ws.close(1000, 'bye');
            } catch (e) { /* already closed */ }
        }
        this._final = new ChatError('closed', 'the client was closed');
        this._failAll(this._final, true);
        this._unwatchOnline();
        this._setState('closed');
        this._settleConnect(new ChatError('closed', 'the client was closed'));
    }

    _claims(token) {
        const c = tokenClaims(token);
        if (c.sub) {
            this.user = c.sub;
            this.device = c.dev;
        }
    }

    async _token() {
        const t = this.options.token;
        return typeof t === 'function' ? await t() : t;
    }

    async _open() {
        this._setState(this.stats.connects ? 'reconnecting' : 'connecting');
        const gen = ++this._gen;
        let token;
        let ws;
        try {
            if (!this._wsInfo) {
                this._wsInfo = this.options.WebSocket
                    ? { ctor: this.options.WebSocket,
                        headers: !!this.options.headerToken }
                    : await defaultWebSocket();
            }
            token = await this._token();
            if (this._stopped || gen !== this._gen) {
                return;
            }
            this._claims(token);
            const Ctor = this._wsInfo.ctor;
            if (this._wsInfo.headers) {
                ws = new Ctor(this.url,
                    { headers: { Authorization: 'Bearer ' + token } });
            } else {
                const sep = this.url.includes('?') ? '&' : '?';
                ws = new Ctor(this.url + sep + 'access_token='
                    + encodeURIComponent(token));
            }
        } catch (e) {
            this._emit('error', e);
            this._scheduleReconnect(null);
            return;
        }
        this._ws = ws;
        ws.onopen = () => this._onOpen(ws);
        ws.onmessage = (ev) => this._onFrame(ws, ev.data);
        ws.onerror = (ev) => {
            if (ws === this._ws) {
                const msg = ev && (ev.message || (ev.error && ev.error.message));
                this._lastError = msg || 'WebSocket error';
            }
        };
        ws.onclose = (ev) => this._onClose(ws, ev.code, ev.reason);
    }

    _detach() {
        const ws = this._ws;
        if (ws) {
            ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
        }
        this._ws = null;
    }

    async _onOpen(ws) {
        if (ws !== this._ws) {
            return;
        }
        this.stats.connects++;
        if (this.stats.connects > 1) {
            this.stats.reconnects++;
        }
        this._connectedAt = Date.now();
        this._setState('connected');
        this._startHeartbeat();
        // unanswered commands and acks first, in the order they were made
        this._queue.sort((a, b) => a.n - b.n);
        this._pump();
        this._flushAcks();
        if (!this.options.fetchChats) {
            this._attempt = 0;
            this._settleConnect(null);
            return;
        }
        this._fetching = true;
        try {
            const chats = await this.getAllChats();
            if (ws !== this._ws) {
                return;
            }
            this.chats = new Map(chats.map((c) => [c.chatId, c]));
            this._attempt = 0;
            this._fetching = false;
            this._emit('chats', chats);
            this._settleConnect(null);
        } catch (e) {
            this._fetching = false;
            if (ws === this._ws) {
                this._emit('error', e);
            }
        }
    }

    _onClose(ws, code, reason) {
        if (ws !== this._ws) {
            return;
        }
        this._detach();
        this._stopHeartbeat();
        this.lastClose = { code, reason: reason || this._lastError || '' };
        this._lastError = null;
        this._emit('close', this.lastClose);
        this._requeueInflight();
        if (this._stopped) {
            return;
        }
        const final = FINAL_CLOSES.get(code);
        if (final) {
            this._stopped = true;
            this._final = new ChatError(final, 'closed with ' + code
                + (reason ? ' (' + reason + ')' : ''));
            this._failAll(this._final, true);
            this._setState('offline');
            this._settleConnect(new ChatError(final, 'closed with ' + code));
            return;
        }
        this._scheduleReconnect(code);
    }

    _backoffMs(code) {
        const o = this.options;
        if (code === 1001) {
            // a restart: everyone reconnects, spread them
            return o.random() * 2000;
        }
        const base = Math.min(o.maxBackoffMs,
            o.initialBackoffMs * Math.pow(2, this._attempt));
        this._attempt++;
        return base * (0.5 + o.random());
    }

    _scheduleReconnect(code) {
        clearTimeout(this._timer);
        const delay = this._backoffMs(code);
        this._setState(this._online === false ? 'offline' : 'reconnecting');
        this._timer = setTimeout(() => {
            this._timer = null;
            if (!this._stopped) {
                this._open();
            }
        }, delay);
    }

    /** Drops the connection now and reconnects (after the usual backoff). */
    reconnect() {
        const ws = this._ws;
        if (!ws) {
            if (this._timer) {
                clearTimeout(this._timer);
                this._timer = null;
                this._open();
            }
            return;
        }
        this._onClose(ws, 4000, 'reconnect asked by the application');
        try {
            ws.close(1000, 'reconnecting');
        } catch (e) { /* gone */ }
    }

    // browsers: show "offline" while the network is down, retry when back
    _watchOnline() {
        const g = globalThis;
        if (this._online !== null || typeof g.addEventListener !== 'function'
            || typeof g.navigator === 'undefined'
            || typeof g.navigator.onLine !== 'boolean') {
            return;
        }
        this._online = g.navigator.onLine;
        this._onOnline = () => {
            this._online = true;
            if (this._timer) {
                this._attempt = 0;
                clearTimeout(this._timer);
                this._timer = null;
                this._open();
            }
        };
        this._onOffline = () => {
            this._online = false;
            if (this.state === 'reconnecting') {
                this._setState('offline');
            }
        };
        g.addEventListener('online', this._onOnline);
        g.addEventListener('offline', this._onOffline);
    }

    _unwatchOnline() {
        if (this._onOnline) {
            globalThis.removeEventListener('online', this._onOnline);
            globalThis.removeEventListener('offline', this._onOffline);
            this._onOnline = this._onOffline = null;
            this._online = null;
        }
    }

    // a connection that answers nothing is dead even if TCP says otherwise
    _startHeartbeat() {
        this._stopHeartbeat();
        const ms = this.options.heartbeatMs;
        if (!ms) {
            return;
        }
        this._heartbeat = setInterval(() => {
            if (this.state === 'connected') {
                this.ping().catch(() => {});
            }
        }, ms);
        if (this._heartbeat.unref) {
            this._heartbeat.unref();
        }
    }

    _stopHeartbeat() {
        clearInterval(this._heartbeat);
        this._heartbeat = null;
    }

    // ------------------------------------------------------------- commands

    /**
     * Sends any command ({type, ...fields}) and resolves with the response
     * (rejects with a ChatError when it is not ok).  Commands wait while
     * disconnected; rate_limited ones are sent again after retryAfterMs.
     */
    command(type, fields = {}, opts = {}) {
        return new Promise((resolve, reject) => {
            const entry = {
                n: this._nextSeq++,
                frame: Object.assign({ type }, fields),
                resend: opts.resend !== undefined ? opts.resend
                    : RESENDABLE.has(type),
                retryUnavailable: !!opts.retryUnavailable,
                resolve, reject, tries: 0, id: null, timer: null,
            };
            if (this._final) {
                reject(this._final);
                return;
            }
            this._queue.push(entry);
            this._pump();
        });
    }

    /** Commands sent and not answered yet. */
    get inflight() {
        return this._inflight.size;
    }

    /** Commands waiting to be sent (disconnected, or maxInflight reached). */
    get queued() {
        return this._queue.length;
    }

    _connected() {
        return this._ws && this.state === 'connected';
    }

    _pump() {
        while (this._connected() && this._queue.length
               && this._inflight.size < this.options.maxInflight) {
            const entry = this._queue.shift();
            this._send(entry);
        }
    }

    _send(entry) {
        entry.id = String(this._nextId++);
        entry.tries++;
        if (entry.tries > 1) {
            this.stats.resent++;
        }
        const frame = Object.assign({}, entry.frame, { id: entry.id });
        this._inflight.set(entry.id, entry);
        const ws = this._ws;
        entry.timer = setTimeout(() => {
            // no answer: the connection is dead; start over
            if (this._inflight.get(entry.id) === entry && ws === this._ws) {
                this._onClose(ws, 4000, 'no answer in time');
                try {
                    ws.close(1000, 'no answer');
                } catch (e) { /* gone */ }
            }
        }, this.options.requestTimeoutMs);
        try {
            ws.send(JSON.stringify(frame));
        } catch (e) {
            // the close event follows and requeues it
        }
    }

    _requeueInflight() {
        const again = [];
        for (const entry of this._inflight.values()) {
            clearTimeout(entry.timer);
            if (entry.resend) {
                again.push(entry);
            } else {
                entry.reject(new ChatError('disconnected', 'the connection'
                    + ' closed before the answer: the command may or may'
                    + ' not have taken effect'));
            }
        }
        this._inflight.clear();
        this._queue = again.concat(this._queue).sort((a, b) => a.n - b.n);
    }

    _failAll(err, queued) {
        for (const entry of this._inflight.values()) {
            clearTimeout(entry.timer);
            entry.reject(err);
        }
        this._inflight.clear();
        if (queued) {
            for (const entry of this._queue) {
                entry.reject(err);
            }
            this._queue = [];
        }
    }

    _onResponse(msg) {
        const entry = this._inflight.get(String(msg.id));
        if (!entry) {
            return;
        }
        this._inflight.delete(entry.id);
        clearTimeout(entry.timer);
        if (msg.ok) {
            entry.resolve(msg);
        } else {
            const e = msg.error || {};
            const err = new ChatError(e.code || 'internal_error', e.message,
                { retryAfterMs: e.retryAfterMs, response: msg });
            const again = e.code === 'rate_limited'
                || (e.code === 'unavailable' && entry.retryUnavailable);
            if (again && !this._stopped) {
                const ms = e.retryAfterMs !== undefined ? e.retryAfterMs
                    : Math.min(30000, 500 * Math.pow(2, entry.tries - 1))
                      * (0.5 + this.options.random());
                setTimeout(() => {
                    this._queue.push(entry);
                    this._queue.sort((a, b) => a.n - b.n);
                    this._pump();
                }, ms);
            } else {
                entry.reject(err);
            }
        }
        this._pump();
    }

    _onFrame(ws, data) {
        if (ws !== this._ws) {
            return;
        }
        let msg;
        try {
            msg = JSON.parse(typeof data === 'string' ? data : String(data));
        } catch (e) {
            this._emit('error', new ChatError('bad_frame', 'not JSON'));
            return;
        }
        if (msg.type === 'response') {
            this._onResponse(msg);
        } else if (msg.eventId !== undefined) {
            this._onEvent(msg);
        }
    }

    // -------------------------------------------------------------- events

    _remember(eventId, state) {
        this._seen.delete(eventId);
        this._seen.set(eventId, state);
        while (this._seen.size > this.options.dedupeSize) {
            this._seen.delete(this._seen.keys().next().value);
        }
    }

    _onEvent(ev) {
        const id = String(ev.eventId);
        const seen = this._seen.get(id);
        if (seen) {
            this.stats.duplicatesDropped++;
            if (seen === 'done' && this.options.autoAck) {
                // the first copy's ack did not reach the inbox yet
                this._queueAck(id);
            }
            return;
        }
        if (ev.type === 'chatUpdate') {
            this._applyChatUpdate(ev);
        } else if (ev.type === 'newMessage') {
            const c = this.chats.get(ev.chatId);
            if (c && !(c.lastSeq >= ev.seq)) {
                c.lastSeq = ev.seq;
            }
        }
        const name = ev.type === 'newMessage' ? 'message' : ev.type;
        const handlers = this._emit(name, ev).concat(this._emit('event', ev));
        for (const s of this._streams) {
            handlers.push(s.push(ev));
        }
        if (!handlers.length) {
            // nobody stored it: it stays in the inbox for next time
            return;
        }
        this._remember(id, 'pending');
        Promise.all(handlers).then(() => {
            this._remember(id, 'done');
            if (this.options.autoAck) {
                this._queueAck(id);
            }
        }, (err) => {
            // not stored: a later delivery of it is handled again
            this._seen.delete(id);
            this._emit('error', err);
        });
    }

    _applyChatUpdate(ev) {
        const me = this.user;
        const inChat = !me || (ev.participants || []).includes(me);
        if (!inChat) {
            this.chats.delete(ev.chatId);
            return;
        }
        const old = this.chats.get(ev.chatId) || { lastSeq: 0 };
        this.chats.set(ev.chatId, {
            chatId: ev.chatId, name: ev.name, participants: ev.participants,
            admin: ev.admin, lastSeq: old.lastSeq,
        });
    }

    _queueAck(id) {
        this._acks.add(id);
        if (this._acks.size >= 1000) {
            this._flushAcks();
        } else if (!this._ackTimer) {
            this._ackTimer = setTimeout(() => this._flushAcks(),
                this.options.ackDelayMs);
        }
    }

    _flushAcks() {
        clearTimeout(this._ackTimer);
        this._ackTimer = null;
        while (this._acks.size) {
            const ids = Array.from(this._acks).slice(0, 1000);
            for (const id of ids) {
                this._acks.delete(id);
            }
            this.ack(ids).then(() => {
                this.stats.acked += ids.length;
            }, (err) => {
                if (err.code !== 'closed') {
                    this._emit('error', err);
                }
            });
        }
    }

    /** Acks events now (autoAck does it for you after your handlers). */
    ack(eventIds) {
        return this.command('ack', { eventIds: eventIds.map(String) },
            { retryUnavailable: true });
    }

    ping() {
        return this.command('ping');
    }

    /** -> { chatId } */
    async createChat(participants, name) {
        const f = { participants };
        if (name !== undefined && name !== null && name !== '') {
            f.name = name;
        }
        const r = await this.command('createChat', f);
        return { chatId: r.chatId };
    }

    modifyChatParticipants(chatId, userId, operation) {
        return this.command('modifyChatParticipants',
            { chatId: String(chatId), userId, operation });
    }

    addParticipant(chatId, userId) {
        return this.modifyChatParticipants(chatId, userId, 'ADD');
    }

    removeParticipant(chatId, userId) {
        return this.modifyChatParticipants(chatId, userId, 'REMOVE');
    }

    /** Leaves a chat (removes yourself). */
    leaveChat(chatId) {
        return this.modifyChatParticipants(chatId, this.user, 'REMOVE');
    }

    /**
     * Sends a message; resolves once it is stored, with
     * { messageId, seq, sentAt, duplicate, clientMessageId }.  Sent again
     * (same clientMessageId) after reconnects and on unavailable until the
     * server answers ok or a definite error.
     */
    async sendMessage(chatId, message, opts = {}) {
        const clientMessageId = opts.clientMessageId || newClientMessageId();
        const attachments = (opts.attachments || []).map((a) =>
            typeof a === 'string' ? a : a.attachmentId);
        const r = await this.command('sendMessage', {
            chatId: String(chatId), clientMessageId, message,
            attachments,
        }, { retryUnavailable: true });
        const c = this.chats.get(String(chatId));
        if (c && !(c.lastSeq >= r.seq)) {
            c.lastSeq = r.seq;
        }
        return { messageId: r.messageId, seq: r.seq, sentAt: r.sentAt,
            duplicate: r.duplicate, clientMessageId };
    }

    /** One page: -> { chats, nextCursor } */
    async getChats(opts = {}) {
        const f = {};
        if (opts.cursor !== undefined) {
            f.cursor = opts.cursor;
        }
        if (opts.limit !== undefined) {
            f.limit = opts.limit;
        }
        const r = await this.command('getChats', f);
        return { chats: r.chats, nextCursor: r.nextCursor };
    }

    /** Every page, in chat id order. */
    async getAllChats(opts = {}) {
        const all = [];
        let cursor;
        do {
            const p = await this.getChats({ cursor, limit: opts.limit });
            all.push(...p.chats);
            cursor = p.nextCursor;
        } while (cursor !== undefined);
        return all;
    }

    removeDevice(deviceId) {
        return this.command('removeDevice', { deviceId });
    }

    /** -> { attachmentId, uploadUrl, method, headers, expiresAt } */
    async createAttachment({ contentType, size, sha256 }) {
        const r = await this.command('createAttachment',
            { contentType, size, sha256 });
        return { attachmentId: r.attachmentId, uploadUrl: r.uploadUrl,
            method: r.method, headers: r.headers, expiresAt: r.expiresAt };
    }

    /** -> { attachmentId, contentType, size, sha256, url, urlExpiresAt } */
    async getAttachmentUrl(attachmentId) {
        const r = await this.command('getAttachmentUrl', { attachmentId });
        delete r.type;
        delete r.id;
        delete r.ok;
        return r;
    }

    ackAttachment(attachmentId) {
        return this.command('ackAttachment', { attachmentId });
    }

    /** A URL of the server (media URLs may be relative) made absolute. */
    resolveUrl(url) {
        return new URL(url, this._httpBase).toString();
    }

    /**
     * Hashes the bytes (SHA-256), asks for an upload URL and uploads them.
     * data: Blob/File, ArrayBuffer, typed array or string.  Resolves with
     * { attachmentId, contentType, size, sha256 } to pass to sendMessage.
     */
    async uploadAttachment(data, contentType) {
        const bytes = await toBytes(data);
        contentType = contentType || (data && data.type)
            || 'application/octet-stream';
        const sha256 = await sha256Hex(bytes);
        const a = await this.createAttachment({ contentType,
            size: bytes.length, sha256 });
        const headers = {};
        for (const [k, v] of Object.entries(a.headers || {})) {
            // fetch sets Content-Length itself (browsers refuse it)
            if (k.toLowerCase() !== 'content-length') {
                headers[k] = v;
            }
        }
        const res = await fetch(this.resolveUrl(a.uploadUrl),
            { method: a.method || 'PUT', headers, body: bytes });
        if (!res.ok) {
            throw new ChatError('upload_failed', 'the upload was answered '
                + res.status, { status: res.status });
        }
        return { attachmentId: a.attachmentId, contentType,
            size: bytes.length, sha256 };
    }

    /**
     * Downloads an attachment of a newMessage (a fresh URL is asked for
     * when its own has expired) and checks its SHA-256.  Resolves with a
     * Uint8Array; rejects with ChatError 'hash_mismatch' or
     * 'download_failed'.
     */
    async downloadAttachment(att) {
        let url = att.url;
        if (!url || !(att.urlExpiresAt > Date.now() + 5000)) {
            url = (await this.getAttachmentUrl(att.attachmentId)).url;
        }
        let res = await fetch(this.resolveUrl(url));
        if (res.status === 403 && att.url === url) {
            url = (await this.getAttachmentUrl(att.attachmentId)).url;
            res = await fetch(this.resolveUrl(url));
        }
        if (!res.ok) {
            throw new ChatError('download_failed', 'the download was'
                + ' answered ' + res.status, { status: res.status });
        }
        const bytes = new Uint8Array(await res.arrayBuffer());
        if (att.sha256 && (await sha256Hex(bytes)) !== att.sha256) {
            throw new ChatError('hash_mismatch', 'the downloaded bytes do not'
                + ' have the SHA-256 of the attachment');
        }
        return bytes;
    }
}

/** A new clientMessageId (random, 32 hex digits). */
export function newClientMessageId() {
    const b = new Uint8Array(16);
    globalThis.crypto.getRandomValues(b);
    return toHex(b);
}

export { DEFINITE as DEFINITE_ERRORS };
