import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../../schemas/config/yaml-config.ts";
import { OTHER_SCENE, Scenes } from "./scenes.ts";

test("the repository's scenes file loads: every simulated service has a scene and someone on duty", () => {
  const s = Scenes.load();
  for (const svc of ["room-svc", "im-svc", "social-svc", "gift-svc", "pay-svc", "user-svc", "device-svc"]) {
    const scene = s.view(s.sceneOf(svc));
    assert.notEqual(scene.id, OTHER_SCENE, svc);
    assert.ok(scene.onDuty.length > 0, svc);
  }
  assert.equal(s.sceneOf("nobody-svc"), OTHER_SCENE);
});

test("mistakes are reported with line and field: an unknown person, a service in two scenes, a receiver with two URLs", () => {
  const bad = `scenes:
  a: { name: A, services: [x], onDuty: [ghost] }
  b: { name: B, services: [x] }
receivers:
  - { name: r, format: generic, url: "http://h/x", urlEnv: R_URL }
`;
  assert.throws(
    () => Scenes.parse(bad, "scenes.yaml"),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /scenes\.a\.onDuty\[0\].*no person ghost/);
      assert.match(e.message, /scenes\.b\.services\[0\].*x is in scene a already/);
      assert.match(e.message, /exactly one of url and urlEnv/);
      assert.match(e.message, /scenes\.yaml:2/);
      return true;
    },
  );
});
