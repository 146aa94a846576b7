// A webhook receiver for server/automations_test.go: it verifies every
// delivery with the Standard Webhooks reference library (standardwebhooks
// on npm), once per signing secret it was given, and reports each delivery
// as one JSON line on stdout. POST /secrets with a JSON array sets the
// secrets; the first line printed is {"port": N}.
import http from "node:http";
import { Webhook } from "standardwebhooks";

let secrets = [];

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    if (req.url === "/secrets") {
      secrets = JSON.parse(body);
      res.end("ok");
      return;
    }
    const verified = secrets.map((secret) => {
      try {
        new Webhook(secret).verify(body, req.headers);
        return true;
      } catch {
        return false;
      }
    });
    let payload = null;
    try {
      payload = JSON.parse(body);
    } catch {}
    process.stdout.write(JSON.stringify({ id: req.headers["webhook-id"], verified, payload }) + "\n");
    res.statusCode = verified.some(Boolean) ? 200 : 401;
    res.end(verified.some(Boolean) ? "verified" : "bad signature");
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n");
});
process.stdin.on("end", () => process.exit(0)); // the test closes stdin to stop it
process.stdin.resume();
