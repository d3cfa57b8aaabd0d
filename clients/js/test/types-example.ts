// Compiled (not run) by types.test.mjs: the README's usage against
// src/index.d.ts, with --strict.
import { ChatClient, ChatError, Timeline, NewMessageEvent, sha256Hex }
    from '../src/index.js';

async function main(): Promise<void> {
    const chat = new ChatClient({
        url: 'ws://127.0.0.1:8080/chat',
        token: async () => 'jwt',
    });
    const timeline = new Timeline<NewMessageEvent>();
    chat.on('message', async (m: NewMessageEvent) => {
        timeline.add(m);
    });
    chat.on('state', (s) => console.log(s.toUpperCase()));
    await chat.connect();
    const { chatId } = await chat.createChat(['bob'], 'Trip');
    const r = await chat.sendMessage(chatId, 'hi');
    const n: number = r.seq;
    const att = await chat.uploadAttachment(new Uint8Array([1, 2]),
                                            'image/png');
    await chat.sendMessage(chatId, 'pic', { attachments: [att] });
    const bytes: Uint8Array = await chat.downloadAttachment(att);
    const page = await chat.getChats({ limit: 10 });
    const next: string | undefined = page.nextCursor;
    for await (const ev of chat.events()) {
        if (ev.type === 'newMessage') {
            const s: number = ev.seq;
            console.log(s, n, next, bytes.length);
        }
        break;
    }
    try {
        await chat.removeDevice('old');
    } catch (e) {
        if (e instanceof ChatError && e.code === 'not_found') {
            console.log(e.retryAfterMs);
        }
    }
    console.log(await sha256Hex('x'), chat.chats.get(chatId)?.admin);
    chat.close();
}

main();
