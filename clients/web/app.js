// app.js: the web chat of ngx_chat, on the JavaScript SDK (clients/js),
// with no build step.  Served by the gateway's nginx at / (conf/chat.conf),
// the SDK at /sdk/.  Tokens come from the development endpoint
// /chat/admin/token, which the sample configuration keeps on loopback.

import { ChatClient, newClientMessageId } from '/sdk/index.js';
import { DeviceStore, putFile, getFile } from './store.js';

const $ = (id) => document.getElementById(id);
const WS_URL = (location.protocol === 'https:' ? 'wss://' : 'ws://')
    + location.host + '/chat';
const STATE_TEXT = {
    idle: 'connecting…', connecting: 'connecting…', connected: 'connected',
    reconnecting: 'reconnecting…', offline: 'offline', closed: 'offline',
};

let client = null;
let store = null;
let me = null;
let current = null;                 // the open chat's id
const fileUrls = new Map();         // attachmentId -> object URL
const fetching = new Map();         // attachmentId -> promise
const broken = new Set();           // attachmentIds that cannot be had
const sending = new Set();          // clientMessageIds sent, not answered

// ------------------------------------------------------------------ tokens

async function mintToken(user, device) {
    const res = await fetch('/chat/admin/token', {
        method: 'POST',
        body: JSON.stringify({ user, device, ttl: 3600 }),
    });
    let body = null;
    try {
        body = await res.json();
    } catch (e) {
        body = null;
    }
    if (!res.ok || !body || !body.token) {
        const why = body && body.error && body.error.message;
        throw new Error(why || 'the token endpoint answered ' + res.status);
    }
    return body.token;
}

// ------------------------------------------------------------------- login

function recent() {
    try {
        return JSON.parse(localStorage.getItem('ngxchat.recent') || '[]');
    } catch (e) {
        return [];
    }
}

function remember(user, device) {
    const list = recent().filter((r) => r.user !== user
                                        || r.device !== device);
    list.unshift({ user, device });
    localStorage.setItem('ngxchat.recent', JSON.stringify(list.slice(0, 6)));
}

function showLogin(error) {
    $('app').hidden = true;
    $('login').hidden = false;
    $('login-error').hidden = !error;
    $('login-error').textContent = error || '';
    const list = recent();
    $('recent').hidden = !list.length;
    $('recent-list').replaceChildren(...list.map((r) => {
        const li = document.createElement('li');
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'link';
        b.textContent = r.user + ' · ' + r.device;
        b.addEventListener('click', () => {
            $('login-user').value = r.user;
            $('login-device').value = r.device;
            $('login-form').requestSubmit();
        });
        li.append(b);
        return li;
    }));
    $('login-user').focus();
}

async function login(user, device) {
    $('login-go').disabled = true;
    let first;
    try {
        first = await mintToken(user, device);
    } catch (e) {
        $('login-go').disabled = false;
        showLogin(e.message);
        return;
    }
    $('login-go').disabled = false;
    sessionStorage.setItem('ngxchat.identity', JSON.stringify({ user,
        device }));
    remember(user, device);
    start(user, device, first);
}

function logout() {
    if (client) {
        client.close();
        client = null;
    }
    sessionStorage.removeItem('ngxchat.identity');
    for (const u of fileUrls.values()) {
        URL.revokeObjectURL(u);
    }
    fileUrls.clear();
    current = null;
    showLogin();
}

// ----------------------------------------------------------------- session

function start(user, device, firstToken) {
    me = { user, device };
    store = new DeviceStore(user, device);
    let token = firstToken;
    client = new ChatClient({
        url: WS_URL,
        token: async () => {
            const t = token || await mintToken(user, device);
            token = null;
            return t;
        },
    });
    client.on('state', renderState);
    client.on('message', onMessage);
    client.on('chatUpdate', onChatUpdate);
    client.on('chats', (list) => {
        store.setChats(list);
        if (current && !store.chats.has(current)) {
            openChat(null);
        }
        render();
    });
    client.on('close', ({ code }) => {
        if (code === 4001) {
            toast('This device was opened in another tab: this one is'
                  + ' offline now.');
        } else if (code === 4004) {
            toast('This device was removed.');
        }
    });
    client.on('error', (e) => console.warn('ngx_chat:', e.message || e));

    $('login').hidden = true;
    $('app').hidden = false;
    $('me').textContent = user + ' · ' + device;
    renderState(client.state);
    openChat(null);
    render();
    client.connect().then(resendPending, () => {});
}

// messages this device had not got an answer for when it was closed:
// sent again with the same clientMessageId (nothing is stored twice)
function resendPending() {
    for (const m of store.pending()) {
        if (sending.has(m.clientMessageId)) {
            continue;
        }
        if (m.uploading) {
            m.pending = false;
            m.uploading = false;
            m.failed = 'the page was closed during the upload';
            continue;
        }
        deliver(m);
    }
    store.save();
    render();
}

// the SDK acks the event once this handler has returned: store first
function onMessage(ev) {
    const m = {
        chatId: ev.chatId, messageId: ev.messageId, seq: ev.seq,
        senderId: ev.senderId, senderDevice: ev.senderDevice,
        message: ev.message, sentAt: ev.sentAt,
        attachments: (ev.attachments || []).map((a) => ({
            attachmentId: a.attachmentId, contentType: a.contentType,
            size: a.size, sha256: a.sha256, url: a.url,
            urlExpiresAt: a.urlExpiresAt,
        })),
    };
    if (store.addMessage(m) && ev.chatId !== current) {
        store.unread.set(ev.chatId, (store.unread.get(ev.chatId) || 0) + 1);
        store.save();
    }
    render();
}

function onChatUpdate(ev) {
    if (!ev.participants.includes(me.user)) {
        store.dropChat(ev.chatId);
        if (current === ev.chatId) {
            openChat(null);
        }
    } else {
        store.putChat({ chatId: ev.chatId, name: ev.name,
            participants: ev.participants, admin: ev.admin });
    }
    render();
}

// ----------------------------------------------------------------- actions

async function createGroup(name, people) {
    const others = people.split(/[\s,]+/).filter((p) => p && p !== me.user);
    if (!others.length) {
        toast('Add at least one other person.');
        return;
    }
    try {
        const { chatId } = await client.createChat(others, name);
        store.putChat({ chatId, name,
            participants: [me.user, ...others], admin: me.user });
        $('new-chat-form').hidden = true;
        $('new-chat-form').reset();
        openChat(chatId);
    } catch (e) {
        toast('Could not create the group: ' + e.message);
    }
}

async function changePeople(userId, operation) {
    try {
        await client.modifyChatParticipants(current, userId, operation);
    } catch (e) {
        toast('Could not ' + (operation === 'ADD' ? 'add ' : 'remove ')
              + userId + ': ' + e.message);
    }
}

function fileKey(id) {
    return me.user + '/' + me.device + ':' + id;
}

async function send(text, file) {
    const m = {
        chatId: current, clientMessageId: newClientMessageId(),
        senderId: me.user, senderDevice: me.device, message: text,
        attachments: [], sentAt: Date.now(), pending: true,
        uploading: !!file,
    };
    store.addMessage(m);
    render(true);
    if (file) {
        try {
            const a = await client.uploadAttachment(file, file.type);
            await putFile(fileKey(a.attachmentId), file);
            m.attachments = [a];
            m.uploading = false;
            store.save();
        } catch (e) {
            m.pending = false;
            m.uploading = false;
            m.failed = 'upload failed: ' + e.message;
            store.save();
            render();
            return;
        }
    }
    deliver(m);
}

async function deliver(m) {
    sending.add(m.clientMessageId);
    try {
        const r = await client.sendMessage(m.chatId, m.message, {
            clientMessageId: m.clientMessageId,
            attachments: m.attachments.map((a) => a.attachmentId),
        });
        sending.delete(m.clientMessageId);
        store.addMessage({ chatId: m.chatId,
            clientMessageId: m.clientMessageId, messageId: r.messageId,
            seq: r.seq, sentAt: r.sentAt, pending: false });
    } catch (e) {
        sending.delete(m.clientMessageId);
        m.pending = false;
        m.failed = e.message;
        store.save();
    }
    render();
}

// a file of a message: from this device's store, else downloaded from its
// signed URL (hash checked by the SDK) and stored
function loadFile(att) {
    if (fileUrls.has(att.attachmentId) || broken.has(att.attachmentId)) {
        return;
    }
    if (fetching.has(att.attachmentId)) {
        return;
    }
    const p = (async () => {
        let blob = await getFile(fileKey(att.attachmentId));
        if (!blob) {
            const bytes = await client.downloadAttachment(att);
            blob = new Blob([bytes], { type: att.contentType });
            await putFile(fileKey(att.attachmentId), blob);
        }
        fileUrls.set(att.attachmentId, URL.createObjectURL(blob));
    })().catch((e) => {
        broken.add(att.attachmentId);
        console.warn('ngx_chat: file', att.attachmentId, e.message);
    }).finally(() => {
        fetching.delete(att.attachmentId);
        render();
    });
    fetching.set(att.attachmentId, p);
}

// ----------------------------------------------------------------- display

function chatTitle(c) {
    if (c.name) {
        return c.name;
    }
    const others = (c.participants || []).filter((p) => p !== me.user);
    return others.join(', ') || 'just you';
}

function renderState(state) {
    const el = $('conn');
    el.dataset.state = state;
    el.textContent = STATE_TEXT[state] || state;
}

function openChat(chatId) {
    current = chatId;
    if (chatId) {
        store.unread.delete(chatId);
        store.save();
    }
    document.body.classList.toggle('in-chat', !!chatId);
    $('people').hidden = true;
    render(true);
}

function render(scroll) {
    if (!store) {
        return;
    }
    renderChats();
    renderChat(scroll);
}

function renderChats() {
    const chats = Array.from(store.chats.values());
    const last = (c) => {
        const m = store.lastMessage(c.chatId);
        return m ? m.sentAt : 0;
    };
    chats.sort((a, b) => last(b) - last(a) || Number(b.chatId)
               - Number(a.chatId));
    $('no-chats').hidden = chats.length > 0;
    $('chat-list').replaceChildren(...chats.map((c) => {
        const li = document.createElement('li');
        li.className = 'chat-item' + (c.chatId === current ? ' active' : '');
        li.dataset.chatId = c.chatId;
        const b = document.createElement('button');
        b.type = 'button';
        const title = document.createElement('span');
        title.className = 'title';
        title.textContent = chatTitle(c);
        const preview = document.createElement('span');
        preview.className = 'preview';
        const m = store.lastMessage(c.chatId);
        preview.textContent = m ? (m.senderId === me.user ? 'you' : m.senderId)
            + ': ' + (m.message || (m.attachments.length ? 'image' : ''))
            : (c.participants || []).length + ' people';
        b.append(title, preview);
        const n = store.unread.get(c.chatId);
        if (n) {
            const badge = document.createElement('span');
            badge.className = 'badge';
            badge.textContent = n;
            b.append(badge);
        }
        b.addEventListener('click', () => openChat(c.chatId));
        li.append(b);
        return li;
    }));
}

function renderChat(scroll) {
    const c = current && store.chats.get(current);
    $('chat-empty').hidden = !!c;
    $('chat-pane').hidden = !c;
    if (!c) {
        return;
    }
    $('chat-name').textContent = chatTitle(c);
    $('chat-members').textContent = c.participants.join(', ');
    const amAdmin = c.admin === me.user;
    $('people-list').replaceChildren(...c.participants.map((p) => {
        const li = document.createElement('li');
        const name = document.createElement('span');
        name.textContent = p + (p === c.admin ? ' (admin)' : '')
            + (p === me.user ? ' (you)' : '');
        li.append(name);
        if (amAdmin && p !== me.user) {
            const rm = document.createElement('button');
            rm.type = 'button';
            rm.className = 'link danger';
            rm.textContent = 'Remove';
            rm.dataset.user = p;
            rm.addEventListener('click', () => changePeople(p, 'REMOVE'));
            li.append(rm);
        }
        return li;
    }));

    const list = $('messages');
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight
        < 40;
    list.replaceChildren(...store.timeline(current).messages
        .map(renderMessage));
    if (scroll || atBottom) {
        list.scrollTop = list.scrollHeight;
    }
}

function renderMessage(m) {
    const li = document.createElement('li');
    const mine = m.senderId === me.user;
    li.className = 'msg ' + (mine ? 'mine' : 'theirs')
        + (m.pending ? ' pending' : '') + (m.failed ? ' failed' : '');
    if (m.seq !== undefined) {
        li.dataset.seq = m.seq;
    }
    if (m.messageId !== undefined) {
        li.dataset.messageId = m.messageId;
    }
    const meta = document.createElement('div');
    meta.className = 'meta';
    const when = new Date(m.sentAt).toLocaleTimeString([],
        { hour: '2-digit', minute: '2-digit' });
    meta.textContent = (mine ? 'you' : m.senderId)
        + (mine && m.senderDevice !== me.device ? ' (' + m.senderDevice + ')'
           : '') + ' · ' + when
        + (m.pending ? ' · sending…' : '')
        + (m.failed ? ' · not sent: ' + m.failed : '');
    li.append(meta);
    for (const a of m.attachments || []) {
        li.append(renderAttachment(a));
    }
    if (m.message) {
        const text = document.createElement('div');
        text.className = 'text';
        text.textContent = m.message;
        li.append(text);
    }
    return li;
}

function renderAttachment(a) {
    const url = fileUrls.get(a.attachmentId);
    if (!url) {
        const ph = document.createElement('div');
        ph.className = 'thumb placeholder';
        ph.textContent = broken.has(a.attachmentId) ? 'file unavailable'
            : 'loading…';
        loadFile(a);
        return ph;
    }
    if (a.contentType.startsWith('image/')) {
        const img = document.createElement('img');
        img.className = 'thumb';
        img.alt = 'image';
        img.src = url;
        img.dataset.attachmentId = a.attachmentId;
        return img;
    }
    const link = document.createElement('a');
    link.href = url;
    link.download = a.attachmentId;
    link.textContent = 'file (' + a.contentType + ', ' + a.size + ' bytes)';
    return link;
}

let toastTimer = null;

function toast(text) {
    const el = $('toast');
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, 5000);
}

// ------------------------------------------------------------------ wiring

function wire() {
    $('login-form').addEventListener('submit', (e) => {
        e.preventDefault();
        login($('login-user').value.trim(), $('login-device').value.trim());
    });
    $('logout').addEventListener('click', logout);
    $('new-chat').addEventListener('click', () => {
        $('new-chat-form').hidden = !$('new-chat-form').hidden;
        if (!$('new-chat-form').hidden) {
            $('new-chat-name').focus();
        }
    });
    $('new-chat-cancel').addEventListener('click', () => {
        $('new-chat-form').hidden = true;
    });
    $('new-chat-form').addEventListener('submit', (e) => {
        e.preventDefault();
        createGroup($('new-chat-name').value.trim(),
                    $('new-chat-people').value);
    });
    $('back').addEventListener('click', () => openChat(null));
    $('people-toggle').addEventListener('click', () => {
        $('people').hidden = !$('people').hidden;
    });
    $('add-form').addEventListener('submit', (e) => {
        e.preventDefault();
        const who = $('add-user').value.trim();
        $('add-user').value = '';
        changePeople(who, 'ADD');
    });
    $('leave').addEventListener('click', () => changePeople(me.user,
                                                            'REMOVE'));
    $('composer').addEventListener('submit', (e) => {
        e.preventDefault();
        const text = $('text').value;
        const file = $('file').files[0] || null;
        if (!text.trim() && !file) {
            return;
        }
        $('text').value = '';
        $('file').value = '';
        send(text, file);
    });
    $('file').addEventListener('change', () => {
        if ($('file').files[0]) {
            $('composer').requestSubmit();
        }
    });
}

wire();
const saved = JSON.parse(sessionStorage.getItem('ngxchat.identity')
                         || 'null');
if (saved) {
    start(saved.user, saved.device);
} else {
    showLogin();
}
