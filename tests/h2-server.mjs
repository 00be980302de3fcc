// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A tiny HTTP/2 (and HTTP/1.1) TLS server for the transport tests, on
// 127.0.0.1 port 0. Usage: node h2-server.mjs CERT KEY
// Prints the port on stdout; answers every request with the negotiated
// HTTP version as the body ("2.0" or "1.1"). Exits when stdin closes.
import http2 from 'node:http2';
import fs from 'node:fs';

const [cert, key] = process.argv.slice(2);
const server = http2.createSecureServer({
  cert: fs.readFileSync(cert),
  key: fs.readFileSync(key),
  allowHTTP1: true,
});

server.on('request', (req, res) => {
  const body = Buffer.from(req.httpVersion);
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
