import assert from "node:assert/strict";
import { test } from "node:test";
import { logFamily, rotationRank } from "./log-family.ts";

test("a rotated file belongs to its live file's log; other names are their own", () => {
  for (const [path, family] of [
    ["/var/log/room-svc/access.log", "/var/log/room-svc/access.log"],
    ["/var/log/room-svc/access.log.1", "/var/log/room-svc/access.log"],
    ["/var/log/room-svc/access.log.12", "/var/log/room-svc/access.log"],
    ["/var/log/room-svc/access.log-20261120", "/var/log/room-svc/access.log"],
    ["/var/log/room-svc/access.log-2026112013", "/var/log/room-svc/access.log"],
    ["/var/log/room-svc/access.log.2026-11-20", "/var/log/room-svc/access.log"],
    ["/var/log/room-svc/access.log-20261120.1", "/var/log/room-svc/access.log"],
    ["/var/log/room-svc/app-2026-11-20.log", "/var/log/room-svc/app-2026-11-20.log"],
    ["/var/log/v1.2/app.log", "/var/log/v1.2/app.log"],
    ["/data/1", "/data/1"],
  ])
    assert.equal(logFamily(path as string), family, path);
});

test("the rank of a rotated name: the live file 0, higher numbers and older dates older", () => {
  assert.equal(rotationRank("/x/access.log"), 0);
  assert.ok(rotationRank("/x/access.log.2") > rotationRank("/x/access.log.1"));
  assert.ok(rotationRank("/x/access.log.1") > rotationRank("/x/access.log"));
  assert.ok(rotationRank("/x/access.log-20261119") > rotationRank("/x/access.log-20261120"));
  assert.ok(rotationRank("/x/access.log-20261120") > 0);
});
