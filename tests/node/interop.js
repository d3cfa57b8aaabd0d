'use strict';
// interop.js: talks to ngx_chat with the npm "ws" client, a strict
// independent RFC 6455 implementation, and prints one JSON object with what
// happened; t/008-interop-node.t judges it.
//
//   node interop.js <ws-url> <token> <token2> [max-frame-size]
//
// token2 must be for another device (a device's new connection replaces
// its old one).  Steps: connect with "Authorization: Bearer" and token,
// ping command, PING/PONG, a fragmented command (send with fin:false), a
// non-ASCII id, a second connection with ?access_token=<token2> closed
// with 1000, a bad token (expects
// 401), a message over max-frame-size (expects Close 1009).  Any "error"
// event from ws (which it raises on server frames that break the RFC) is
// recorded.  The whole run is bounded by a 20 s timer.

const WebSocket = require('ws');

const url = process.argv[2];
const token = process.argv[3];
const token2 = process.argv[4];
const maxFrame = parseInt(process.argv[5] || '131072', 10);

const result = { errors: [] };
let step = 'start';          // for close events: when they came

function finish() {
    process.stdout.write(JSON.stringify(result) + '\n');
    process.exit(0);
}

setTimeout(() => {
    result.timeout = true;
    finish();
}, 20000).unref();

function open(u, opts) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(u, opts);
        ws.on('error', (e) => {
            result.errors.push(String(e && e.message || e));
            reject(e);
        });
        ws.on('unexpected-response', (req, res) => {
            reject(Object.assign(new Error('HTTP ' + res.statusCode),
                                 { status: res.statusCode }));
            req.destroy();
        });
        ws.on('open', () => resolve(ws));
    });
}

// resolves with the next response whose id is id
function command(ws, obj) {
    return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no response to '
                                                    + obj.id)), 5000);
        function onMessage(data, isBinary) {
            let m;
            try {
                m = JSON.parse(data.toString('utf8'));
            } catch (e) {
                return;
            }
            if (m.type === 'response' && m.id === obj.id) {
                clearTimeout(t);
                ws.off('message', onMessage);
                resolve({ msg: m, binary: isBinary });
            }
        }
        ws.on('message', onMessage);
        if (obj.fragments) {
            const parts = obj.fragments;
            delete obj.fragments;
            parts.forEach((p, i) => ws.send(p, { fin: i === parts.length - 1 }));
        } else {
            ws.send(JSON.stringify(obj));
        }
    });
}

// resolves when ws closes; waits at most 5 s after ws.timeLimit() is
// called (closing must not be awaited before the step that causes it)
function closed(ws) {
    let timer = null;
    const p = new Promise((resolve) => {
        ws.timeLimit = () => {
            timer = setTimeout(() => resolve({ code: null }), 5000);
            return p;
        };
        ws.on('close', (code, reason) => {
            if (timer) {
                clearTimeout(timer);
            }
            resolve({ code, reason: reason.toString(), at: step });
        });
    });
    return p;
}

async function main() {
    const ws = await open(url, { headers: { Authorization: 'Bearer ' + token } });
    result.connected = true;
    result.protocol = ws.protocol;
    ws.on('error', () => {});
    closed(ws);

    let r = await command(ws, { type: 'ping', id: 'n1' });
    result.ping = r.msg;
    result.ping_binary = r.binary;

    result.pong = await new Promise((resolve) => {
        const t = setTimeout(() => resolve(null), 5000);
        ws.once('pong', (data) => { clearTimeout(t); resolve(data.toString()); });
        ws.ping('hello');
    });

    r = await command(ws, { id: 'n2', fragments: ['{"type":"pi', 'ng","id"',
                                                  ':"n2"}'] });
    result.fragmented = r.msg;

    const uid = 'caf\u00e9-\u{1F600}';
    r = await command(ws, { type: 'ping', id: uid });
    result.unicode_ok = r.msg.ok === true && r.msg.id === uid;

    const ws2 = await open(url + '?access_token=' + encodeURIComponent(token2));
    ws2.on('error', () => {});
    r = await command(ws2, { type: 'ping', id: 'q1' });
    result.query_ping = r.msg;
    closed(ws2);
    step = 'normal close';
    ws2.close(1000, 'done');
    result.normal_close = await ws2.timeLimit();

    try {
        await open(url, { headers: { Authorization: 'Bearer x.y.z' } });
        result.bad_token_status = 101;
    } catch (e) {
        result.bad_token_status = e.status || String(e.message);
        result.errors = result.errors.filter((m) => !/Unexpected server response/.test(m));
    }

    ws.send('{"type":"ping","id":"big","pad":"' + 'x'.repeat(maxFrame) + '"}');
    step = 'oversize';
    result.oversize_close = await ws.timeLimit();
    finish();
}

main().catch((e) => {
    result.errors.push('exception: ' + (e && e.message || e));
    finish();
});
