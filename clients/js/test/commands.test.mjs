// Every command of docs/protocol.md through the SDK, against a real
// gateway; events by callback and by async iterator; acks only after the
// handler stored the event; display order by seq.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ChatError, Timeline, tokenClaims } from '../src/index.js';
import { connected, closeAll, uid, until, collect, withTimeout, mint }
    from './helpers.mjs';

after(closeAll);

test('ping, and the token\'s user and device', async () => {
    const alice = await connected(uid('alice'), 'phone');
    const r = await alice.ping();
    assert.equal(r.ok, true);
    assert.match(alice.user, /^alice-/);
    assert.equal(alice.device, 'phone');
    assert.equal(tokenClaims(await mint('x', 'y')).sub, 'x');
    assert.equal(alice.state, 'connected');
});

test('createChat, chatUpdate to every participant, getChats pages',
    async () => {
        const a = uid('alice');
        const b = uid('bob');
        const alice = await connected(a, 'phone');
        const bob = await connected(b, 'phone');
        const updates = [];
        bob.on('chatUpdate', (ev) => { updates.push(ev); });

        const ids = [];
        for (const name of ['one', 'two', 'three']) {
            const { chatId } = await alice.createChat([b], name);
            assert.match(chatId, /^\d+$/);
            ids.push(chatId);
        }
        await until(bob, () => updates.length === 3, 10000,
            'bob gets 3 chatUpdate');
        assert.deepEqual(updates.map((u) => u.name), ['one', 'two', 'three']);
        assert.deepEqual(updates[0].participants.slice().sort(),
            [a, b].sort());
        assert.equal(updates[0].admin, a);
        assert.ok(bob.chats.has(ids[2]), 'the SDK keeps the chat list');

        const p1 = await alice.getChats({ limit: 2 });
        assert.equal(p1.chats.length, 2);
        assert.ok(p1.nextCursor !== undefined, 'a second page follows');
        const p2 = await alice.getChats({ limit: 2, cursor: p1.nextCursor });
        assert.deepEqual(p1.chats.concat(p2.chats).map((c) => c.chatId),
            ids);
        const all = await alice.getAllChats({ limit: 1 });
        assert.deepEqual(all.map((c) => c.chatId), ids);
        assert.equal(all[0].lastSeq, 0);

        await assert.rejects(alice.createChat([], 'alone'),
            (e) => e instanceof ChatError && e.code === 'bad_request');
    });

test('modifyChatParticipants: add, remove, leave, forbidden, not_found',
    async () => {
        const [a, b, c] = [uid('alice'), uid('bob'), uid('carol')];
        const alice = await connected(a, 'phone');
        const bob = await connected(b, 'phone');
        const carol = await connected(c, 'phone');
        const { chatId } = await alice.createChat([b], 'Trip');
        await until(bob, () => bob.chats.has(chatId), 10000, 'bob in chat');

        await alice.addParticipant(chatId, c);
        await until(carol, () => carol.chats.has(chatId), 10000,
            'carol is told she was added');
        assert.deepEqual(carol.chats.get(chatId).participants.slice().sort(),
            [a, b, c].sort());

        await assert.rejects(carol.removeParticipant(chatId, a),
            (e) => e.code === 'forbidden', 'only the admin removes others');
        await assert.rejects(alice.addParticipant('999999999', c),
            (e) => e.code === 'not_found');

        await alice.removeParticipant(chatId, b);
        await until(bob, () => !bob.chats.has(chatId), 10000,
            'bob is told he is out');
        await carol.leaveChat(chatId);
        await until(carol, () => !carol.chats.has(chatId), 10000,
            'carol left');
        const left = await alice.getAllChats();
        assert.deepEqual(left.find((x) => x.chatId === chatId).participants,
            [a]);
    });

test('sendMessage: stored, idempotent by clientMessageId, definite errors',
    async () => {
        const [a, b, c] = [uid('alice'), uid('bob'), uid('carol')];
        const alice = await connected(a, 'phone');
        const bob = await connected(b, 'phone');
        const carol = await connected(c, 'phone');
        const got = collect(bob);
        const { chatId } = await alice.createChat([b]);

        const r1 = await alice.sendMessage(chatId, 'hello',
            { clientMessageId: 'c-1' });
        assert.equal(r1.seq, 1);
        assert.equal(r1.duplicate, false);
        const r2 = await alice.sendMessage(chatId, 'hello',
            { clientMessageId: 'c-1' });
        assert.equal(r2.duplicate, true);
        assert.equal(r2.messageId, r1.messageId);
        assert.equal(r2.seq, 1);

        await until(bob, () => got.list.length >= 1, 10000, 'bob gets it');
        assert.equal(got.list[0].message, 'hello');
        assert.equal(got.list[0].senderId, a);
        assert.equal(got.list[0].senderDevice, 'phone');

        await assert.rejects(carol.sendMessage(chatId, 'intruder'),
            (e) => e.code === 'forbidden');
        await assert.rejects(alice.sendMessage(chatId, 'x'.repeat(70000)),
            (e) => e.code === 'limit_exceeded');
        await assert.rejects(alice.command('noSuchCommand'),
            (e) => e.code === 'unknown_type');

        // the resend delivered nothing twice
        const r3 = await alice.sendMessage(chatId, 'after');
        await until(bob, () => got.list.length >= 2, 10000, 'bob gets 2');
        assert.deepEqual(got.list.map((m) => m.seq), [1, r3.seq]);
        assert.equal(got.calls, 2);
    });

test('acks go out only once the handler has stored the event', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const alice = await connected(a, 'phone');
    let release;
    const stored = new Promise((r) => { release = r; });
    let failOnce = true;
    const bob = await connected(b, 'phone');
    const got = collect(bob, {
        hold: async (m) => {
            if (m.message === 'fails' && failOnce) {
                failOnce = false;
                throw new Error('disk full');
            }
            if (m.message === 'slow') {
                await stored;
            }
        },
    });
    const errors = [];
    bob.on('error', (e) => { errors.push(e); });
    const { chatId } = await alice.createChat([b]);
    // its chatUpdate is acked first (so the count below is only ours)
    await until(bob, () => bob.stats.acked === 1, 10000, 'chatUpdate acked');
    const ackedBefore = bob.stats.acked;

    await alice.sendMessage(chatId, 'slow');
    await until(bob, () => got.list.length === 1, 10000, 'slow arrives');
    // acks are sent in batches (ackDelayMs); a ping after that delay is
    // answered after any ack sent before it
    await new Promise((r) => setTimeout(r, bob.options.ackDelayMs * 2));
    await bob.ping();
    assert.equal(bob.stats.acked, ackedBefore, 'not acked while storing');
    release();
    await until(bob, () => bob.stats.acked === ackedBefore + 1, 10000,
        'acked once stored');

    // a handler that fails: not acked, handled again after a reconnect
    await alice.sendMessage(chatId, 'fails');
    await until(bob, () => errors.length === 1, 10000, 'handler error');
    assert.equal(errors[0].message, 'disk full');
    bob.reconnect();
    await until(bob, () => got.list.filter((m) => m.message === 'fails')
        .length === 2, 15000, 'the failed event comes again');
    await until(bob, () => bob.stats.acked === ackedBefore + 2, 10000,
        'and is acked this time');

    // the acked ones do not come back after a reconnect
    bob.reconnect();
    await until(bob, () => bob.state === 'connected', 15000, 'back');
    await alice.sendMessage(chatId, 'marker');
    await until(bob, () => got.list.some((m) => m.message === 'marker'),
        10000, 'marker arrives');
    assert.deepEqual(got.list.map((m) => m.message),
        ['slow', 'fails', 'fails', 'marker']);
});

test('events as an async iterator, acked when the loop moves on',
    async () => {
        const [a, b] = [uid('alice'), uid('bob')];
        const alice = await connected(a, 'phone');
        const bob = (await import('./helpers.mjs')).client(b, 'phone');
        const it = bob.events();
        await withTimeout(bob.connect(), 10000, 'bob connects');
        const { chatId } = await alice.createChat([b]);
        for (const text of ['a', 'b', 'c']) {
            await alice.sendMessage(chatId, text);
        }
        const seen = [];
        for await (const ev of it) {
            seen.push(ev.type === 'newMessage' ? ev.message : ev.type);
            if (seen.length === 4) {
                break;
            }
        }
        assert.deepEqual(seen, ['chatUpdate', 'a', 'b', 'c']);
        await until(bob, () => bob.stats.acked === 4, 10000, '4 acked');
    });

test('removeDevice closes the removed device with 4004', async () => {
    const a = uid('alice');
    const phone = await connected(a, 'phone');
    const tablet = await connected(a, 'tablet');
    await phone.removeDevice('tablet');
    await until(tablet, () => tablet.state === 'offline', 10000,
        'tablet offline');
    assert.equal(tablet.lastClose.code, 4004);
    await assert.rejects(tablet.ping(), (e) => e.code === 'removed'
        || e.code === 'closed');
    await assert.rejects(phone.removeDevice('tablet'),
        (e) => e.code === 'not_found');
});

test('display order: by seq, whatever the arrival order', async () => {
    const t = new Timeline();
    t.add({ chatId: '1', clientMessageId: 'p', message: 'pending' });
    t.add({ chatId: '1', messageId: '30', seq: 3, message: 'c' });
    t.add({ chatId: '1', messageId: '10', seq: 1, message: 'a' });
    t.add({ chatId: '1', messageId: '20', seq: 2, message: 'b' });
    assert.equal(t.add({ chatId: '1', messageId: '20', seq: 2 }), false,
        'a messageId is kept once');
    assert.deepEqual(t.messages.map((m) => m.message),
        ['a', 'b', 'c', 'pending']);
    t.add({ chatId: '1', clientMessageId: 'p', messageId: '25', seq: 4 });
    assert.deepEqual(t.messages.map((m) => m.seq), [1, 2, 3, 4]);

    // live: two senders pipelining into one chat
    const [a, b, c] = [uid('alice'), uid('bob'), uid('carol')];
    const alice = await connected(a, 'phone');
    const bob = await connected(b, 'phone');
    const carol = await connected(c, 'phone');
    const got = collect(bob);
    const { chatId } = await alice.createChat([b, c]);
    await until(carol, () => carol.chats.has(chatId), 10000, 'carol in');
    const sends = [];
    for (let i = 0; i < 20; i++) {
        sends.push(alice.sendMessage(chatId, 'a' + i));
        sends.push(carol.sendMessage(chatId, 'c' + i));
    }
    const answers = await Promise.all(sends);
    await until(bob, () => got.list.length === 40, 15000, 'bob gets 40');
    const line = new Timeline();
    for (const m of got.list) {
        line.add(m);
    }
    assert.deepEqual(line.messages.map((m) => m.seq),
        Array.from({ length: 40 }, (_, i) => i + 1));
    for (const who of ['a', 'c']) {
        const mine = line.messages.filter((m) => m.message[0] === who)
            .map((m) => m.message);
        assert.deepEqual(mine, Array.from({ length: 20 }, (_, i) => who + i),
            'each sender\'s pipelined sends keep their order');
    }
    assert.deepEqual(answers.map((r) => r.seq).sort((x, y) => x - y),
        line.messages.map((m) => m.seq));
});
