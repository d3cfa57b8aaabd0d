// Attachments (docs/media.md) through the SDK against the local store of
// the sample configuration: hashed and uploaded by the sender, delivered
// with a per-device signed URL, downloaded and hash-checked by the
// recipient; getAttachmentUrl, ackAttachment and the refusals.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { sha256Hex } from '../src/index.js';
import { connected, closeAll, uid, until, collect } from './helpers.mjs';

after(closeAll);

test('sha256Hex matches node:crypto and the store\'s own hash', async () => {
    const b = randomBytes(1000);
    const sha = await sha256Hex(b);
    assert.equal(sha, createHash('sha256').update(b).digest('hex'));
    assert.equal(await sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223'
        + 'b00361a396177a9cb410ff61f20015ad');
    // nginx hashes the upload as it streams it and refuses another hash
    const alice = await connected(uid('alice'), 'phone');
    const ticket = await alice.createAttachment({
        contentType: 'application/octet-stream', size: b.length,
        sha256: sha });
    const res = await fetch(alice.resolveUrl(ticket.uploadUrl), {
        method: ticket.method,
        headers: { 'Content-Type': ticket.headers['Content-Type'] },
        body: b });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).sha256, sha);
});

test('attachment round trip with hash check', async () => {
    const [a, b] = [uid('alice'), uid('bob')];
    const alice = await connected(a, 'phone');
    const bob = await connected(b, 'phone');
    const tablet = await connected(b, 'tablet');
    const got = collect(bob);
    const gotTablet = collect(tablet);
    const { chatId } = await alice.createChat([b], 'files');

    const bytes = randomBytes(300 * 1024 + 7);
    const sha = createHash('sha256').update(bytes).digest('hex');
    const att = await alice.uploadAttachment(bytes, 'application/pdf');
    assert.equal(att.sha256, sha);
    assert.equal(att.size, bytes.length);
    assert.match(att.attachmentId, /^[0-9a-f]{32}$/);

    const sent = await alice.sendMessage(chatId, 'the file',
        { attachments: [att] });
    await until(bob, () => got.list.length === 1, 10000, 'bob gets it');
    const ev = got.list[0];
    assert.equal(ev.seq, sent.seq);
    assert.equal(ev.attachments.length, 1);
    const a1 = ev.attachments[0];
    assert.equal(a1.attachmentId, att.attachmentId);
    assert.equal(a1.sha256, sha);
    assert.equal(a1.contentType, 'application/pdf');
    assert.ok(a1.url && a1.urlExpiresAt > Date.now(), 'a signed URL');

    const down = await bob.downloadAttachment(a1);
    assert.equal(Buffer.compare(Buffer.from(down), bytes), 0,
        'the same bytes');

    // a fresh URL for this device; the bytes must match the hash
    const fresh = await bob.getAttachmentUrl(att.attachmentId);
    assert.equal(fresh.sha256, sha);
    assert.equal(fresh.size, bytes.length);
    await assert.rejects(bob.downloadAttachment(Object.assign({}, a1,
        { url: fresh.url, urlExpiresAt: fresh.urlExpiresAt,
          sha256: '0'.repeat(64) })),
        (e) => e.code === 'hash_mismatch');
    await bob.ackAttachment(att.attachmentId);

    // the other device has its own URL and gets the same bytes
    await until(tablet, () => gotTablet.list.length === 1, 10000,
        'the tablet gets it');
    const t1 = gotTablet.list[0].attachments[0];
    assert.notEqual(t1.url, a1.url, 'URLs are per device');
    const down2 = await tablet.downloadAttachment(t1);
    assert.equal(Buffer.compare(Buffer.from(down2), bytes), 0);
});

test('attachment refusals', async () => {
    const [a, b, c] = [uid('alice'), uid('bob'), uid('carol')];
    const alice = await connected(a, 'phone');
    const carol = await connected(c, 'phone');
    const { chatId } = await alice.createChat([b], 'nope');
    await assert.rejects(alice.createAttachment({ contentType: 'text/html',
        size: 10, sha256: '0'.repeat(64) }), (e) => e.code === 'bad_request');
    const pending = await alice.createAttachment({
        contentType: 'image/png', size: 3, sha256: '0'.repeat(64) });
    assert.match(pending.uploadUrl, /op=put/);
    await assert.rejects(alice.sendMessage(chatId, 'not uploaded',
        { attachments: [pending.attachmentId] }),
        (e) => e.code === 'bad_request');
    const att = await alice.uploadAttachment(Buffer.from('png?'),
        'image/png');
    await assert.rejects(carol.getAttachmentUrl(att.attachmentId),
        (e) => e.code === 'forbidden' || e.code === 'not_found');
    await assert.rejects(carol.getAttachmentUrl('f'.repeat(32)),
        (e) => e.code === 'not_found' || e.code === 'forbidden');
    // the store refuses bytes that are not the ones hashed
    const wrong = await carol.createAttachment({ contentType: 'image/png',
        size: 4, sha256: '0'.repeat(64) });
    const res = await fetch(carol.resolveUrl(wrong.uploadUrl),
        { method: 'PUT', headers: { 'Content-Type': 'image/png' },
          body: Buffer.from('png!') });
    assert.equal(res.status, 400);
});
