// WebSocket peer for tests/test_ws_peers.c, on the npm "ws" package (a
// strict implementation: it fails the connection on any protocol error).
//
//   node ws_peer.js server        echo server on a free port; prints "READY <port>"
//   node ws_peer.js client URL    drives a tide echo server; prints "OK" or exits 1
'use strict';
const WebSocket = require('ws');

function fail(why) {
  console.log('FAIL ' + why);
  process.exit(1);
}

if (process.argv[2] === 'server') {
  const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0, maxPayload: 1 << 24 }, () => {
    console.log('READY ' + wss.address().port);
  });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      if (!isBinary && data.toString() === 'close-4000') return ws.close(4000, 'as asked');
      ws.send(data, { binary: isBinary });
    });
    ws.on('error', (e) => console.log('server error ' + e.message));
  });
} else {
  const ws = new WebSocket(process.argv[3], ['echo'], { maxPayload: 1 << 24 });
  const cases = [Buffer.alloc(0), 'hello', 'κόσμε €𐍈', Buffer.from([0, 255, 1]),
                 'x'.repeat(125), 'y'.repeat(126), Buffer.alloc(65535, 7),
                 Buffer.alloc(65536, 8), 'é'.repeat(100000)];
  const got = [];
  let phase = 0;
  ws.on('error', (e) => fail('error ' + e.message));
  ws.on('open', () => {
    if (ws.protocol !== 'echo') fail('subprotocol ' + ws.protocol);
    for (const c of cases) ws.send(c);
    // A fragmented text message with a ping between its fragments.
    ws.send('frag', { fin: false });
    ws.ping('between');
    ws.send('ment', { fin: false });
    ws.send('ed', { fin: true });
  });
  let pongs = 0;
  ws.on('pong', (d) => {
    if (d.toString() !== 'between') fail('pong payload ' + d);
    pongs++;
  });
  ws.on('message', (data, isBinary) => {
    got.push([data, isBinary]);
    if (got.length === cases.length + 1) {
      for (let i = 0; i < cases.length; i++) {
        const want = cases[i];
        const [d, bin] = got[i];
        if (typeof want === 'string') {
          if (bin || d.toString() !== want) fail('case ' + i);
        } else if (!bin || !d.equals(want)) fail('case ' + i);
      }
      if (got[cases.length][0].toString() !== 'fragmented') fail('fragments');
      if (pongs !== 1) fail('pongs ' + pongs);
      ws.close(4001, 'done here');
    }
  });
  ws.on('close', (code, reason) => {
    if (code !== 4001) fail('close code ' + code);
    console.log('OK');
    process.exit(0);
  });
}
