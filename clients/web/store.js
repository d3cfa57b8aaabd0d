// store.js: what this device keeps, per user and device.  The server keeps
// an event only until the device acks it (docs/protocol.md), and a file
// only until every device has it (docs/media.md): the device must store
// both.  Chats and messages go to localStorage (written before the SDK
// acks the event), files to IndexedDB.

import { Timeline } from '/sdk/index.js';

const PREFIX = 'ngxchat:v1:';

export class DeviceStore {
    constructor(user, device) {
        this.key = PREFIX + user + '/' + device;
        this.chats = new Map();         // chatId -> chat
        this.timelines = new Map();     // chatId -> Timeline
        this.unread = new Map();        // chatId -> count
        this._load();
    }

    _load() {
        let data = null;
        try {
            data = JSON.parse(localStorage.getItem(this.key) || 'null');
        } catch (e) {
            data = null;
        }
        if (!data) {
            return;
        }
        for (const c of data.chats || []) {
            this.chats.set(c.chatId, c);
        }
        for (const [chatId, list] of Object.entries(data.messages || {})) {
            const t = this.timeline(chatId);
            for (const m of list) {
                t.add(m);
            }
        }
        for (const [chatId, n] of Object.entries(data.unread || {})) {
            this.unread.set(chatId, n);
        }
    }

    save() {
        const messages = {};
        for (const [chatId, t] of this.timelines) {
            messages[chatId] = t.messages;
        }
        localStorage.setItem(this.key, JSON.stringify({
            chats: Array.from(this.chats.values()),
            messages,
            unread: Object.fromEntries(this.unread),
        }));
    }

    timeline(chatId) {
        let t = this.timelines.get(chatId);
        if (!t) {
            t = new Timeline();
            this.timelines.set(chatId, t);
        }
        return t;
    }

    setChats(list) {
        this.chats = new Map(list.map((c) => [c.chatId, c]));
        this.save();
    }

    putChat(chat) {
        this.chats.set(chat.chatId, Object.assign(
            this.chats.get(chat.chatId) || {}, chat));
        this.save();
    }

    dropChat(chatId) {
        this.chats.delete(chatId);
        this.save();
    }

    addMessage(m) {
        const added = this.timeline(m.chatId).add(m);
        this.save();
        return added;
    }

    pending() {
        const out = [];
        for (const t of this.timelines.values()) {
            for (const m of t.messages) {
                if (m.pending) {
                    out.push(m);
                }
            }
        }
        return out;
    }

    lastMessage(chatId) {
        const t = this.timelines.get(chatId);
        return t && t.messages.length ? t.messages[t.messages.length - 1]
            : null;
    }
}

// files: IndexedDB "ngxchat", object store "files", key user/device:id
let dbp = null;

function db() {
    if (!dbp) {
        dbp = new Promise((resolve, reject) => {
            const req = indexedDB.open('ngxchat', 1);
            req.onupgradeneeded = () => req.result.createObjectStore('files');
            req.onsuccess = () => resolve(req.result);
            req.onerror = () => reject(req.error);
        });
    }
    return dbp;
}

export async function putFile(key, blob) {
    const d = await db();
    return new Promise((resolve, reject) => {
        const tx = d.transaction('files', 'readwrite');
        tx.objectStore('files').put(blob, key);
        tx.oncomplete = () => resolve();
        tx.onerror = () => reject(tx.error);
    });
}

export async function getFile(key) {
    const d = await db();
    return new Promise((resolve, reject) => {
        const req = d.transaction('files').objectStore('files').get(key);
        req.onsuccess = () => resolve(req.result || null);
        req.onerror = () => reject(req.error);
    });
}
