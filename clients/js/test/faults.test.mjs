// Reconnects: the server closing with 1001 (a reload) and a worker killed
// with SIGKILL while sends were unanswered.  The SDK must come back by
// itself, fetch the chat list again, resend what was not answered with
// the same clientMessageId, and hand the application every message once.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Timeline } from '../src/index.js';
import { connected, closeAll, uid, until, collect, masterPid, workerPids,
    withTimeout } from './helpers.mjs';

after(closeAll);

function closes(c) {
    const list = [];
    c.on('close', (ev) => { list.push(ev.code); });
    return list;
}

function chatsEvents(c) {
    const n = { count: 0 };
    c.on('chats', () => { n.count++; });
    return n;
}

// the workers are gone and new ones (as many) serve
async function newWorkers(old) {
    const deadline = Date.now() + 15000;
    for (;;) {
        const now = workerPids();
        if (now.length === old.length && !now.some((p) => old.includes(p))) {
            return now;
        }
        if (Date.now() > deadline) {
            throw new Error('nginx did not start new workers: ' + now);
        }
        await new Promise((r) => setTimeout(r, 20));
    }
}

test('the server closes with 1001 (reload): reconnect, getChats again',
    async () => {
        const [a, b] = [uid('alice'), uid('bob')];
        const alice = await connected(a, 'phone');
        const bob = await connected(b, 'phone');
        const got = collect(bob);
        const aliceCloses = closes(alice);
        const bobChats = chatsEvents(bob);
        const { chatId } = await alice.createChat([b], 'reload');
        await alice.sendMessage(chatId, 'before');
        await until(bob, () => got.list.length === 1, 10000, 'before');

        const old = workerPids();
        assert.ok(old.length >= 1, 'nginx has workers');
        process.kill(masterPid(), 'SIGHUP');

        await until(alice, () => aliceCloses.includes(1001), 15000,
            'alice gets Close 1001');
        // a send made while the server restarts waits and goes through
        const during = alice.sendMessage(chatId, 'during');
        await until(bob, () => bobChats.count >= 1 && bob.state
            === 'connected', 15000, 'bob reconnects and refetches chats');
        await until(alice, () => alice.state === 'connected', 15000,
            'alice reconnects');
        assert.ok(bob.chats.has(chatId), 'the chat list is back');
        assert.ok(alice.stats.reconnects >= 1);
        await withTimeout(during, 15000, 'the send made during the reload');
        await alice.sendMessage(chatId, 'after');
        await until(bob, () => got.list.length === 3, 15000, 'bob gets 3');
        assert.deepEqual(got.list.map((m) => m.message),
            ['before', 'during', 'after']);
        assert.deepEqual(got.list.map((m) => m.seq), [1, 2, 3]);
        await newWorkers(old);
    });

test('a worker is killed (SIGKILL) with sends unanswered: they are resent'
    + ' with the same clientMessageId, nothing is duplicated', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const alice = await connected(a, 'phone');
    const bob = await connected(b, 'phone');
    const got = collect(bob);
    const { chatId } = await alice.createChat([b], 'kill');
    for (let i = 0; i < 5; i++) {
        await alice.sendMessage(chatId, 'm' + i);
    }
    await until(bob, () => got.list.length === 5, 10000, 'first 5');

    // the workers stop: these sends reach the socket, not an answer
    const old = workerPids();
    for (const pid of old) {
        process.kill(pid, 'SIGSTOP');
    }
    const stalled = [];
    for (let i = 5; i < 10; i++) {
        stalled.push(alice.sendMessage(chatId, 'm' + i));
    }
    await until(alice, () => alice.inflight === 5, 5000,
        '5 sends written');
    for (const pid of old) {
        process.kill(pid, 'SIGKILL');
    }
    const stalledAnswers = await withTimeout(Promise.all(stalled), 30000,
        'the stalled sends are answered after the reconnect');
    assert.ok(alice.stats.resent >= 5, 'resent: ' + alice.stats.resent);
    assert.ok(alice.stats.reconnects >= 1);
    await newWorkers(old);

    // and again without stopping them first: some of these may be stored
    // and their answers lost; resends get duplicate:true then
    const burst = [];
    for (let i = 10; i < 30; i++) {
        burst.push(alice.sendMessage(chatId, 'm' + i));
    }
    const old2 = workerPids();
    for (const pid of old2) {
        process.kill(pid, 'SIGKILL');
    }
    const burstAnswers = await withTimeout(Promise.all(burst), 30000,
        'the burst is answered');
    await newWorkers(old2);

    await until(bob, () => new Set(got.list.map((m) => m.messageId)).size
        === 30, 30000, 'bob has 30 distinct messages');
    for (const [id, n] of got.ids) {
        assert.equal(n, 1, 'message ' + id + ' handed to the app once');
    }
    const line = new Timeline();
    got.list.forEach((m) => line.add(m));
    assert.deepEqual(line.messages.map((m) => m.message),
        Array.from({ length: 30 }, (_, i) => 'm' + i));
    assert.deepEqual(line.messages.map((m) => m.seq),
        Array.from({ length: 30 }, (_, i) => i + 1));
    const answered = stalledAnswers.concat(burstAnswers);
    assert.equal(new Set(answered.map((r) => r.messageId)).size, 25,
        'every send got its own messageId');
    // a duplicate would be a second copy of a stored seq
    const sent = answered.map((r) => r.seq).sort((x, y) => x - y);
    assert.deepEqual(sent, Array.from({ length: 25 }, (_, i) => i + 6));
});

test('duplicates are dropped by eventId', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const alice = await connected(a, 'phone');
    // bob does not ack: after a reconnect his inbox is sent again
    const bob = await connected(b, 'phone', { autoAck: false });
    const got = collect(bob);
    const { chatId } = await alice.createChat([b], 'dupes');
    for (const text of ['x', 'y', 'z']) {
        await alice.sendMessage(chatId, text);
    }
    await until(bob, () => got.list.length === 3, 10000, 'bob gets 3');
    const dropped = bob.stats.duplicatesDropped;
    bob.reconnect();
    // the 3 messages come again and are dropped (the chatUpdate, which no
    // handler took, is not remembered: it comes again too, unacked)
    await until(bob, () => bob.stats.duplicatesDropped === dropped + 3,
        15000, 'the redelivered events are dropped');
    assert.equal(got.calls, 3, 'the handler saw each message once');
    assert.deepEqual(got.list.map((m) => m.message), ['x', 'y', 'z']);
    const ids = got.list.map((m) => m.eventId);
    await bob.ack(ids);
});
