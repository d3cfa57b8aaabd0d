#!/usr/bin/env node
// sigv4-oracle.js: compares ngx_chat_sigv4.c with an independent signer,
// npm @smithy/signature-v4 (the AWS SDK's), on random presigning inputs.
//
//   node sigv4-oracle.js <path of ngx_chat_sigv4_test> [cases] [seed]
//
// Each case draws a method, a host with or without a non-default port, an
// object key mixing spaces, slashes (also doubled), reserved characters
// and multi-byte UTF-8, extra query parameters (unsorted, with the same
// kinds of characters, repeated names with different values excluded as
// smithy keeps one value per name), extra signed headers with runs of
// spaces, a region, credentials, a date and an expiry.  The C signer gets
// the raw key; smithy gets it encoded by encodeURIComponent per segment
// (plus !'()* which that leaves alone) with uriEscapePath false, as the S3
// client does, so the two encoders are independent.  Prints TAP and
// "N passed, N failed"; exits 1 on any mismatch.

'use strict';

const { spawnSync } = require('child_process');
const crypto = require('crypto');
const { SignatureV4 } = require('@smithy/signature-v4');

const bin = process.argv[2];
const cases = parseInt(process.argv[3] || '300', 10);
let seed = parseInt(process.argv[4] || String(Date.now() % 1000000), 10);
const startSeed = seed;

if (!bin) {
    console.error('usage: sigv4-oracle.js <ngx_chat_sigv4_test> [cases] [seed]');
    process.exit(2);
}

// a small deterministic PRNG (mulberry32), so a failing seed can be rerun
function rnd() {
    seed = (seed + 0x6D2B79F5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rnd() * n);
const pick = (a) => a[int(a.length)];

const PIECES = ['a', 'Z', '0', '9', '-', '_', '.', '~', ' ', '  ', '+', '=',
    '&', '?', '#', '%', '!', "'", '(', ')', '*', ',', ';', ':', '@', '$',
    '[', ']', '"', '<', '>', '\\', '^', '`', '{', '|', '}', 'é', '€', '日本',
    '😀', 'ß', 'photo', 'IMG_001', 'x.jpg', 'a%20b'];

function str(min, max, extra) {
    const n = min + int(max - min + 1);
    let s = '';
    for (let i = 0; i < n; i++) {
        s += pick(extra ? PIECES.concat(extra) : PIECES);
    }
    return s;
}

const hex = (s) => Buffer.from(s, 'utf8').toString('hex');

function encodeStrict(s) {
    return encodeURIComponent(s).replace(/[!'()*]/g,
        (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

class Sha256 {
    constructor(secret) {
        this.h = secret ? crypto.createHmac('sha256', Buffer.from(secret))
            : crypto.createHash('sha256');
    }
    update(d) { this.h.update(typeof d === 'string' ? Buffer.from(d) : d); }
    digest() { return Promise.resolve(new Uint8Array(this.h.digest())); }
}

function makeCase() {
    const bucket = pick(['bucket', 'my-bucket', 'media.example']);
    const segs = [];
    const nseg = 1 + int(4);
    for (let i = 0; i < nseg; i++) {
        segs.push(rnd() < 0.1 ? '' : str(1, 6));
    }
    const key = segs.join('/');
    const path = '/' + bucket + '/' + key;
    const port = pick([null, 80, 443, 9000, 4569, 65535]);
    const hostname = pick(['s3.amazonaws.com', '127.0.0.1', 'localhost',
        's3.eu-west-3.amazonaws.com', 'minio.internal']);
    const host = port ? `${hostname}:${port}` : hostname;

    const query = {};
    const nq = int(4);
    for (let i = 0; i < nq; i++) {
        const name = pick(['x-id', 'partNumber', 'uploadId', 'a b', 'Z',
            'response-content-type', 'é', 'k=v', 'list&x']) + (rnd() < 0.3
            ? str(1, 2) : '');
        if (/^x-amz-/i.test(name) || name in query) {
            continue;
        }
        query[name] = rnd() < 0.1 ? '' : str(0, 5);
    }

    const headers = {};
    const nh = int(4);
    for (let i = 0; i < nh; i++) {
        const name = pick(['Content-Type', 'content-length',
            'x-amz-checksum-sha256', 'X-Amz-Meta-Name', 'content-md5',
            'x-amz-acl']);
        if (name.toLowerCase() in headers) {
            continue;
        }
        const v = pick(['image/png', '  10485760 ', 'a   b   c',
            'q83+rEv5lDQ2Q1fy0FvL1oG3a5q0+pP0AjPHk9qrO6s=', 'private',
            'text/plain; charset=utf-8']);
        headers[name.toLowerCase()] = v;
    }

    const t = 946684800 + int(2000000000 - 946684800);
    const d = new Date(t * 1000);

    return {
        method: pick(['GET', 'PUT', 'HEAD', 'DELETE']),
        host, path, query, headers,
        region: pick(['us-east-1', 'eu-west-3', 'ap-southeast-2', 'auto']),
        access: 'AKID' + str(1, 3).replace(/[^A-Za-z0-9]/g, 'X'),
        secret: crypto.randomBytes(20 + int(20)).toString('base64'),
        date: d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, ''),
        signingDate: d,
        expires: 1 + int(604800),
    };
}

function line(c) {
    const f = [c.method, c.host, c.path, c.region, c.access, c.secret,
        c.date, String(c.expires)];
    const q = Object.entries(c.query);
    f.push(String(q.length));
    for (const [k, v] of q) {
        f.push(k, v);
    }
    const h = Object.entries(c.headers);
    f.push(String(h.length));
    for (const [k, v] of h) {
        f.push(k, v);
    }
    return f.map(hex).join('\t');
}

async function smithy(c) {
    const signer = new SignatureV4({
        credentials: { accessKeyId: c.access, secretAccessKey: c.secret },
        region: c.region,
        service: 's3',
        sha256: Sha256,
        uriEscapePath: false,
    });
    const encodedPath = c.path.split('/').map(encodeStrict).join('/');
    const headers = Object.assign({ host: c.host }, c.headers);
    const req = {
        method: c.method,
        protocol: 'https:',
        hostname: c.host.replace(/:\d+$/, ''),
        port: undefined,
        path: encodedPath,
        query: Object.assign({}, c.query),
        headers,
        body: {},               // a stream: UNSIGNED-PAYLOAD
    };
    const signed = await signer.presign(req, {
        signingDate: c.signingDate,
        expiresIn: c.expires,
        unhoistableHeaders: new Set(Object.keys(c.headers)),
        signableHeaders: new Set(Object.keys(c.headers)),
    });
    return { path: encodedPath, query: signed.query };
}

async function main() {
    const all = [];
    for (let i = 0; i < cases; i++) {
        all.push(makeCase());
    }

    const r = spawnSync(bin, ['--presign'], {
        input: all.map(line).join('\n') + '\n',
        maxBuffer: 64 * 1024 * 1024,
    });
    if (r.status !== 0) {
        console.log('not ok 1 - the C filter failed: ' + r.stderr);
        console.log('0 passed, 1 failed');
        process.exit(1);
    }
    const out = r.stdout.toString().split('\n');

    let pass = 0, fail = 0;
    console.log('1..' + cases);
    for (let i = 0; i < cases; i++) {
        const c = all[i];
        const got = out[i] || '';
        const want = await smithy(c);
        const qpos = got.indexOf('?');
        const gotPath = got.slice(0, qpos);
        const gotQuery = {};
        for (const kv of got.slice(qpos + 1).split('&')) {
            const e = kv.indexOf('=');
            gotQuery[decodeURIComponent(kv.slice(0, e))] =
                decodeURIComponent(kv.slice(e + 1));
        }
        const ok = qpos > 0 && gotPath === want.path
            && gotQuery['X-Amz-Signature'] === want.query['X-Amz-Signature']
            && gotQuery['X-Amz-SignedHeaders']
                === want.query['X-Amz-SignedHeaders']
            && gotQuery['X-Amz-Credential'] === want.query['X-Amz-Credential']
            && Object.keys(gotQuery).length
                === Object.keys(want.query).length;
        if (ok) {
            pass++;
            console.log(`ok ${i + 1} - ${c.method} ${c.host}${want.path}`);
        } else {
            fail++;
            console.log(`not ok ${i + 1} - ${c.method} ${c.host} ${c.path}`);
            console.log('# ours:   ' + got);
            console.log('# smithy: ' + want.path + ' '
                + JSON.stringify(want.query));
        }
    }
    console.log(`# seed ${startSeed}`);
    console.log(`${pass} passed, ${fail} failed`);
    process.exit(fail ? 1 : 0);
}

main().catch((e) => {
    console.log('not ok - ' + (e && e.stack || e));
    process.exit(1);
});
