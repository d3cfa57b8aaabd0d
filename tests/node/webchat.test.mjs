// The web chat (clients/web) in a real browser: Debian's chromium, headless,
// driven by playwright-core through its executable path (nothing is
// downloaded).  Run by t/045-webchat.t against nginx with the sample
// configuration of `make run`, which passes:
//   CHAT_HTTP          http://127.0.0.1:<port> (the page)
//   CHAT_TEST_OUTPUT   folder for the screenshots (one per step)
//   CHAT_CHROMIUM      the browser (default /usr/bin/chromium)
//   CHAT_NGINX_PID     the nginx master (a reload closes pages with 1001)
// The scenario: alice (desktop) and bob (phone width) log in, bob's second
// device (tablet) registers and closes; alice creates a group with bob and
// sends a text and an image; bob's page shows both, the image loaded from
// its signed URL; bob's page is closed, alice sends three messages, bob's
// page reopens and shows them in order; the tablet opens and gets the same
// messages, and answers: alice and bob's phone see the answer live.  Then
// carol adds and removes people, and her page shows "reconnecting" and
// "connected" again when nginx reloads (Close 1001).
// Any console error or uncaught exception in a page fails it.
// Every wait is on a page state, bounded; none is a sleep.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.CHAT_HTTP;
const OUT = process.env.CHAT_TEST_OUTPUT
    || join(process.cwd(), 'webchat-output');
const WAIT = 15000;

let browser;
const errors = [];
const completed = [];       // scenarios that ran to their end
const contexts = {};
let shot = 0;

// a PNG of width x height with a colour pattern, made here (no files)
function png(width, height) {
    const table = Array.from({ length: 256 }, (_, n) => {
        let c = n;
        for (let k = 0; k < 8; k++) {
            c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        }
        return c >>> 0;
    });
    const crc = (buf) => {
        let c = 0xffffffff;
        for (const b of buf) {
            c = table[(c ^ b) & 0xff] ^ (c >>> 8);
        }
        return (c ^ 0xffffffff) >>> 0;
    };
    const chunk = (type, data) => {
        const len = Buffer.alloc(4);
        len.writeUInt32BE(data.length);
        const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
        const c = Buffer.alloc(4);
        c.writeUInt32BE(crc(td));
        return Buffer.concat([len, td, c]);
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr[8] = 8;        // bit depth
    ihdr[9] = 2;        // RGB
    const raw = Buffer.alloc((width * 3 + 1) * height);
    for (let y = 0; y < height; y++) {
        const row = y * (width * 3 + 1);
        for (let x = 0; x < width; x++) {
            const i = row + 1 + x * 3;
            raw[i] = (x * 255 / width) | 0;
            raw[i + 1] = 120 + ((y * 100 / height) | 0);
            raw[i + 2] = ((x >> 4) + (y >> 4)) % 2 ? 200 : 90;
        }
    }
    return Buffer.concat([
        Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
        chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)),
        chunk('IEND', Buffer.alloc(0)),
    ]);
}

async function screenshot(page, name) {
    shot++;
    const file = join(OUT, String(shot).padStart(2, '0') + '-' + name
        + '.png');
    await page.screenshot({ path: file });
    return file;
}

async function context(name, viewport) {
    const ctx = await browser.newContext({ viewport });
    contexts[name] = ctx;
    return ctx;
}

async function open(ctx, who) {
    const page = await ctx.newPage();
    page.on('console', (m) => {
        if (m.type() === 'error') {
            errors.push(who + ': console error: ' + m.text());
        }
    });
    page.on('pageerror', (e) => {
        errors.push(who + ': uncaught: ' + e.message);
    });
    page.media = [];
    page.on('response', (r) => {
        if (r.url().includes('/media/')) {
            page.media.push({ url: r.url(), status: r.status(),
                method: r.request().method() });
        }
    });
    const res = await page.goto(BASE + '/');
    assert.equal(res.status(), 200, 'the page is served');
    return page;
}

async function login(page, user, device) {
    await page.waitForSelector('#login-form', { state: 'visible',
        timeout: WAIT });
    await page.fill('#login-user', user);
    await page.fill('#login-device', device);
    await page.click('#login-go');
    await page.waitForSelector('#conn[data-state="connected"]',
        { timeout: WAIT });
}

async function openChat(page, name) {
    const item = page.locator('.chat-item', { hasText: name });
    await item.waitFor({ timeout: WAIT });
    await item.locator('button').click();
    await page.waitForSelector('#chat-pane:not([hidden])', { timeout: WAIT });
}

async function send(page, text, seq) {
    await page.fill('#text', text);
    await page.click('#send');
    await page.waitForSelector(`.msg.mine[data-seq="${seq}"]:not(.pending)`,
        { timeout: WAIT });
}

// the messages shown, in page order: [seq, text, has a loaded image]
function shown(page) {
    return page.$$eval('#messages .msg', (els) => els.map((el) => {
        const img = el.querySelector('img.thumb');
        return [Number(el.dataset.seq),
            (el.querySelector('.text') || {}).textContent || '',
            !!(img && img.complete && img.naturalWidth === 160)];
    }));
}

async function waitShown(page, count) {
    await page.waitForFunction((n) => {
        const els = document.querySelectorAll('#messages .msg');
        if (els.length !== n) {
            return false;
        }
        const img = document.querySelector('#messages img.thumb');
        return !!(img && img.complete && img.naturalWidth === 160);
    }, count, { timeout: WAIT });
}

before(async () => {
    assert.ok(BASE, 'CHAT_HTTP is set (run through t/045-webchat.t)');
    rmSync(OUT, { recursive: true, force: true });
    mkdirSync(OUT, { recursive: true });
    browser = await chromium.launch({
        executablePath: process.env.CHAT_CHROMIUM || '/usr/bin/chromium',
        headless: true,
        args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
    });
});

after(async () => {
    if (browser) {
        await browser.close();
    }
});

test('two users, a group, text and an image, offline catch-up, a second'
    + ' device', async () => {
    const desktop = { width: 1100, height: 720 };
    const phone = { width: 390, height: 760 };
    const aliceCtx = await context('alice', desktop);
    const bobCtx = await context('bob', phone);
    const tabletCtx = await context('tablet', { width: 820, height: 700 });

    // 1. everyone logs in; bob's tablet registers, then closes
    const alice = await open(aliceCtx, 'alice');
    await screenshot(alice, 'login');
    await login(alice, 'alice', 'laptop');
    let bob = await open(bobCtx, 'bob');
    await login(bob, 'bob', 'phone');
    let tablet = await open(tabletCtx, 'bob-tablet');
    await login(tablet, 'bob', 'tablet');
    await tablet.close();
    await screenshot(alice, 'alice-connected');

    // 2. alice creates a group with bob
    await alice.click('#new-chat');
    await alice.fill('#new-chat-name', 'Weekend trip');
    await alice.fill('#new-chat-people', 'bob');
    await alice.click('#new-chat-create');
    await alice.waitForSelector('#chat-pane:not([hidden])',
        { timeout: WAIT });
    assert.equal(await alice.textContent('#chat-name'), 'Weekend trip');
    await screenshot(alice, 'alice-group-created');

    // 3. a text and an image
    await send(alice, 'Hi Bob! Ready for the weekend?', 1);
    await alice.setInputFiles('#file', { name: 'map.png',
        mimeType: 'image/png', buffer: png(160, 120) });
    await alice.waitForSelector('.msg.mine[data-seq="2"]:not(.pending)',
        { timeout: WAIT });
    await waitShown(alice, 2);
    await screenshot(alice, 'alice-sent-text-and-image');

    // 4. bob sees both, the image from its signed URL
    await openChat(bob, 'Weekend trip');
    await waitShown(bob, 2);
    assert.deepEqual(await shown(bob), [
        [1, 'Hi Bob! Ready for the weekend?', false], [2, '', true]]);
    const gets = bob.media.filter((m) => m.method === 'GET');
    assert.equal(gets.length, 1, 'one download');
    assert.match(gets[0].url, /\/media\/[0-9a-f]{32}\?op=get&.*&dev=phone&/);
    assert.match(gets[0].url, /&sig=/);
    assert.equal(gets[0].status, 200);
    await screenshot(bob, 'bob-sees-text-and-image');

    // 5. bob's page is closed; alice sends three messages
    await bob.close();
    await send(alice, 'Train leaves at 9', 3);
    await send(alice, 'Bring a jacket', 4);
    await send(alice, 'See you there!', 5);
    await screenshot(alice, 'alice-sent-three-while-bob-away');

    // 6. bob reopens his page: everything, in order
    bob = await open(bobCtx, 'bob');
    await login(bob, 'bob', 'phone');
    await screenshot(bob, 'bob-reopened-chat-list');
    await openChat(bob, 'Weekend trip');
    await waitShown(bob, 5);
    const expected = [
        [1, 'Hi Bob! Ready for the weekend?', false], [2, '', true],
        [3, 'Train leaves at 9', false], [4, 'Bring a jacket', false],
        [5, 'See you there!', false]];
    assert.deepEqual(await shown(bob), expected);
    await screenshot(bob, 'bob-caught-up');

    // 7. bob's second device gets the same messages
    tablet = await open(tabletCtx, 'bob-tablet');
    await login(tablet, 'bob', 'tablet');
    await openChat(tablet, 'Weekend trip');
    await waitShown(tablet, 5);
    assert.deepEqual(await shown(tablet), expected);
    assert.ok(tablet.media.some((m) => m.method === 'GET'
        && m.status === 200 && /dev=tablet&/.test(m.url)),
        'the tablet downloaded the image with its own signed URL');
    await screenshot(tablet, 'bob-tablet-caught-up');

    // 8. the tablet answers: alice and bob's phone see it live
    await send(tablet, 'Great, see you!', 6);
    await alice.waitForSelector('.msg.theirs[data-seq="6"]',
        { timeout: WAIT });
    await bob.waitForSelector('.msg.mine[data-seq="6"]', { timeout: WAIT });
    assert.match(await bob.textContent('.msg[data-seq="6"] .meta'),
        /you \(tablet\)/);
    await screenshot(bob, 'bob-phone-sees-his-tablet');
    await screenshot(alice, 'alice-desktop');

    // the states are visible
    assert.equal(await alice.textContent('#conn'), 'connected');
    assert.deepEqual(errors, [], 'no console errors in the pages');
    completed.push('two users');
});

test('adding and removing people; the connection state through a server'
    + ' reload', async () => {
    const carolCtx = await context('carol', { width: 1100, height: 720 });
    const daveCtx = await context('dave', { width: 390, height: 760 });
    const carol = await open(carolCtx, 'carol');
    await login(carol, 'carol', 'web');
    const dave = await open(daveCtx, 'dave');
    await login(dave, 'dave', 'phone');

    await carol.click('#new-chat');
    await carol.fill('#new-chat-name', 'Book club');
    await carol.fill('#new-chat-people', 'dave');
    await carol.click('#new-chat-create');
    await openChat(dave, 'Book club');

    // carol adds erin (offline): both pages show her
    await carol.click('#people-toggle');
    await carol.fill('#add-user', 'erin');
    await carol.click('#add-go');
    await carol.waitForFunction(() => document.querySelector(
        '#chat-members').textContent.includes('erin'), null,
        { timeout: WAIT });
    await dave.waitForFunction(() => document.querySelector(
        '#chat-members').textContent.includes('erin'), null,
        { timeout: WAIT });
    await screenshot(carol, 'carol-added-erin');

    // carol removes dave: the chat leaves dave's page
    await carol.click('#people-list button[data-user="dave"]');
    await carol.waitForFunction(() => !document.querySelector(
        '#chat-members').textContent.includes('dave'), null,
        { timeout: WAIT });
    await dave.waitForFunction(() => document.querySelectorAll(
        '.chat-item').length === 0, null, { timeout: WAIT });
    assert.equal(await dave.isVisible('#no-chats'), true);
    await screenshot(dave, 'dave-removed');

    // nginx reloads: its workers close with 1001; the page shows it is
    // reconnecting, then connected again, and sending works
    await carol.evaluate(() => {
        const el = document.getElementById('conn');
        window.seenStates = [];
        new MutationObserver(() => window.seenStates.push(el.dataset.state))
            .observe(el, { attributes: true });
    });
    process.kill(Number(process.env.CHAT_NGINX_PID), 'SIGHUP');
    await carol.waitForFunction(() => window.seenStates
        .includes('reconnecting') && document.getElementById('conn')
        .dataset.state === 'connected', null, { timeout: WAIT });
    assert.equal(await carol.textContent('#conn'), 'connected');
    await send(carol, 'Still here after the reload', 1);
    assert.deepEqual(errors, [], 'no console errors in the pages');
    completed.push('people and reload');
});

test('both scenarios ran, with no console error in any page', () => {
    assert.deepEqual(completed, ['two users', 'people and reload']);
    assert.deepEqual(errors, []);
});
