// Types of ngx-chat-client (src/index.js), the JavaScript SDK of ngx_chat.
// Field names are those of docs/protocol.md and docs/media.md.

export const VERSION: string;

/** Error codes of the server (docs/protocol.md) and of the SDK. */
export type ErrorCode =
    | 'bad_request' | 'unknown_type' | 'unavailable' | 'forbidden'
    | 'not_found' | 'limit_exceeded' | 'rate_limited' | 'internal_error'
    // the SDK's own
    | 'disconnected' | 'closed' | 'replaced' | 'removed' | 'upload_failed'
    | 'download_failed' | 'hash_mismatch' | 'no_websocket' | 'not_consumed'
    | 'bad_frame';

export class ChatError extends Error {
    code: ErrorCode | string;
    /** rate_limited / overloaded: wait this long before sending again */
    retryAfterMs?: number;
    /** HTTP status of a failed upload or download */
    status?: number;
    /** the server's response, when the error is one */
    response?: Response;
}

/** Connection state. */
export type State =
    | 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'offline'
    | 'closed';

export interface Chat {
    chatId: string;
    name: string;
    participants: string[];
    admin: string;
    lastSeq?: number;
}

export interface Attachment {
    attachmentId: string;
    contentType: string;
    size: number;
    sha256: string;
    /** signed download URL for this device; may be relative (/media/...) */
    url?: string;
    /** unix milliseconds */
    urlExpiresAt?: number;
}

export interface NewMessageEvent {
    type: 'newMessage';
    eventId: string;
    chatId: string;
    messageId: string;
    seq: number;
    senderId: string;
    senderDevice: string;
    message: string;
    attachments: Attachment[];
    sentAt: number;
}

export interface ChatUpdateEvent {
    type: 'chatUpdate';
    eventId: string;
    chatId: string;
    name: string;
    participants: string[];
    admin: string;
}

export type ChatEvent = NewMessageEvent | ChatUpdateEvent;

export interface Response {
    type: 'response';
    id: string;
    ok: boolean;
    error?: { code: string; message: string; retryAfterMs?: number };
    [field: string]: unknown;
}

export interface SendResult {
    messageId: string;
    seq: number;
    sentAt: number;
    duplicate: boolean;
    clientMessageId: string;
}

export interface ChatsPage {
    chats: Chat[];
    nextCursor?: string;
}

export interface UploadTicket {
    attachmentId: string;
    uploadUrl: string;
    method: string;
    headers: Record<string, string>;
    expiresAt: number;
}

export interface AttachmentUrl extends Attachment {
    url: string;
    urlExpiresAt: number;
}

export type Bytes = Blob | ArrayBuffer | ArrayBufferView | string;

export interface ClientOptions {
    /** ws://host/chat or wss://host/chat */
    url: string;
    /** a JWT (docs/tokens.md), or a function giving a fresh one for each
     *  connection attempt */
    token: string | (() => string | Promise<string>);
    /** a WebSocket constructor (default: the global one, else npm ws) */
    WebSocket?: unknown;
    /** with options.WebSocket: it takes {headers} (like npm ws), send the
     *  token as "Authorization: Bearer" instead of ?access_token= */
    headerToken?: boolean;
    /** ack events once every handler has resolved (default true) */
    autoAck?: boolean;
    /** acks are batched for this long (default 50 ms) */
    ackDelayMs?: number;
    /** commands waiting for an answer at once (default 32) */
    maxInflight?: number;
    /** eventIds remembered to drop duplicates (default 5000) */
    dedupeSize?: number;
    /** reconnect backoff: 500 ms doubling to 30 s, times 0.5-1.5 */
    initialBackoffMs?: number;
    maxBackoffMs?: number;
    /** no answer for this long: the connection is dropped (default 20 s) */
    requestTimeoutMs?: number;
    /** a ping command this often while connected (default 25 s; 0: off) */
    heartbeatMs?: number;
    /** getChats (every page) after each (re)connect (default true) */
    fetchChats?: boolean;
    random?: () => number;
}

export interface Stats {
    connects: number;
    reconnects: number;
    resent: number;
    duplicatesDropped: number;
    acked: number;
}

type Handler<T> = (value: T) => void | Promise<unknown>;

export class ChatClient {
    constructor(options: ClientOptions);
    readonly url: string;
    readonly state: State;
    /** the token's sub and dev */
    readonly user: string | undefined;
    readonly device: string | undefined;
    /** the chats, from getChats on (re)connect and chatUpdate events */
    readonly chats: Map<string, Chat>;
    readonly stats: Stats;
    readonly lastClose: { code: number; reason: string } | null;
    /** commands sent and not answered yet */
    readonly inflight: number;
    /** commands waiting to be sent */
    readonly queued: number;

    /** Resolves once connected and the chat list fetched; keeps
     *  reconnecting until close().  Rejects on 4001 / 4004 / close(). */
    connect(): Promise<void>;
    /** Closes for good (no reconnect). */
    close(): void;
    /** Drops the connection and reconnects. */
    reconnect(): void;

    /** Handlers of events return a promise: the event is acked once they
     *  resolved (a rejection: not acked, handled again when redelivered). */
    on(name: 'message', fn: Handler<NewMessageEvent>): () => void;
    on(name: 'chatUpdate', fn: Handler<ChatUpdateEvent>): () => void;
    on(name: 'event', fn: Handler<ChatEvent>): () => void;
    on(name: 'chats', fn: (chats: Chat[]) => void): () => void;
    on(name: 'state', fn: (state: State) => void): () => void;
    on(name: 'close', fn: (c: { code: number; reason: string }) => void):
        () => void;
    on(name: 'error', fn: (e: Error) => void): () => void;
    off(name: string, fn: (...args: any[]) => unknown): void;
    /** The events; each is acked when the loop asks for the next one. */
    events(): AsyncIterableIterator<ChatEvent>;

    /** Any command: resolves with the response, rejects with ChatError. */
    command(type: string, fields?: Record<string, unknown>,
            opts?: { resend?: boolean; retryUnavailable?: boolean }):
        Promise<Response>;
    ping(): Promise<Response>;
    createChat(participants: string[], name?: string):
        Promise<{ chatId: string }>;
    modifyChatParticipants(chatId: string, userId: string,
                           operation: 'ADD' | 'REMOVE'): Promise<Response>;
    addParticipant(chatId: string, userId: string): Promise<Response>;
    removeParticipant(chatId: string, userId: string): Promise<Response>;
    leaveChat(chatId: string): Promise<Response>;
    sendMessage(chatId: string, message: string, opts?: {
        clientMessageId?: string;
        attachments?: Array<string | { attachmentId: string }>;
    }): Promise<SendResult>;
    ack(eventIds: string[]): Promise<Response>;
    getChats(opts?: { cursor?: string; limit?: number }): Promise<ChatsPage>;
    getAllChats(opts?: { limit?: number }): Promise<Chat[]>;
    removeDevice(deviceId: string): Promise<Response>;
    createAttachment(a: { contentType: string; size: number;
                          sha256: string }): Promise<UploadTicket>;
    getAttachmentUrl(attachmentId: string): Promise<AttachmentUrl>;
    ackAttachment(attachmentId: string): Promise<Response>;

    /** Hash (SHA-256), createAttachment, PUT. */
    uploadAttachment(data: Bytes, contentType?: string):
        Promise<Attachment>;
    /** GET (a fresh URL when expired) and SHA-256 check. */
    downloadAttachment(att: Attachment): Promise<Uint8Array>;
    /** A server URL (media URLs may be relative) made absolute. */
    resolveUrl(url: string): string;
}

/** What a Timeline needs of a message. */
export interface Ordered {
    chatId: string;
    messageId?: string;
    clientMessageId?: string;
    seq?: number;
}

export interface TimelineMessage extends Ordered {
    [field: string]: unknown;
}

/** Messages of one chat in display order (by seq), each once. */
export class Timeline<M extends Ordered = TimelineMessage> {
    readonly messages: M[];
    readonly length: number;
    /** Adds or updates (by messageId or clientMessageId); true when new. */
    add(m: M): boolean;
    get(messageId: string): M | undefined;
}

export function sha256Hex(data: Bytes): Promise<string>;
export function toBytes(data: Bytes): Promise<Uint8Array>;
export function tokenClaims(token: string): Record<string, unknown>;
export function newClientMessageId(): string;
export const DEFINITE_ERRORS: Set<string>;
